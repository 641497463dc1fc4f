"""The declared dependencies match what the code imports and what the Makefile installs.

setup.py is read with ``ast`` (not run); the Makefile's ``.deps`` rule is read as text.
"""
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, 'cloudify_upgrade_plugin')
# top-level modules that come from a distribution of another name
PROVIDED_BY = {'cloudify_cli': 'cloudify', 'cloudify_rest_client': 'cloudify'}


def _setup_keywords():
    with open(os.path.join(ROOT, 'setup.py')) as stream:
        tree = ast.parse(stream.read())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and
                getattr(node.func, 'id', None) == 'setup')
    return {kw.arg: kw.value for kw in call.keywords}


def _names(requirements):
    return {re.split(r'[<>=!~\[ ;]', r, 1)[0].lower() for r in requirements}


def _imported_top_levels():
    found = set()
    for base, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            with open(os.path.join(base, name)) as stream:
                tree = ast.parse(stream.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split('.')[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split('.')[0])
    return found


def test_every_third_party_import_is_declared():
    declared = _names(ast.literal_eval(_setup_keywords()['install_requires']))
    third_party = {m for m in _imported_top_levels()
                   if m not in sys.stdlib_module_names and m != 'cloudify_upgrade_plugin'}
    missing = {m for m in third_party if PROVIDED_BY.get(m, m).lower() not in declared}
    assert missing == set(), missing


def test_makefile_installs_cloudify_and_the_test_extras():
    keywords = _setup_keywords()
    install = ast.literal_eval(keywords['install_requires'])
    extras = ast.literal_eval(keywords['extras_require'])['test']
    with open(os.path.join(ROOT, 'Makefile')) as stream:
        makefile = stream.read()
    rule = re.search(r'^\$\(VENV\)/\.deps:.*?\n((?:\t.*\n)+)', makefile, re.M).group(1)
    installed = re.findall(r"'([^']+)'", rule.replace('\\\n', ' '))
    assert sorted(installed) == sorted([install[0]] + extras), installed
