"""Uninstalled and broken installs never hurt the host: Python starts silently, `cfy` works,
and a half-removed plugin explains itself instead of printing a traceback.

Each test breaks the shared session virtualenv and its fixtures restore it afterwards.
"""
import pytest

PTH_NAME = 'cloudify_upgrade_plugin-hook.pth'
HOOK_FILE = '_cloudify_upgrade_hook.py'


def _assert_silent_start(venv):
    result = venv.run('python', '-c', 'pass')
    assert (result.rc, result.out, result.err) == (0, '', ''), str(result)


def test_uninstall_leaves_cfy_working_without_upgrade(restore_install, help_commands):
    venv = restore_install
    removed = venv.pip('uninstall', '-y', 'cloudify-upgrade-plugin')
    assert 'Successfully uninstalled cloudify-upgrade-plugin' in removed.out, str(removed)

    _assert_silent_start(venv)
    result = venv.run('cfy', '--help', check=True)
    assert 'upgrade' not in help_commands(result.out), str(result)
    assert 'snapshots' in help_commands(result.out), str(result)
    assert result.err == '', str(result)
    unknown = venv.run('cfy', 'upgrade', '--help')
    assert unknown.rc == 2 and 'No such command' in unknown.err, str(unknown)

    site = venv.site_packages
    leftovers = sorted(p.name for p in site.iterdir() if 'upgrade' in p.name.lower())
    leftovers += sorted(p.name for p in (site / '__pycache__').glob('_cloudify_upgrade_hook*'))
    assert leftovers == []
    assert not (venv.bin / 'cfy-upgrade').exists()
    assert (venv.bin / 'cfy').exists()


def test_deleted_package_dir_degrades_to_an_explaining_command(restore_install, stash,
                                                               help_commands):
    venv = restore_install
    stash(venv.site_packages / 'cloudify_upgrade_plugin')
    assert (venv.site_packages / PTH_NAME).exists()

    _assert_silent_start(venv)
    listing = venv.run('cfy', '--help')
    assert listing.rc == 0, str(listing)
    assert 'snapshots' in help_commands(listing.out), str(listing)
    assert venv.run('cfy', 'snapshots', '--help').rc == 0

    for argv in (('upgrade',), ('upgrade', 'prepare', '--help')):
        broken = venv.run('cfy', *argv)
        assert broken.rc == 1, str(broken)
        assert 'could not be loaded' in broken.err, str(broken)
        assert 'No module named' in broken.err and 'cloudify_upgrade_plugin' in broken.err
        assert 'pip install --force-reinstall cloudify-upgrade-plugin' in broken.err
        assert 'CFY_UPGRADE_PLUGIN_DISABLE' in broken.err
        assert 'Traceback' not in broken.err, str(broken)


@pytest.mark.parametrize('damage', ['missing', 'raises', 'syntax-error'])
def test_broken_hook_module_keeps_python_silent(restore_install, stash, help_commands,
                                                damage):
    venv = restore_install
    hook = venv.site_packages / HOOK_FILE
    stash(hook)
    for cached in (venv.site_packages / '__pycache__').glob('_cloudify_upgrade_hook*'):
        stash(cached)
    if damage == 'raises':
        hook.write_text('raise RuntimeError("hook exploded")\n')
    elif damage == 'syntax-error':
        hook.write_text('def (:\n')
    assert (venv.site_packages / PTH_NAME).exists()

    _assert_silent_start(venv)
    result = venv.run('cfy', '--help')
    assert result.rc == 0 and result.err == '', str(result)
    assert 'upgrade' not in help_commands(result.out), str(result)
    assert venv.run('cfy-upgrade', '--help').rc == 0


BROKEN_SETUP = '''from setuptools import setup
setup(name='broken-cfy-commands', version='1.0', packages=['broken_cfy_commands'],
      entry_points={'cloudify_cli.commands': [
          'exits-on-import = broken_cfy_commands.exits:command',
          'not-a-command = broken_cfy_commands.objects:command']})
'''


@pytest.fixture
def broken_distribution(plugin_venv, tmp_path):
    """A third-party distribution in cfy's group: one entry point whose module calls
    sys.exit while imported, one that is not a click command; uninstalled at teardown."""
    source = tmp_path / 'broken-dist'
    package = source / 'broken_cfy_commands'
    package.mkdir(parents=True)
    (source / 'setup.py').write_text(BROKEN_SETUP)
    (package / '__init__.py').write_text('')
    (package / 'exits.py').write_text('import sys\nsys.exit("refusing to load")\n')
    (package / 'objects.py').write_text('command = {"not": "a click command"}\n')
    plugin_venv.pip('install', '-q', '--no-deps', '--no-build-isolation', str(source))
    yield plugin_venv
    plugin_venv.pip('uninstall', '-y', 'broken-cfy-commands')


def test_broken_third_party_commands_break_neither_help_nor_upgrade(broken_distribution,
                                                                    help_commands):
    """Issue 17 item 10: `cfy --help`, `cfy upgrade --help` and `cfy upgrade plan` work; the
    broken commands explain themselves (exit 1, naming their distribution)."""
    venv = broken_distribution
    listing = venv.run('cfy', '--help')
    assert listing.rc == 0, str(listing)
    names = help_commands(listing.out)
    assert {'upgrade', 'snapshots', 'exits-on-import', 'not-a-command'} <= set(names)
    assert 'Traceback' not in listing.out + listing.err, str(listing)
    upgrade = venv.run('cfy', 'upgrade', '--help')
    assert upgrade.rc == 0 and 'plan' in help_commands(upgrade.out), str(upgrade)
    plan = venv.run('cfy', 'upgrade', 'plan')      # no profile: a clean plugin error
    assert plan.rc in (1, 2) and 'Error' in plan.out + plan.err, str(plan)
    assert 'Traceback' not in plan.out + plan.err, str(plan)
    for name in ('exits-on-import', 'not-a-command'):
        broken = venv.run('cfy', name)
        assert broken.rc == 1 and 'could not be loaded' in broken.err, str(broken)
        assert 'broken-cfy-commands' in broken.err and 'Traceback' not in broken.err
