"""The installed wheel in a fresh virtualenv: `cfy upgrade` appears with nothing to configure,
the host's own commands are unchanged, the fallbacks work, the kill switch hides the plugin
and plugin code is only imported when the `upgrade` command (or the command list) is needed.
"""
import json
import re
from pathlib import Path

import pytest

KEBAB = re.compile(r'^[a-z0-9]+(-[a-z0-9]+)*$')

# Runs cfy's root group in-process and reports whether the plugin package got imported.
PROBE = '''
import sys
from cloudify_cli.main import _cfy
try:
    _cfy.main(args=sys.argv[1:], prog_name='cfy')
except SystemExit:
    pass
sys.stderr.write('\\nPLUGIN-IMPORTED=%s\\n' % ('cloudify_upgrade_plugin.cli' in sys.modules))
'''


def test_python_start_is_silent(plugin_venv):
    result = plugin_venv.run('python', '-c', 'pass')
    assert (result.rc, result.out, result.err) == (0, '', ''), str(result)


def test_pth_installs_the_finder_at_start_up(plugin_venv):
    code = ('import sys; print(sum(type(f).__name__ == "_Finder" and '
            'type(f).__module__ == "_cloudify_upgrade_hook" for f in sys.meta_path))')
    assert plugin_venv.run('python', '-c', code, check=True).out.strip() == '1'
    off = plugin_venv.run('python', '-c', code, env={'CFY_UPGRADE_PLUGIN_DISABLE': '1'})
    assert off.out.strip() == '0', str(off)


def test_cfy_help_lists_upgrade(plugin_venv, help_commands):
    result = plugin_venv.run('cfy', '--help', check=True)
    commands = help_commands(result.out)
    assert 'upgrade' in commands, str(result)
    assert 'snapshots' in commands and 'profiles' in commands, str(result)
    assert '[broken plugin]' not in result.out


def test_cfy_upgrade_help_lists_the_contract_commands(plugin_venv, help_commands,
                                                      contract_commands):
    result = plugin_venv.run('cfy', 'upgrade', '--help', check=True)
    assert result.out.startswith('Usage: cfy upgrade '), str(result)
    assert set(help_commands(result.out)) == contract_commands, str(result)


@pytest.mark.parametrize('command', sorted({'plan', 'prepare', 'new-host', 'in-place',
                                            'verify-heals', 'status'}))
def test_every_contract_command_has_help(plugin_venv, command):
    result = plugin_venv.run('cfy', 'upgrade', command, '--help', check=True)
    assert result.out.startswith('Usage: cfy upgrade {0} '.format(command)), str(result)
    assert '--json' in result.out and '-v, --verbose' in result.out, str(result)


def test_prepare_help_shows_its_options(plugin_venv):
    result = plugin_venv.run('cfy', 'upgrade', 'prepare', '--help', check=True)
    for option in ('--mode', '--target-version', '--snapshot-id', '--waive', '--reason'):
        assert option in result.out, str(result)


def test_snapshots_help_still_works(plugin_venv, help_commands):
    result = plugin_venv.run('cfy', 'snapshots', '--help', check=True)
    assert result.out.startswith('Usage: cfy snapshots '), str(result)
    assert {'create', 'restore', 'download'} <= set(help_commands(result.out)), str(result)
    assert result.err == '', str(result)


@pytest.mark.parametrize('argv', [('cfy-upgrade', '--help'),
                                  ('python', '-m', 'cloudify_upgrade_plugin', '--help')],
                         ids=['cfy-upgrade', 'python-m'])
def test_fallbacks_show_the_upgrade_group(plugin_venv, help_commands, contract_commands,
                                          argv):
    result = plugin_venv.run(*argv, check=True)
    assert 'Usage: cfy upgrade ' in result.out, str(result)
    assert set(help_commands(result.out)) == contract_commands, str(result)


def test_fallback_runs_a_command_like_cfy_upgrade(plugin_venv):
    direct = plugin_venv.run('cfy', 'upgrade', 'status', '--json')
    fallback = plugin_venv.run('cfy-upgrade', 'status', '--json')
    assert (fallback.rc, fallback.out) == (direct.rc, direct.out), '{0}\n{1}'.format(
        direct, fallback)


def test_no_console_script_named_cfy_comes_from_the_plugin(plugin_venv):
    launcher = (plugin_venv.bin / 'cfy').read_text()
    assert 'cloudify_cli.main' in launcher and 'cloudify_upgrade_plugin' not in launcher


@pytest.mark.parametrize('command', sorted({'plan', 'prepare', 'new-host', 'in-place',
                                            'verify-heals', 'status'}))
def test_commands_fail_cleanly_without_a_manager(plugin_venv, command):
    """In an empty cfy workdir no command can succeed; each fails with an id, never a trace.

    Implemented commands fail with a contract exit code and a kebab-case error id in their
    single JSON document (or a click usage error); a stub must exit 1 and say so.
    """
    result = plugin_venv.run('cfy', 'upgrade', command, '--json')
    assert result.rc in (1, 2, 3), str(result)
    assert 'Traceback' not in result.err, str(result)
    if result.rc == 2 and not result.out.strip():
        assert 'Usage: cfy upgrade {0}'.format(command) in result.err, str(result)
        return
    document = json.loads(result.out)
    error = document['error']
    assert KEBAB.match(error['id']), str(result)
    assert error['exit_code'] == result.rc, str(result)
    assert 'Error [{0}]'.format(error['id']) in result.err, str(result)
    if error['id'] == 'not-implemented-yet':
        assert result.rc == 1, str(result)
        assert 'not implemented yet' in error['message'], str(result)
        assert 'not implemented yet' in result.err, str(result)


# A command whose behaviour is not delivered yet, declared the way cli.py declares them.
STUB_PROBE = '''
import sys
from cloudify_upgrade_plugin import cli, errors
from cloudify_upgrade_plugin.registration import cfy_root


class NotImplementedYet(errors.UpgradeError):
    """A contract command whose behaviour has not been delivered yet (exit 1)."""
    default_id = 'not-implemented-yet'


@cli.upgrade.command(name='stub-probe')
@cli.cfy.options.common_options
@cli.boundary
def stub_probe(**_):
    raise NotImplementedYet(
        '`cfy upgrade stub-probe` is not implemented yet (tracked in issue 99); it has '
        'changed nothing.', hints=['Follow the manual procedure for this step.'])


cfy_root().main(args=['upgrade', 'stub-probe'] + sys.argv[1:], prog_name='cfy')
'''


def test_a_stub_command_exits_1_saying_not_implemented_yet(plugin_venv):
    human = plugin_venv.run('python', '-c', STUB_PROBE)
    assert human.rc == 1, str(human)
    # Without --json cfy logs to stdout.
    assert 'Error [not-implemented-yet]: `cfy upgrade stub-probe` is not implemented yet ' \
        '(tracked in issue 99)' in human.out, str(human)
    assert 'Traceback' not in human.out + human.err, str(human)
    as_json = plugin_venv.run('python', '-c', STUB_PROBE, '--json')
    assert as_json.rc == 1, str(as_json)
    error = json.loads(as_json.out)['error']
    assert (error['id'], error['exit_code']) == ('not-implemented-yet', 1), str(as_json)
    assert 'not implemented yet' in as_json.err, str(as_json)


def test_kill_switch_hides_upgrade_and_changes_nothing_else(plugin_venv, help_commands):
    on = plugin_venv.run('cfy', '--help', check=True)
    off = plugin_venv.run('cfy', '--help', env={'CFY_UPGRADE_PLUGIN_DISABLE': '1'}, check=True)
    assert 'upgrade' in help_commands(on.out)
    assert 'upgrade' not in help_commands(off.out), str(off)
    without_upgrade = [line for line in on.out.splitlines()
                       if not re.match(r'^  upgrade\s', line)]
    assert without_upgrade == off.out.splitlines()
    assert (on.err, off.err) == ('', '')


def test_kill_switch_makes_cfy_upgrade_unknown(plugin_venv):
    result = plugin_venv.run('cfy', 'upgrade', '--help', env={'CFY_UPGRADE_PLUGIN_DISABLE': '1'})
    assert result.rc == 2 and 'No such command' in result.err, str(result)


@pytest.mark.parametrize('argv, imported', [
    (('snapshots', '--help'), False),
    (('--version',), False),
    (('profiles', 'list'), False),
    (('--help',), True),
    (('upgrade', '--help'), True),
], ids=['snapshots-help', 'version', 'profiles-list', 'help', 'upgrade-help'])
def test_plugin_code_loads_only_when_needed(plugin_venv, argv, imported):
    result = plugin_venv.run('python', '-c', PROBE, *argv)
    assert result.rc == 0, str(result)
    assert 'PLUGIN-IMPORTED={0}'.format(imported) in result.err, str(result)


def test_installed_version_is_the_source_version(plugin_venv):
    scope = {}
    source = Path(__file__).resolve().parents[2] / 'cloudify_upgrade_plugin' / '__version__.py'
    exec(source.read_text(), scope)
    code = ('import importlib.metadata as m, cloudify_upgrade_plugin as p; '
            'print(m.version("cloudify-upgrade-plugin"), p.__version__)')
    result = plugin_venv.run('python', '-c', code, check=True)
    assert result.out.split() == [scope['__version__']] * 2, str(result)
