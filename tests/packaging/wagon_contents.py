"""What a wagon of this plugin must ship for plugin.yaml to work on a manager, checked on the
archive itself (``make wagon`` runs it after ``wagon validate``; the packaging tests too):

- the wagon's metadata names plugin.yaml's ``package_name`` and ``package_version``;
- the inner wheel of this project holds every module of the source package (the modules
  plugin.yaml maps to import the rest: fleet -> runbooks -> manager, host, ...);
- every ``upgrade.<module>.<function>`` plugin.yaml maps an operation or a workflow to is
  a module of that wheel defining that function.

    python -m tests.packaging.wagon_contents WAGON [REPO]     (exit 1 and the problems)
"""
import ast
import io
import json
import sys
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = 'cloudify_upgrade_plugin'


def plugin_yaml(repo=REPO) -> dict:
    return yaml.safe_load((Path(repo) / 'plugin.yaml').read_text())


def plugin_yaml_mappings(repo=REPO):
    """Every `<module>.<function>` (without the `upgrade.` plugin prefix) plugin.yaml maps
    an operation or a workflow to."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ('implementation', 'mapping') and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(plugin_yaml(repo))
    assert found and all(m.startswith('upgrade.') for m in found), found
    return sorted(m[len('upgrade.'):] for m in found)


def source_modules(repo=REPO):
    """Paths (relative to the repository) of the package's modules."""
    root = Path(repo)
    return sorted(str(path.relative_to(root)) for path in (root / PACKAGE).rglob('*.py'))


def problems(wagon_path, repo=REPO):
    """[what is missing or wrong] in the wagon at ``wagon_path`` (empty: all shipped)."""
    plugin = plugin_yaml(repo)['plugins']['upgrade']
    found = []
    with zipfile.ZipFile(str(wagon_path)) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read(
            next(n for n in names if n.endswith('/package.json'))))
        for key in ('package_name', 'package_version'):
            if metadata.get(key) != plugin[key]:
                found.append('wagon {0} is {1!r}, plugin.yaml says {2!r}'.format(
                    key, metadata.get(key), plugin[key]))
        inner = [n for n in names if '/wheels/{0}-'.format(PACKAGE) in n]
        if len(inner) != 1:
            return found + ['the wagon holds {0} wheels of {1}: {2}'.format(
                len(inner), PACKAGE, inner)]
        wheel_bytes = archive.read(inner[0])
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        shipped = set(wheel.namelist())
        for module in source_modules(repo):
            if module not in shipped:
                found.append('{0} is not in {1}'.format(module, inner[0]))
        for mapping in plugin_yaml_mappings(repo):
            module, _, function = mapping.rpartition('.')
            path = module.replace('.', '/') + '.py'
            if path not in shipped:
                found.append('{0} (plugin.yaml: {1}) is not in the wheel'.format(
                    path, mapping))
                continue
            tree = ast.parse(wheel.read(path))
            defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
            if function not in defined:
                found.append('{0} defines no {1} (plugin.yaml: {2})'.format(
                    path, function, mapping))
    return found


def main(argv):
    wagon_path = argv[0]
    found = problems(wagon_path, argv[1] if len(argv) > 1 else REPO)
    for problem in found:
        print('wagon contents: ' + problem)
    if not found:
        print('wagon contents: plugin.yaml\'s {0} mappings and {1} modules are shipped.'.format(
            len(plugin_yaml_mappings()), len(source_modules())))
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
