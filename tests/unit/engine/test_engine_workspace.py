"""The workspace: location, ids, modes 0700/0600 whatever the umask, atomic writes."""
import datetime
import os
import stat
import threading

import pytest

from cloudify_upgrade_plugin import clock, files
from cloudify_upgrade_plugin.engine import workspace as ws_module
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, FunctionStep, Runbook
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.errors import InputError


@pytest.fixture
def loose_umask():
    old = os.umask(0)
    yield
    os.umask(old)


def test_location_follows_cfy_workdir_at_call_time(workdir, tmp_path, monkeypatch):
    assert files.cfy_workdir() == os.path.join(str(workdir), '.cloudify')
    workspace = Workspace.create()
    assert workspace.root == os.path.join(str(workdir), '.cloudify', 'upgrades',
                                          workspace.upgrade_id)
    other = tmp_path / 'elsewhere'
    monkeypatch.setenv('CFY_WORKDIR', str(other))
    assert ws_module.upgrades_dir() == os.path.join(str(other), '.cloudify', 'upgrades')


def test_generated_id_and_meta(workdir, monkeypatch):
    fixed = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(clock, 'utcnow', lambda: fixed)
    workspace = Workspace.create(mode='in-place', source={'version': '4.6'})
    assert ws_module.UPGRADE_ID_RE.fullmatch(workspace.upgrade_id)
    assert workspace.upgrade_id.startswith('upg-20260304-050607-')
    assert len(workspace.upgrade_id) == len('upg-20260304-050607-') + 4
    meta = workspace.meta
    assert meta['upgrade_id'] == workspace.upgrade_id
    assert meta['mode'] == 'in-place'
    assert meta['created_at'] == '2026-03-04T05:06:07.000000Z'
    assert meta['source'] == {'version': '4.6'}


@pytest.mark.parametrize('bad', ['1abc', '-x', 'a b', 'a/b', '../up', '', 'x' * 101, 'é'])
def test_invalid_ids_are_refused(workdir, bad):
    with pytest.raises(InputError) as info:
        Workspace.create(bad)
    assert info.value.error_id == 'invalid-upgrade-id'
    assert not os.path.exists(ws_module.upgrades_dir()) or os.listdir(
        ws_module.upgrades_dir()) == []


def test_open_most_recent_and_by_id(workdir, monkeypatch):
    times = iter([datetime.datetime(2026, 1, day, tzinfo=datetime.timezone.utc)
                  for day in (5, 9, 7)])
    monkeypatch.setattr(clock, 'utcnow', lambda: next(times))
    Workspace.create('zulu')     # oldest, greatest name
    Workspace.create('alpha')    # newest
    Workspace.create('mike')
    assert Workspace.open().upgrade_id == 'alpha'
    assert Workspace.open('zulu').upgrade_id == 'zulu'


def test_open_unknown_lists_existing_ids(workdir):
    with pytest.raises(InputError) as info:
        Workspace.open()
    assert info.value.error_id == 'workspace-not-found'
    assert info.value.exit_code == 2
    Workspace.create('upg-one')
    Workspace.create('upg-two')
    with pytest.raises(InputError) as info:
        Workspace.open('upg-three')
    assert info.value.error_id == 'workspace-not-found'
    assert 'upg-one' in info.value.message and 'upg-two' in info.value.message


def test_create_existing(workdir):
    first = Workspace.create('upg-same')
    with pytest.raises(InputError) as info:
        Workspace.create('upg-same')
    assert info.value.error_id == 'workspace-exists'
    assert Workspace.create('upg-same', exist_ok=True).root == first.root


def test_paths_stay_inside(ws):
    assert ws.path('inventory/source.json') == os.path.join(ws.root, 'inventory',
                                                            'source.json')
    with pytest.raises(ValueError):
        ws.path('../other/journal.jsonl')


def _modes(root):
    found = {}
    for directory, dirnames, filenames in os.walk(root):
        found[directory] = stat.S_IMODE(os.stat(directory).st_mode)
        for name in filenames:
            path = os.path.join(directory, name)
            found[path] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def test_modes_on_everything_created(workdir, loose_umask):
    workspace = Workspace.create('upg-modes')
    runbook = Runbook('prepare', [FunctionStep(
        'write-things', run=lambda ctx: ctx.workspace.write_json(
            'inventory/source.json', {'tenants': {}}))])
    Runner(workspace, runbook, {'source': 'a'}).run(Context(workspace, yes=True))
    workspace.makedirs('backups/ssl')
    workspace.write_bytes('backups/ssl/ca.crt', b'cert')
    write_report(workspace, {'upgrade_id': workspace.upgrade_id})
    upgrades = ws_module.upgrades_dir()
    modes = _modes(upgrades)
    names = {os.path.relpath(path, workspace.root) for path in modes}
    assert {'journal.jsonl', 'journal.jsonl.head', 'workspace.json', '.lock', 'report.json',
            'report.md', 'inventory', 'inventory/source.json', 'backups/ssl/ca.crt'} <= names
    for path, mode in modes.items():
        expected = 0o700 if os.path.isdir(path) else 0o600
        assert mode == expected, (path, oct(mode))


def test_atomic_write_leaves_no_temp_file(tmp_path, loose_umask):
    target = tmp_path / 'sub' / 'file.json'
    atomic_write(str(target), '{"a": 1}')
    atomic_write(str(target), b'{"a": 2}')
    assert target.read_bytes() == b'{"a": 2}'
    assert os.listdir(str(tmp_path / 'sub')) == ['file.json']
    assert stat.S_IMODE(os.stat(str(target)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / 'sub')).st_mode) == 0o700


def test_atomic_write_crash_keeps_old_content(tmp_path, mocker):
    target = tmp_path / 'file.json'
    atomic_write(str(target), 'old')
    mocker.patch('os.replace', side_effect=OSError('disk on fire'))
    with pytest.raises(OSError):
        atomic_write(str(target), 'new content that must not appear')
    assert target.read_text() == 'old'
    assert os.listdir(str(tmp_path)) == ['file.json']


def test_atomic_write_crash_on_first_write_leaves_nothing(tmp_path, mocker):
    mocker.patch('os.replace', side_effect=OSError('disk on fire'))
    with pytest.raises(OSError):
        atomic_write(str(tmp_path / 'file.json'), 'new')
    assert os.listdir(str(tmp_path)) == []


def test_write_json_round_trip_and_redaction(ws):
    ws.write_json('inventory/source.json', {'tenants': {'t1': {'secrets': ['db_pw']}},
                                            'admin_password': 'hunter2'})
    assert ws.read_json('inventory/source.json') == {
        'tenants': {'t1': {'secrets': ['db_pw']}}, 'admin_password': '***'}
    assert ws.read_json('missing.json', default={}) == {}


def test_update_meta_merges(ws):
    ws.update_meta(cutover_at='2026-01-01T00:00:00Z', healing_fenced=True)
    meta = ws.meta
    assert meta['cutover_at'] == '2026-01-01T00:00:00Z'
    assert meta['healing_fenced'] is True
    assert meta['mode'] == 'new-host'


# -- issue 17 item 6: links are never followed, modes are enforced ------------------------

def test_open_private_refuses_a_link(tmp_path):
    outside = tmp_path / 'outside'
    outside.write_text('mine')
    link = tmp_path / 'journal.jsonl'
    link.symlink_to(outside)
    with pytest.raises(files.UnsafePath) as info:
        files.open_private(str(link), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    assert info.value.error_id == 'workspace-unsafe' and info.value.exit_code == 2
    assert outside.read_text() == 'mine'


def test_journal_append_never_follows_a_planted_link(cfy_workdir, tmp_path):
    workspace = Workspace.create('upg-links')
    outside = tmp_path / 'elsewhere.txt'
    outside.write_text('')
    os.symlink(str(outside), workspace.path('journal.jsonl'))
    with pytest.raises(files.UnsafePath):
        workspace.journal.append('a-step', 'started')
    assert outside.read_text() == ''


def test_opening_a_workspace_fixes_modes_and_refuses_links(cfy_workdir, tmp_path):
    workspace = Workspace.create('upg-modes')
    workspace.write_json('inventory/source.json', {})
    os.chmod(workspace.root, 0o755)
    os.chmod(workspace.path('inventory'), 0o750)
    os.chmod(workspace.path('workspace.json'), 0o644)
    opened = Workspace.open('upg-modes')
    modes = {rel: stat.S_IMODE(os.stat(opened.path(rel)).st_mode)
             for rel in ('', 'inventory', 'workspace.json', 'inventory/source.json')}
    assert modes == {'': 0o700, 'inventory': 0o700, 'workspace.json': 0o600,
                     'inventory/source.json': 0o600}
    os.symlink(str(tmp_path), workspace.path('snapshot'))
    with pytest.raises(files.UnsafePath) as info:
        Workspace.open('upg-modes')
    assert 'snapshot' in info.value.message and 'symbolic link' in info.value.message


def test_part_file_link_is_refused_before_any_request(tmp_path):
    from cloudify_upgrade_plugin.snapshot import transfer
    outside = tmp_path / 'outside'
    outside.write_bytes(b'abc')
    (tmp_path / 'snap.zip.part').symlink_to(outside)
    with pytest.raises(files.UnsafePath):   # port 9: a request would fail differently
        transfer.download(None, 'http://127.0.0.1:9/x', str(tmp_path / 'snap.zip'))
    assert outside.read_bytes() == b'abc'


@pytest.mark.parametrize('change, named', [
    ({'source': 'old'}, '"source" is str'), ({'runbooks': {}}, '"runbooks" is dict'),
    ({'snapshot': {'id': 5}}, '"snapshot.id" is int'),
    ({'runbooks': [{'steps': 'x'}]}, '"runbooks" holds')])
def test_workspace_json_of_the_wrong_types_is_corrupt(cfy_workdir, change, named):
    """Issue 17 item 8: workspace-corrupt (exit 2) naming the key, never a TypeError."""
    workspace = Workspace.create('upg-types')
    document = workspace.meta
    document.update(change)
    atomic_write(workspace.path('workspace.json'), __import__('json').dumps(document))
    with pytest.raises(InputError) as info:
        workspace.meta
    assert info.value.error_id == 'workspace-corrupt' and named in info.value.message


def test_a_base_other_than_the_cfy_workdir_holds_the_workspaces(workdir, tmp_path):
    """The fleet keeps its workspaces in a deployment's work directory."""
    base = tmp_path / 'deployment-workdir'
    created = Workspace.create('fleet-a_1', mode='new-host', base=str(base))
    assert created.root == str(base / 'upgrades' / 'fleet-a_1')
    assert ws_module.list_upgrade_ids(str(base)) == ['fleet-a_1']
    assert ws_module.list_upgrade_ids() == []
    assert Workspace.open('fleet-a_1', base=str(base)).meta['mode'] == 'new-host'
    with pytest.raises(InputError):
        Workspace.open('fleet-a_1')


def test_threads_updating_one_workspace_meta_lose_nothing(ws):
    """Read-merge-write under the workspace's meta lock (the fleet: another upgrade's
    thread writes this workspace's failed logins while its own steps update it)."""
    def writer(index):
        for item in range(4):
            Workspace(ws.root, ws.upgrade_id).update_meta(
                **{'k{0}_{1}'.format(index, item): item})

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    meta = ws.meta
    assert {key for key in meta if key.startswith('k')} == {
        'k{0}_{1}'.format(i, j) for i in range(6) for j in range(4)}
