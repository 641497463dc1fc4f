"""What the build produces: the wheel carries the start-up `.pth` and the hook at its root (also
when built from the sdist), declares the entry points, and `setup.py` answers `--name` and
`--version` with nothing else on stdout or stderr (wagon relies on it).
"""
import configparser
import email
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PTH_NAME = 'cloudify_upgrade_plugin-hook.pth'
HOOK_FILE = '_cloudify_upgrade_hook.py'


def _source_version():
    scope = {}
    exec((REPO / 'cloudify_upgrade_plugin' / '__version__.py').read_text(), scope)
    return scope['__version__']


def _dist_info(names, leaf):
    found = [n for n in names if n.endswith('.dist-info/' + leaf) and n.count('/') == 1]
    assert len(found) == 1, names
    return found[0]


def _wheel_contents(path):
    with zipfile.ZipFile(path) as whl:
        names = whl.namelist()
        read = {name: whl.read(name).decode() for name in names
                if name.endswith(('.pth', 'METADATA', 'entry_points.txt', 'RECORD'))
                or name == HOOK_FILE}
    return names, read


def _check_wheel(path):
    names, read = _wheel_contents(path)
    assert PTH_NAME in names, names
    assert HOOK_FILE in names, names
    assert read[PTH_NAME] == (REPO / PTH_NAME).read_text()
    assert read[HOOK_FILE] == (REPO / HOOK_FILE).read_text()
    record = read[_dist_info(names, 'RECORD')]
    recorded = {line.split(',')[0] for line in record.splitlines()}
    assert {PTH_NAME, HOOK_FILE} <= recorded  # so that `pip uninstall` removes them
    return names, read


def test_wheel_has_pth_and_hook_at_its_root(wheel_path):
    names, _ = _check_wheel(wheel_path)
    assert 'cloudify_upgrade_plugin/__init__.py' in names
    assert 'cloudify_upgrade_plugin/cli.py' in names
    assert not [n for n in names if n.startswith(('tests/', 'benchmarks/'))], names


def test_pth_is_one_guarded_import_line():
    lines = (REPO / PTH_NAME).read_text().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith('import ')  # site.py executes only lines that start like this
    assert 'import _cloudify_upgrade_hook' in line and 'except Exception' in line


def test_wheel_declares_entry_points_and_requirements(wheel_path):
    names, read = _wheel_contents(wheel_path)
    points = configparser.ConfigParser(delimiters=('=',))
    points.read_string(read[_dist_info(names, 'entry_points.txt')])
    assert points['cloudify_cli.commands']['upgrade'].strip() == \
        'cloudify_upgrade_plugin.cli:upgrade'
    scripts = points['console_scripts']
    assert scripts['cfy-upgrade'].strip() == 'cloudify_upgrade_plugin.registration:main'
    assert 'cfy' not in scripts  # never clobber cloudify's own launcher

    metadata = email.message_from_string(read[_dist_info(names, 'METADATA')])
    assert metadata['Name'] == 'cloudify-upgrade-plugin'
    assert metadata['Version'] == _source_version()
    requires = [r.replace(' ', '') for r in metadata.get_all('Requires-Dist')]
    assert any(r.startswith('cloudify') and '>=7.0.5' in r and '<7.1' in r
               and 'extra' not in r for r in requires), requires


def test_wheel_built_from_the_sdist_still_ships_the_pth(source_tree, tmp_path):
    sdist_dir, wheel_dir = tmp_path / 'sdist', tmp_path / 'wheel'
    subprocess.run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(sdist_dir)],
                   cwd=source_tree, check=True, capture_output=True, timeout=300)
    sdists = list(sdist_dir.glob('*.tar.gz'))
    assert len(sdists) == 1, sdists
    with tarfile.open(sdists[0]) as tar:
        members = {m.split('/', 1)[-1] for m in tar.getnames()}
    for needed in (PTH_NAME, HOOK_FILE, 'README.md', 'plugin.yaml', 'CHANGELOG.txt'):
        assert needed in members, sorted(members)

    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(wheel_dir), str(sdists[0])],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    wheels = list(wheel_dir.glob('*.whl'))
    assert len(wheels) == 1, wheels
    _check_wheel(wheels[0])


@pytest.mark.parametrize('option, expected', [('--name', 'cloudify-upgrade-plugin'),
                                              ('--version', _source_version())])
def test_setup_py_prints_only_the_answer(plugin_venv, source_tree, option, expected):
    """Run with the fresh venv's setuptools, as wagon does, in the source copy."""
    result = plugin_venv.run('python', 'setup.py', option, cwd=source_tree)
    assert (result.rc, result.out, result.err) == (0, expected + '\n', ''), str(result)
