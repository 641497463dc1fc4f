"""The offline package: `wagon create` then `wagon validate` succeed on a copy of the source,
the archive describes this plugin at this version, ships every module and function that
plugin.yaml maps an operation or a workflow to, and installing it offline into a fresh
virtualenv gives a `cfy` with `upgrade` (what an air-gapped operator host does).
"""
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.packaging import wagon_contents

REPO = Path(__file__).resolve().parents[2]
PTH_NAME = 'cloudify_upgrade_plugin-hook.pth'
WAGON_TIMEOUT = 900


def _source_version():
    scope = {}
    exec((REPO / 'cloudify_upgrade_plugin' / '__version__.py').read_text(), scope)
    return scope['__version__']


def _wagon(*args, cwd):
    """Run wagon with the test interpreter (it shells out to `sys.executable -m pip`)."""
    result = subprocess.run([sys.executable, '-c', 'import wagon; wagon.main()', *args],
                            cwd=str(cwd), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=WAGON_TIMEOUT)
    assert result.returncode == 0, 'wagon {0}\n{1}\n{2}'.format(
        ' '.join(args), result.stdout, result.stderr)
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def wagon_archive(source_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp('wagon-out')
    _wagon('create', str(source_tree), '-o', str(out), '-f', cwd=source_tree)
    archives = list(out.glob('*.wgn'))
    assert len(archives) == 1, archives
    return archives[0]


def test_wagon_create_then_validate(wagon_archive):
    output = _wagon('validate', str(wagon_archive), cwd=wagon_archive.parent)
    assert 'Validation Passed' in output, output


def test_wagon_metadata_names_this_plugin(wagon_archive):
    version = _source_version()
    assert wagon_archive.name.startswith('cloudify_upgrade_plugin-{0}-py311-'.format(version))
    with zipfile.ZipFile(wagon_archive) as archive:
        metadata = json.loads(archive.read('cloudify-upgrade-plugin/package.json'))
        ours = 'cloudify-upgrade-plugin/wheels/cloudify_upgrade_plugin-{0}-py3-none-any.whl'
        inner = archive.read(ours.format(version))
    assert metadata['package_name'] == 'cloudify-upgrade-plugin'
    assert metadata['package_version'] == version
    wheels = metadata['wheels']
    assert any(w.startswith('cloudify-7.0.') for w in wheels), wheels
    assert any(w.startswith('cloudify_common-7.0.') for w in wheels), wheels
    inner_path = wagon_archive.parent / 'inner.whl'
    inner_path.write_bytes(inner)
    with zipfile.ZipFile(inner_path) as whl:
        assert PTH_NAME in whl.namelist()


def test_wagon_ships_everything_plugin_yaml_maps_to(wagon_archive):
    assert len(wagon_contents.plugin_yaml_mappings()) >= 9   # 5 operations and 4 workflows
    assert 'cloudify_upgrade_plugin/fleet/runbooks.py' in wagon_contents.source_modules()
    assert wagon_contents.problems(wagon_archive) == []


def test_the_wagon_check_finds_a_missing_module(wagon_archive, tmp_path):
    """A wagon whose inner wheel lost a module plugin.yaml needs fails the check."""
    broken = tmp_path / wagon_archive.name
    with zipfile.ZipFile(wagon_archive) as source, \
            zipfile.ZipFile(broken, 'w') as target:
        for item in source.infolist():
            data = source.read(item)
            if '/wheels/cloudify_upgrade_plugin-' in item.filename:
                data = _without(data, 'cloudify_upgrade_plugin/fleet/operations.py')
            target.writestr(item, data)
    found = wagon_contents.problems(broken)
    assert 'cloudify_upgrade_plugin/fleet/operations.py is not in' in found[0], found
    assert any('plugin.yaml: cloudify_upgrade_plugin.fleet.operations.plan)' in p
               for p in found), found


def _without(wheel_bytes, name):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as source, \
            zipfile.ZipFile(out, 'w') as target:
        for item in source.infolist():
            if item.filename != name:
                target.writestr(item, source.read(item))
    return out.getvalue()


def test_offline_install_gives_cfy_upgrade(wagon_archive, tmp_path, help_commands):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    # wagon.install runs `<venv>/bin/python -m pip install --no-index --find-links <wheels>`.
    subprocess.run([sys.executable, '-c', 'import sys, wagon; '
                    'wagon.install(sys.argv[1], venv=sys.argv[2])',
                    str(wagon_archive), str(venv)],
                   check=True, capture_output=True, timeout=WAGON_TIMEOUT)
    home = tmp_path / 'home'
    home.mkdir()
    env = {'PATH': '{0}/bin:/usr/bin:/bin'.format(venv), 'HOME': str(home),
           'CFY_WORKDIR': str(home), 'LC_ALL': 'C.UTF-8', 'COLUMNS': '80'}
    result = subprocess.run([str(venv / 'bin' / 'cfy'), '--help'], cwd=str(tmp_path),
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'upgrade' in help_commands(result.stdout), result.stdout
