"""The architecture the code keeps (issue 18), checked on the source with ``ast``.

- no import cycle among ``cloudify_upgrade_plugin`` modules (function-level imports too);
- only ``manager/`` and ``snapshot/transfer*`` speak HTTP: no ``requests`` / ``urllib3``
  import and no ``/api/`` string elsewhere (the API prefix rule of ``versions/rules.py``
  excepted);
- no product module over 500 lines;
- no reference to documents outside the repository (``../shared``) or to this machine's
  paths in the product and its packaging files;
- every interface named in the "Interfaces" section of docs/ARCHITECTURE.md exists.
"""
import ast
import importlib
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = 'cloudify_upgrade_plugin'
PACKAGE_DIR = os.path.join(ROOT, PACKAGE)
MAX_LINES = 500
# Where HTTP may be spoken, relative to the package directory.
HTTP_LAYERS = ('manager/', 'snapshot/transfer')
# The one version rule that names the API prefix: (module path, function).
API_PREFIX_RULE = ('versions/rules.py', 'api_prefix')
# Paths outside the repository: the steering notes (../shared) and this kind of machine's own
# directories.  Manager-host paths the simulator plays (/root/cloudify, /home/<user>) are fine.
OUTSIDE = re.compile(r'\.\./shared|(?<![\w/.])/work/|/root/\.[a-z]|/opt/pypi')


def _modules(package_dir=PACKAGE_DIR, package=PACKAGE):
    """{dotted module name: path} of every module of the package."""
    found = {}
    for base, _, files in os.walk(package_dir):
        for name in files:
            if not name.endswith('.py'):
                continue
            path = os.path.join(base, name)
            rel = os.path.relpath(path, os.path.dirname(package_dir))[:-3]
            dotted = rel.replace(os.sep, '.')
            if dotted.endswith('.__init__'):
                dotted = dotted[:-len('.__init__')]
            found[dotted] = path
    return found


def import_graph(modules, package=PACKAGE):
    """{module: {modules of the package it imports}}, function-level imports included."""
    graph = {}
    for name, path in modules.items():
        with open(path) as stream:
            tree = ast.parse(stream.read())
        is_package = path.endswith('__init__.py')
        here = name if is_package else name.rpartition('.')[0]
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split('.')[:len(here.split('.')) - node.level + 1]
                    target = '.'.join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ''
                for alias in node.names:
                    submodule = '{0}.{1}'.format(target, alias.name)
                    deps.add(submodule if submodule in modules else target)
        graph[name] = {dep for dep in deps
                       if dep in modules and dep != name and dep.startswith(package)}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_the_plugin_modules():
    graph = import_graph(_modules())
    assert len(graph) > 40      # the walk found the package
    assert cycles(graph) == []


def test_the_cycle_finder_sees_function_level_imports(tmp_path):
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('from pkg import b\n')
    (package / 'b.py').write_text('def f():\n    from pkg.a import x\n')
    (package / 'c.py').write_text('from . import a\n')
    graph = import_graph(_modules(str(package), 'pkg'), 'pkg')
    assert cycles(graph) == [['pkg.a', 'pkg.b']]


def _docstrings(tree):
    nodes = [tree] + [node for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                           ast.ClassDef))]
    return {id(node.body[0].value) for node in nodes
            if node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def http_violations(package_dir=PACKAGE_DIR):
    """[(path, line, what)] of HTTP spoken outside the layers allowed to."""
    found = []
    for path in _modules(package_dir).values():
        rel = os.path.relpath(path, package_dir).replace(os.sep, '/')
        if rel.startswith(HTTP_LAYERS):
            continue
        with open(path) as stream:
            tree = ast.parse(stream.read())
        docstrings = _docstrings(tree)
        allowed = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and (rel, node.name) == API_PREFIX_RULE:
                allowed.update(id(inner) for inner in ast.walk(node))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or '']
            else:
                names = []
            for name in names:
                if name.split('.')[0] in ('requests', 'urllib3'):
                    found.append((rel, node.lineno, 'imports ' + name))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    '/api/' in node.value and id(node) not in docstrings and \
                    id(node) not in allowed:
                found.append((rel, node.lineno, repr(node.value)))
    return found


def test_only_the_manager_layer_and_the_transfer_speak_http():
    assert http_violations() == []


def test_the_http_check_finds_imports_and_api_paths(tmp_path):
    package = tmp_path / PACKAGE
    (package / 'runbooks').mkdir(parents=True)
    (package / 'manager').mkdir()
    (package / 'versions').mkdir()
    (package / 'runbooks' / 'bad.py').write_text(
        '"""Mentions /api/v3.1 in prose only."""\nimport os\n\n\ndef f():\n'
        '    import requests.exceptions\n    return "/api/v3.1/executions"\n')
    (package / 'manager' / 'client.py').write_text('import requests\nURL = "/api/v3.1"\n')
    (package / 'versions' / 'rules.py').write_text(
        'def api_prefix(v):\n    return "/api/" + v\n\n\nOTHER = "/api/v3"\n')
    assert sorted(http_violations(str(package))) == [
        ('runbooks/bad.py', 6, 'imports requests.exceptions'),
        ('runbooks/bad.py', 7, "'/api/v3.1/executions'"),
        ('versions/rules.py', 5, "'/api/v3'")]


def test_no_product_module_is_longer_than_500_lines():
    long = {}
    for path in list(_modules().values()) + [os.path.join(ROOT, '_cloudify_upgrade_hook.py')]:
        with open(path) as stream:
            count = sum(1 for _ in stream)
        if count > MAX_LINES:
            long[os.path.relpath(path, ROOT)] = count
    assert long == {}


def _text_files(paths, root):
    for rel in paths:
        full = os.path.join(root, rel)
        if os.path.isfile(full):
            yield full
            continue
        for base, dirs, files in os.walk(full):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in files:
                yield os.path.join(base, name)


def outside_references(paths, root=ROOT):
    found = []
    for path in _text_files(paths, root):
        with open(path, encoding='utf-8', errors='replace') as stream:
            for number, line in enumerate(stream, 1):
                if OUTSIDE.search(line):
                    found.append('{0}:{1}: {2}'.format(
                        os.path.relpath(path, root), number, line.strip()))
    return found


def tracked_files(root=ROOT):
    """Every file git tracks (relative paths); the whole tree but .git and .venv without git."""
    try:
        listed = subprocess.run(['git', 'ls-files'], cwd=root, capture_output=True, text=True,
                                check=True).stdout.split('\n')
        return [path for path in listed if path]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for base, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in ('.git', '.venv', '__pycache__', 'build')]
            found.extend(os.path.relpath(os.path.join(base, name), root) for name in files)
        return found


def test_the_repository_cites_nothing_outside_itself():
    # this file names the forbidden forms as test data
    files = [path for path in tracked_files() if path != 'tests/unit/test_architecture.py']
    assert outside_references(files) == []


def test_the_outside_reference_check_finds_them(tmp_path):
    (tmp_path / 'docs').mkdir()
    # written in two parts, so that this repository holds no such reference itself
    (tmp_path / 'docs' / 'a.md').write_text('fine\nSee ../' + 'shared/reference/x.md\n')
    (tmp_path / 'b.py').write_text('PATH = "/work/someone/x"\nOK = "/etc/cloudify"\n'
                                   'ALSO_OK = "/root/cloudify/server.crt"\n')
    found = outside_references(['docs', 'b.py'], str(tmp_path))
    assert [line.split(': ')[0] for line in found] == ['docs/a.md:2', 'b.py:1']


def interfaces(text):
    """The names in backquotes in the "## Interfaces" section of ARCHITECTURE.md."""
    section = re.search(r'^## Interfaces\n(.*?)(?=^## )', text, re.M | re.S)
    assert section, 'docs/ARCHITECTURE.md has no "## Interfaces" section'
    return sorted({re.sub(r'\(.*$', '', name) for name in
                   re.findall(r'`([A-Za-z_][\w.]*(?:\([^`]*\))?)`', section.group(1))})


def resolve(name):
    """The object ``cloudify_upgrade_plugin.<name>`` names (module, then attributes)."""
    parts = '{0}.{1}'.format(PACKAGE, name).split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def test_every_interface_named_in_the_architecture_exists():
    with open(os.path.join(ROOT, 'docs', 'ARCHITECTURE.md')) as stream:
        names = interfaces(stream.read())
    assert len(names) > 50
    missing = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append('{0} ({1})'.format(name, error))
    assert missing == []


def test_the_interface_check_refuses_a_name_that_does_not_exist():
    names = interfaces('## Interfaces\n\n- `manager.client.Manager.connection()` and '
                       '`engine.step.NoSuchThing`\n\n## Next\n`not.this`\n')
    assert names == ['engine.step.NoSuchThing', 'manager.client.Manager.connection']
    resolve(names[1])
    with pytest.raises(AttributeError):
        resolve(names[0])
