"""plugin.yaml is a valid DSL 1.3 plugin for the field's own parser, and its package name and
version agree with setup.py, `__version__` and the top line of CHANGELOG.txt.

plugin.yaml derives its node type from `cloudify.nodes.Root`, so the probe blueprint also
imports the fleet tests' stand-in for the manager's built-in types (tests/fleet/types.yaml).
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

BLUEPRINT = '''\
tosca_definitions_version: cloudify_dsl_1_3
imports:
  - types.yaml
  - plugin.yaml
workflows:
  upgrade_noop: upgrade.cloudify_upgrade_plugin.noop
node_types:
  upgrade_probe: {}
node_templates:
  probe:
    type: upgrade_probe
    interfaces:
      probe:
        run: upgrade.cloudify_upgrade_plugin.noop
'''


def _source_version():
    scope = {}
    exec((REPO / 'cloudify_upgrade_plugin' / '__version__.py').read_text(), scope)
    return scope['__version__']


def _changelog_version():
    top = (REPO / 'CHANGELOG.txt').read_text().splitlines()[0]
    match = re.match(r'^(\d+\.\d+\.\d+): \S', top)
    assert match, 'CHANGELOG.txt must start with "X.Y.Z: text", got {0!r}'.format(top)
    return match.group(1)


def _setup_py(source_tree, option):
    result = subprocess.run([sys.executable, 'setup.py', option], cwd=source_tree,
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip()


def _parsed_plugins(tmp_path):
    from dsl_parser.parser import parse_from_path
    shutil.copy(REPO / 'plugin.yaml', tmp_path / 'plugin.yaml')
    shutil.copy(REPO / 'tests' / 'fleet' / 'types.yaml', tmp_path / 'types.yaml')
    blueprint = tmp_path / 'blueprint.yaml'
    blueprint.write_text(BLUEPRINT)
    plan = parse_from_path(str(blueprint))
    # the stand-in types bring cloudify-common's default_workflows (install: false)
    return plan['deployment_plugins_to_install'], [
        plugin for plugin in plan['workflow_plugins_to_install']
        if plugin['name'] != 'default_workflows']


def test_dsl_parser_accepts_plugin_yaml(tmp_path):
    deployment, workflow = _parsed_plugins(tmp_path)
    assert len(deployment) == 1 and len(workflow) == 1
    for plugin in deployment + workflow:
        assert plugin['name'] == 'upgrade'
        assert plugin['executor'] == 'central_deployment_agent'
        assert plugin['package_name'] == 'cloudify-upgrade-plugin'


def test_versions_agree_everywhere(tmp_path, source_tree):
    deployment, _ = _parsed_plugins(tmp_path)
    plugin = deployment[0]
    version = _source_version()
    assert plugin['package_version'] == version
    assert _changelog_version() == version
    assert plugin['package_name'] == _setup_py(source_tree, '--name')
    assert _setup_py(source_tree, '--version') == version


def test_package_version_is_a_quoted_string():
    text = (REPO / 'plugin.yaml').read_text()
    assert re.search(r'''^\s+package_version:\s*(['"])[^'"]+\1\s*$''', text, re.M), text
    doc = yaml.safe_load(text)
    assert isinstance(doc['plugins']['upgrade']['package_version'], str)


def test_changelog_lines_are_versioned_newest_first():
    versions = []
    for line in (REPO / 'CHANGELOG.txt').read_text().splitlines():
        match = re.match(r'^(\d+)\.(\d+)\.(\d+): \S', line)
        if match:
            versions.append(tuple(int(x) for x in match.groups()))
    assert versions, 'no "X.Y.Z: text" line in CHANGELOG.txt'
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
