"""The start-up hook in-process, loaded from the checkout: idempotent install and attach, lazy
resolution of entry points, deference to a host command of the same name, the kill switch,
and failures that stay inside the hook.
"""
import importlib
import importlib.util
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
HOOK_PATH = REPO / '_cloudify_upgrade_hook.py'
KILL_SWITCH = 'CFY_UPGRADE_PLUGIN_DISABLE'


class FakeEntryPoint(object):
    def __init__(self, name, command=None, error=None):
        self.name = name
        self.command = command
        self.error = error
        self.loads = 0

    def load(self):
        self.loads += 1
        if self.error is not None:
            raise self.error
        return self.command


def _exec_hook(name='_cloudify_upgrade_hook'):
    """Execute the hook's source as module `name` (this runs its install())."""
    spec = importlib.util.spec_from_file_location(name, HOOK_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def clean_import_state(monkeypatch):
    """Private meta_path (without any installed hook finder), no cached hook, no kill switch.

    `cloudify_cli.main` is hidden from sys.modules so that install() takes its finder branch;
    everything is restored at teardown.
    """
    monkeypatch.delenv(KILL_SWITCH, raising=False)
    monkeypatch.setattr(sys, 'meta_path', [f for f in sys.meta_path
                                           if type(f).__name__ != '_Finder'])
    for name in ('_cloudify_upgrade_hook', 'cloudify_cli.main'):
        forget_module(monkeypatch, name)
    return monkeypatch


def forget_module(monkeypatch, name):
    """Remove `name` from sys.modules until teardown, which restores (or removes) it."""
    monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def hook(clean_import_state):
    return _exec_hook()


@pytest.fixture
def plugin_group():
    @click.group(name='upgrade')
    def upgrade():
        """Plugin group."""

    @upgrade.command(name='plan')
    def plan():
        click.echo('planned')
    return upgrade


def _root(*commands):
    @click.group(name='cfy')
    def root():
        """Host root."""

    for command in commands:
        root.add_command(command)
    return root


def _host_command(name):
    @click.command(name=name, short_help='host ' + name)
    def command():
        click.echo('host ' + name)
    return command


@pytest.fixture
def fake_entry_points(hook, monkeypatch):
    """Replace entry-point discovery; returns (entry points list, call counter)."""
    points, calls = [], []

    def entry_points():
        calls.append(1)
        return list(points)
    monkeypatch.setattr(hook, '_entry_points', entry_points)
    return points, calls


def _finders():
    return [f for f in sys.meta_path if type(f).__name__ == '_Finder']


def test_install_twice_and_import_twice_leave_one_finder(hook):
    assert len(_finders()) == 1
    hook.install()
    hook.install()
    assert len(_finders()) == 1
    _exec_hook()  # a second execution of the module under the same name
    assert len(_finders()) == 1


def test_kill_switch_installs_nothing(clean_import_state):
    clean_import_state.setenv(KILL_SWITCH, '1')
    _exec_hook()
    assert _finders() == []


def test_finder_ignores_every_other_module(hook):
    finder = _finders()[0]
    assert finder.find_spec('json') is None
    assert finder.find_spec('cloudify_cli') is None
    assert finder in sys.meta_path


def test_finder_attaches_once_after_the_target_module_ran(hook, fake_entry_points,
                                                          plugin_group, tmp_path,
                                                          clean_import_state):
    points, calls = fake_entry_points
    points.append(FakeEntryPoint('upgrade', plugin_group))
    (tmp_path / 'fake_cfy_main.py').write_text(
        'import click\n\n\n@click.group(name="cfy")\ndef _cfy():\n    pass\n')
    clean_import_state.syspath_prepend(str(tmp_path))
    clean_import_state.setattr(hook, 'TARGET_MODULE', 'fake_cfy_main')
    forget_module(clean_import_state, 'fake_cfy_main')

    module = importlib.import_module('fake_cfy_main')
    root = module._cfy
    assert getattr(root, hook._MARK) is True
    assert _finders() == []  # the finder removed itself once it had served
    assert calls == []  # nothing resolved yet: attaching is lazy

    hook.install()  # target already imported: attach again is a no-op
    assert len(_finders()) == 0
    result = CliRunner().invoke(root, ['upgrade', 'plan'])
    assert (result.exit_code, result.output) == (0, 'planned\n'), result.output
    ctx = click.Context(root)
    assert root.list_commands(ctx).count('upgrade') == 1
    assert len(calls) == 1


def test_attach_failure_never_breaks_the_import(hook, tmp_path, clean_import_state):
    (tmp_path / 'odd_cfy_main.py').write_text('_cfy = object()\nLOADED = True\n')
    clean_import_state.syspath_prepend(str(tmp_path))
    clean_import_state.setattr(hook, 'TARGET_MODULE', 'odd_cfy_main')
    forget_module(clean_import_state, 'odd_cfy_main')
    module = importlib.import_module('odd_cfy_main')
    assert module.LOADED is True


def test_attach_is_idempotent(hook, fake_entry_points, plugin_group):
    points, calls = fake_entry_points
    points.append(FakeEntryPoint('upgrade', plugin_group))
    root = _root(_host_command('snapshots'))
    hook.attach(root)
    get_command, list_commands = root.get_command, root.list_commands
    assert hook.attach(root) is root
    assert (root.get_command, root.list_commands) == (get_command, list_commands)

    ctx = click.Context(root)
    assert root.list_commands(ctx) == ['snapshots', 'upgrade']
    assert root.get_command(ctx, 'upgrade') is plugin_group
    assert root.list_commands(ctx) == ['snapshots', 'upgrade']
    assert len(calls) == 1 and points[0].loads == 1


def test_built_in_commands_do_not_resolve_entry_points(hook, fake_entry_points, plugin_group):
    points, calls = fake_entry_points
    points.append(FakeEntryPoint('upgrade', plugin_group))
    root = hook.attach(_root(_host_command('snapshots')))
    result = CliRunner().invoke(root, ['snapshots'])
    assert result.output == 'host snapshots\n'
    assert calls == [] and points[0].loads == 0
    result = CliRunner().invoke(root, ['upgrade', 'plan'])
    assert result.output == 'planned\n'
    assert len(calls) == 1


def test_unknown_command_is_still_a_usage_error(hook, fake_entry_points, plugin_group):
    points, _ = fake_entry_points
    points.append(FakeEntryPoint('upgrade', plugin_group))
    root = hook.attach(_root(_host_command('snapshots')))
    result = CliRunner().invoke(root, ['no-such-thing'])
    assert result.exit_code == 2 and 'No such command' in result.output


def test_host_command_of_the_same_name_wins(hook, fake_entry_points, plugin_group):
    points, _ = fake_entry_points
    plugin_ep = FakeEntryPoint('upgrade', plugin_group)
    points.append(plugin_ep)
    host_upgrade = _host_command('upgrade')
    root = hook.attach(_root(host_upgrade, _host_command('snapshots')))

    ctx = click.Context(root)
    assert root.list_commands(ctx) == ['snapshots', 'upgrade']
    assert root.get_command(ctx, 'upgrade') is host_upgrade
    assert CliRunner().invoke(root, ['upgrade']).output == 'host upgrade\n'
    assert plugin_ep.loads == 0  # not even imported


def test_broken_entry_point_becomes_an_explaining_command(hook, fake_entry_points):
    points, _ = fake_entry_points
    points.append(FakeEntryPoint('upgrade', error=ImportError('No module named x')))
    root = hook.attach(_root(_host_command('snapshots')))

    listing = CliRunner().invoke(root, ['--help'])
    assert listing.exit_code == 0, listing.output
    assert '[broken plugin]' in listing.output
    for argv in (['upgrade'], ['upgrade', 'plan', '--help']):
        result = CliRunner().invoke(root, argv)
        assert result.exit_code == 1, result.output
        assert 'could not be loaded' in result.output
        assert 'ImportError: No module named x' in result.output
        assert KILL_SWITCH in result.output


def test_entry_point_discovery_failure_is_swallowed(hook, monkeypatch):
    def explode():
        raise RuntimeError('metadata is broken')
    monkeypatch.setattr(hook, '_entry_points', explode)
    root = hook.attach(_root(_host_command('snapshots')))
    result = CliRunner().invoke(root, ['--help'])
    assert result.exit_code == 0 and 'snapshots' in result.output
    assert CliRunner().invoke(root, ['upgrade']).exit_code == 2


def test_kill_switch_leaves_the_root_untouched(hook, monkeypatch, fake_entry_points,
                                               plugin_group):
    points, calls = fake_entry_points
    points.append(FakeEntryPoint('upgrade', plugin_group))
    monkeypatch.setenv(KILL_SWITCH, '1')
    root = _root(_host_command('snapshots'))
    hook.attach(root)
    assert not getattr(root, hook._MARK, False)
    assert 'get_command' not in vars(root) and 'list_commands' not in vars(root)
    assert CliRunner().invoke(root, ['upgrade']).exit_code == 2
    assert calls == []


def test_real_entry_point_group_resolves_the_plugin_group(monkeypatch):
    """The test environment has the project installed: its entry point names cli.upgrade."""
    monkeypatch.setenv(KILL_SWITCH, '1')  # load a private copy without installing anything
    spec = importlib.util.spec_from_file_location('_private_hook_copy', HOOK_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {ep.name: ep.value for ep in module._entry_points()}
    assert names.get('upgrade') == 'cloudify_upgrade_plugin.cli:upgrade'


class ExitingEntryPoint(FakeEntryPoint):
    """A third-party module that calls sys.exit while it is imported."""

    def load(self):
        self.loads += 1
        raise SystemExit(3)


@pytest.mark.parametrize('broken', [
    ExitingEntryPoint('exits-on-import'),
    FakeEntryPoint('not-a-command', command=object()),
    FakeEntryPoint('a-function', command=lambda: None)],
    ids=['sys-exit-on-import', 'not-a-click-command', 'a-plain-function'])
def test_a_broken_third_party_entry_point_breaks_neither_help_nor_upgrade(
        hook, fake_entry_points, plugin_group, broken):
    """Issue 17 item 10: `cfy --help` lists everything, `cfy upgrade plan` runs, and the
    broken command explains itself (exit 1, no traceback)."""
    points, _ = fake_entry_points
    points.extend([broken, FakeEntryPoint('upgrade', plugin_group)])
    root = hook.attach(_root(_host_command('snapshots')))

    listing = CliRunner().invoke(root, ['--help'])
    assert listing.exit_code == 0, listing.output
    assert 'snapshots' in listing.output and 'upgrade' in listing.output
    assert broken.name in listing.output and '[broken plugin]' in listing.output
    result = CliRunner().invoke(root, ['upgrade', 'plan'])
    assert (result.exit_code, result.output) == (0, 'planned\n'), result.output
    failed = CliRunner().invoke(root, [broken.name])
    assert failed.exit_code == 1 and 'could not be loaded' in failed.output
    assert failed.exception is None or isinstance(failed.exception, SystemExit)
