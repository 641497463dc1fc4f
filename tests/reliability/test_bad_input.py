"""Bad input (issue 9 item 3): every option given a wrong value, broken snapshots, broken or
foreign workspaces.  Each case must end with a clear message and exit 2 (bad input) or 3
(blocked before anything changed), and no manager may receive a mutating request during
that command (``no_change``).
"""
import io
import json
import os
import re
import shutil
import zipfile

import pytest

from tests import flows
from tests.reliability import harness


class no_change(object):
    """Context manager: the managers receive no POST/PUT/PATCH/DELETE inside the block."""

    def __init__(self, *sims):
        self.sims = sims

    def __enter__(self):
        self.marks = [len(sim.requests) for sim in self.sims]
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            for sim, mark in zip(self.sims, self.marks):
                assert flows.mutations(sim, mark) == [], sim


def assert_refused(result, codes=(2, 3), words=(), error_id=None):
    """Exit 2 or 3, an error line (plugin: ``Error [id]: ...`` with possible solutions;
    click: ``Error: ...``), and the words that explain it."""
    text = result.stdout + result.stderr
    assert result.returncode in codes, harness.show(result)
    plugin = re.search(r'Error \[([a-z0-9-]+)\]: (.+)', text)
    usage = re.search(r'Error: (.+)', text)
    assert plugin or usage, harness.show(result)
    if plugin:
        assert 'Possible solutions:' in text, harness.show(result)
        if error_id is not None:
            assert plugin.group(1) == error_id, harness.show(result)
    assert 'Traceback' not in text, harness.show(result)
    for word in words:
        assert word.lower() in text.lower(), (word, harness.show(result))
    return plugin.group(1) if plugin else None


@pytest.fixture(scope='module')
def prepared_template(tmp_path_factory):
    """One prepared upgrade per module: old 4.1 + new 7.0 simulators that live for the whole
    module (bad input must not change them) and a cfy workdir after a successful prepare."""
    from tests.simulator.manager import start
    from tests.simulator.fixtures import TEST_TIME_SCALE
    base = tmp_path_factory.mktemp('prepared-template')
    old = start('4.1', data='demo', ssh=True, time_scale=TEST_TIME_SCALE,
                admin_password=flows.OLD_ADMIN_PASSWORD)
    new = start('7.0', data='empty', ssh=True, time_scale=TEST_TIME_SCALE,
                admin_password=flows.NEW_ADMIN_PASSWORD)
    try:
        workdir = base / 'cfyhome'
        workdir.mkdir(mode=0o700)
        sc = flows.Flow(workdir, base / 'logs')
        sc.profile('new', new, activate=False)
        sc.profile('old', old)
        sc.old, sc.new = old, new
        sc.prepare()
        yield sc
    finally:
        new.stop()
        old.stop()


@pytest.fixture
def prepared(prepared_template, flow):
    """A private copy of the prepared workdir, on the module's (shared) simulators."""
    template = prepared_template
    shutil.copytree(template.dot, flow.dot, dirs_exist_ok=True)
    for name in ('old', 'new', 'snapshot_id', 'server_sha'):
        setattr(flow, name, getattr(template, name))
    flow.old_requests_after_prepare = len(template.old.requests)
    return flow


# -- profiles and options -------------------------------------------------------------------

def test_b01_unknown_from_profile(managers):
    """prepare --from-profile naming no profile: exit 2/3 naming it; no workspace."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.PREPARE, '--from-profile', 'no-such-profile')
    assert_refused(result, words=['no-such-profile'])
    assert sc.upgrade_ids() == []


def test_b02_unknown_profile_for_plan(managers):
    """plan --from-profile naming no profile: exit 2/3 naming it."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'plan', '--from-profile', 'nope-profile')
    assert_refused(result, words=['nope-profile'])


def test_b03_unknown_to_profile(prepared):
    """new-host --to-profile naming no profile: exit 2/3 naming it; nothing uploaded."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'ghost-profile', '--yes')
    assert_refused(result, words=['ghost-profile'])


def test_b04_to_profile_is_the_source(prepared):
    """new-host --to-profile old (the source itself): exit 2 target-is-source-profile."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'old', '--yes')
    assert_refused(result, error_id='target-is-source-profile')


@pytest.mark.parametrize('snapshot_id', ['9starts-with-digit', 'has/slash', 'space in id',
                                         'semi;colon', 'x' * 300,
                                         pytest.param('upgrade1\n', id='trailing-newline')])
def test_b05_bad_snapshot_id(managers, snapshot_id):
    """--snapshot-id with a digit first, "/", a space, ";", 300 characters, a trailing
    newline: exit 2, no snapshot created."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.PREPARE, '--snapshot-id', snapshot_id)
    assert_refused(result, codes=(2,), words=['snapshot'])
    assert flows.executions(sc.old, 'create_snapshot') == []


def test_b06_bad_target_version(managers):
    """--target-version seven-point-oh: exit 2 naming the value; no workspace."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'prepare', '--target-version', 'seven-point-oh')
    assert_refused(result, codes=(2,), words=['seven-point-oh'])
    assert sc.upgrade_ids() == []


@pytest.mark.parametrize('args', [
    ('upgrade', 'prepare', '--mode', 'sideways'),
    ('upgrade', 'prepare', '--timeout', '0'),
    ('upgrade', 'prepare', '--timeout', 'soon'),
    ('upgrade', 'new-host', '--agents-concurrency', '0'),
    ('upgrade', 'new-host', '--users', 'everyone'),
    ('upgrade', 'prepare', '--waive', 'local-disk'),
], ids=['mode', 'timeout-zero', 'timeout-text', 'concurrency-zero', 'users-policy',
        'waive-without-reason'])
def test_b07_option_values(managers, args):
    """click refuses the value (exit 2, `Error: ...`) before the plugin runs."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run(*args)
    assert_refused(result, codes=(2,))
    assert sc.upgrade_ids() == []


def test_b08_waiver_for_unknown_check(managers):
    """--waive no-such-check --reason ...: exit 2 naming the check; no workspace."""
    sc = managers
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.PREPARE, '--waive', 'no-such-check', '--reason', 'because')
    assert_refused(result, codes=(2,), words=['no-such-check'])
    assert sc.upgrade_ids() == []


# -- snapshots -------------------------------------------------------------------------------

def _truncated_zip_bytes():
    """A real snapshot-like zip (metadata.json first, 8 KiB of data), cut in half."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as zf:
        zf.writestr('metadata.json', json.dumps({'snapshot_version': '4.1.0'}))
        zf.writestr('simulator-data.json', os.urandom(8192).hex())
    whole = buffer.getvalue()
    return whole[:len(whole) // 2]


def _no_metadata_zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('pg_data', 'x' * 1000)
        zf.writestr('agents.json', '{}')
    return buffer.getvalue()


def _deep_zip_bytes(member):
    """A zip whose ``member`` nests its JSON 100,000 levels deep (Python's parser gives up
    with a RecursionError long before)."""
    deep = '[' * 100000 + ']' * 100000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as zf:
        if member == 'metadata.json':
            zf.writestr('metadata.json', '{"snapshot_version": "4.1.0", "x": ' + deep + '}')
        else:
            zf.writestr('metadata.json', json.dumps({'snapshot_version': '4.1.0'}))
            zf.writestr(member, '{"default_tenant": ' + deep + '}')
    return buffer.getvalue()


BROKEN_SNAPSHOTS = {
    'corrupt': lambda: os.urandom(4096),
    'truncated': _truncated_zip_bytes,
    'no-metadata': _no_metadata_zip_bytes,
    'deep-metadata': lambda: _deep_zip_bytes('metadata.json'),
    'deep-agents': lambda: _deep_zip_bytes('agents.json'),
}


def _put_snapshot(sim, sid, content):
    """The old manager already holds snapshot ``sid`` (status created) with ``content``."""
    path = sim.snapshot_path(sid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as stream:
        stream.write(content)
    with sim.state.lock:
        sim.state.put('snapshots', {'id': sid, 'created_at': '2024-01-01T00:00:00.000Z',
                                    'status': 'created', 'error': '',
                                    'tenant_name': 'default_tenant', 'created_by': 'admin',
                                    'visibility': 'tenant'})


@pytest.mark.parametrize('kind', sorted(BROKEN_SNAPSHOTS))
def test_b09_broken_snapshot_archive(managers, kind):
    """prepare --snapshot-id names an existing snapshot whose archive is broken (not a zip,
    truncated, no metadata.json, metadata.json or agents.json nested 100,000 levels deep):
    refused with a message about the archive (the deep ones: snapshot-corrupt, exit 2); the
    local copy equals the server's or is absent."""
    sc = managers
    sid = 'broken-' + kind
    _put_snapshot(sc.old, sid, BROKEN_SNAPSHOTS[kind]())
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.PREPARE, '--snapshot-id', sid)
    error_id = assert_refused(
        result, words=['zip' if kind != 'no-metadata' else 'metadata.json'])
    if kind.startswith('deep-'):    # issue 17 item 8: not unexpected-error (RecursionError)
        assert (error_id, result.returncode) == ('snapshot-corrupt', 2), harness.show(result)
    problems = harness.snapshot_files_problems(
        sc.workspace(), {sid: flows.server_archive_sha256(sc.old, sid)})
    assert problems == []
    assert 'snapshot' not in sc.meta()


def test_b10_local_zip_truncated_before_new_host(prepared):
    """The downloaded zip was truncated after prepare: new-host refuses (checksum) before
    uploading anything."""
    sc = prepared
    path = os.path.join(sc.workspace(), 'snapshot', sc.snapshot_id + '.zip')
    with open(path, 'r+b') as stream:
        stream.truncate(os.path.getsize(path) // 2)
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST)
    assert_refused(result, words=['snapshot-checksum'])


def test_b11_snapshot_newer_than_target(managers, simulated_manager):
    """A 5.0.5 source prepared, then new-host onto a 4.6 manager: refused (exit 3)."""
    sc = managers
    source = simulated_manager('5.0.5', data='demo', ssh=True)
    older = simulated_manager('4.6', data='empty', ssh=True)
    sc.profile('src505', source)
    sc.profile('tgt46', older, activate=False)
    result = sc.run('upgrade', 'prepare')
    assert result.returncode == 0, harness.show(result)
    with no_change(source, older):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'tgt46', '--yes')
    assert_refused(result, codes=(3,), words=['target-path'])


def test_b12_target_version_older_than_source(managers):
    """prepare --target-version 4.0.1 on a 4.1 manager: exit 3 (upgrade path), nothing
    created."""
    sc = managers
    with no_change(sc.old):
        result = sc.run('upgrade', 'prepare', '--target-version', '4.0.1')
    assert_refused(result, codes=(3,))
    assert flows.executions(sc.old, 'create_snapshot') == []


def test_b13_3x_snapshot_for_5x_target(flow, simulated_manager):
    """A 3.4.2 manager cannot go to 5.x: prepare --target-version 5.1 is refused (exit 3)."""
    sc = flow
    old = simulated_manager('3.4.2', data='demo', ssh=True)
    sc.profile('old342', old)
    with no_change(old):
        result = sc.run('upgrade', 'prepare', '--target-version', '5.1')
    assert_refused(result, codes=(3,))
    assert flows.executions(old, 'create_snapshot') == []


def test_b14_3x_workspace_onto_5x_target(flow, simulated_manager):
    """A 3.4.2 snapshot prepared for 4.6, then new-host onto a 5.1 manager: refused."""
    sc = flow
    old = simulated_manager('3.4.2', data='demo', ssh=True)
    target = simulated_manager('5.1', data='empty', ssh=True)
    sc.profile('old342', old)
    sc.profile('new51', target, activate=False)
    result = sc.run('upgrade', 'prepare', '--target-version', '4.6')
    assert result.returncode == 0, harness.show(result)
    with no_change(old, target):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'new51', '--yes')
    assert_refused(result, codes=(3,), words=['target-path'])


def test_b15_target_not_clean(prepared, simulated_manager):
    """new-host onto a 7.0 that already holds blueprints: exit 3 target-not-clean."""
    sc = prepared
    busy = simulated_manager('7.0', data='demo', ssh=True)
    sc.profile('busy', busy, activate=False)
    with no_change(sc.old, busy):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'busy', '--yes', '--users',
                        'rest-security')
    assert_refused(result, codes=(3,), words=['target-not-clean'])


def test_b16_missing_passwords_file(managers):
    """--users reset-passwords with an unreadable --passwords-file: refused before any
    upload or restore.  (Own managers: a failure here changes the target.)"""
    sc = managers
    sc.prepare()
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users',
                        'reset-passwords', '--passwords-file', '/nonexistent/passwords.txt')
    assert_refused(result, words=['passwords'])


# -- workspaces and journals -----------------------------------------------------------------

def _tamper(path, how):
    with open(path, encoding='utf-8') as stream:
        lines = stream.readlines()
    if how == 'edited':
        entry = json.loads(lines[2])
        entry['event'] = 'skipped'
        lines[2] = json.dumps(entry, sort_keys=True, separators=(',', ':')) + '\n'
    elif how == 'truncated':
        lines = lines[:-1]
    elif how == 'reordered':
        lines[1], lines[2] = lines[2], lines[1]
    with open(path, 'w', encoding='utf-8') as stream:
        stream.writelines(lines)


@pytest.mark.parametrize('how', ['edited', 'truncated', 'reordered'])
def test_b17_tampered_journal(prepared, how):
    """journal.jsonl with a line edited, its last line removed, or two lines swapped:
    exit 2/3 journal-tampered, nothing sent to either manager."""
    sc = prepared
    _tamper(os.path.join(sc.workspace(), 'journal.jsonl'), how)
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST)
    assert_refused(result, error_id='journal-tampered')


def test_b18_unknown_upgrade_id(prepared):
    """new-host --upgrade-id of no workspace: exit 2 workspace-not-found."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST, '--upgrade-id', 'upg-does-not-exist')
    assert_refused(result, codes=(2,), error_id='workspace-not-found')


@pytest.mark.parametrize('upgrade_id', ['../../etc', '-rf', 'a b'])
def test_b19_invalid_upgrade_id(prepared, upgrade_id):
    """--upgrade-id "../../etc", "-rf", "a b": exit 2 (never a path outside upgrades/)."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'status', '--upgrade-id', upgrade_id)
    assert_refused(result, codes=(2,))


def test_b20_workspace_of_another_upgrade(prepared, simulated_manager):
    """prepare --upgrade-id of a workspace made for another old manager: refused."""
    sc = prepared
    other = simulated_manager('4.1', data='demo', ssh=True)
    sc.profile('other41', other)
    upgrade_id = os.path.basename(sc.workspace())
    with no_change(sc.old, sc.new, other):
        result = sc.run(*flows.PREPARE, '--upgrade-id', upgrade_id)
    assert_refused(result, codes=(2,))
    assert flows.executions(other, 'create_snapshot') == []


def test_b21_workspace_copied_from_another_upgrade(managers, simulated_manager):
    """A workspace that another new-host run already bound to a different target: refused
    (fingerprint) before anything reaches either target."""
    sc = managers
    sc.prepare()
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    second = simulated_manager('7.0', data='empty', ssh=True)
    sc.profile('second', second, activate=False)
    sc.activate('old')
    with no_change(sc.old, sc.new, second):
        result = sc.run('upgrade', 'new-host', '--to-profile', 'second', '--yes',
                        '--upgrade-id', os.path.basename(sc.workspace()))
    assert_refused(result, codes=(2,))


def test_b22_wrong_mode(prepared):
    """in-place on a workspace prepared for new-host: exit 2 wrong-mode."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.IN_PLACE)
    assert_refused(result, codes=(2,), error_id='wrong-mode')


def test_b23_prepare_not_finished(managers):
    """new-host on an upgrade whose prepare was stopped early: refused."""
    sc = managers
    sc.crash(*flows.prepare_args(), pause=('download-snapshot', 'started', 'after'))
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST)
    assert_refused(result, codes=(2,), error_id='prepare-not-finished')


def test_b24_status_of_unknown_upgrade(managers):
    """status --upgrade-id of no workspace: exit 2 workspace-not-found."""
    sc = managers
    result = sc.run('upgrade', 'status', '--upgrade-id', 'upg-nothing-here')
    assert_refused(result, codes=(2,), error_id='workspace-not-found')


@pytest.mark.parametrize('args', [
    ('--since', 'yesterday'),
    ('--since', '2026-13-45T99:00:00Z'),
    ('--since', '2026-01-02T00:00:00Z', '--until', '2026-01-01T00:00:00Z'),
    ('--until', 'later'),
], ids=['since-word', 'since-impossible-date', 'since-after-until', 'until-word'])
def test_b25_bad_heals_window(prepared, args):
    """verify-heals --since/--until not ISO 8601, impossible, or reversed: exit 2."""
    sc = prepared
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'verify-heals', '--old-profile', 'old', '--new-profile',
                        'new', *args)
    assert_refused(result, codes=(2,))


def test_b26_workspace_json_corrupt(prepared):
    """workspace.json is not JSON any more: a clear refusal, nothing sent to the target."""
    sc = prepared
    with open(os.path.join(sc.workspace(), 'workspace.json'), 'w') as stream:
        stream.write('{"upgrade_id": ')
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST)
    assert_refused(result)


def test_b27_snapshot_deleted_from_workspace(prepared):
    """The local snapshot zip was removed after prepare: refused before any upload."""
    sc = prepared
    shutil.move(os.path.join(sc.workspace(), 'snapshot'),
                os.path.join(sc.logs_dir, 'moved-away'))
    with no_change(sc.old, sc.new):
        result = sc.run(*flows.NEW_HOST)
    assert_refused(result, words=['snapshot'])


@pytest.mark.parametrize('option, value', [
    ('--manager-tenant', 'default_tenant\n'), ('--manager-tenant', 'a/b'),
    ('--manager-username', 'admin\n')],
    ids=['tenant-newline', 'tenant-slash', 'username-newline'])
def test_b28_bad_names_for_a_new_profile(prepared, option, value):
    """new-host --manager-ip with a tenant or user name that is not a whole Cloudify name
    (a trailing newline, a "/"): exit 2 bad-name before any profile or request."""
    sc = prepared
    profiles = sorted(os.listdir(os.path.join(sc.dot, 'profiles')))
    with no_change(sc.old, sc.new):
        result = sc.run('upgrade', 'new-host', '--manager-ip', '127.0.0.1', '--profile-name',
                        'made-here', '--rest-port', sc.new.rest_port, '--manager-username',
                        'admin', '--manager-password', flows.NEW_ADMIN_PASSWORD, option,
                        value, '--yes')
    assert_refused(result, codes=(2,), error_id='bad-name', words=[option])
    assert sorted(os.listdir(os.path.join(sc.dot, 'profiles'))) == profiles


@pytest.mark.parametrize('change, command', [
    ({'source': 'old'}, 'new-host'), ({'snapshot': ['id']}, 'new-host'),
    ({'runbooks': {'prepare': 1}}, 'status'), ({'target': {'version': 7}}, 'status')],
    ids=['source-string', 'snapshot-list', 'runbooks-object', 'target-version-number'])
def test_b29_workspace_json_wrong_types(prepared, change, command):
    """workspace.json is JSON but a key has the wrong type (a string for an object, a number
    for a version...): exit 2 workspace-corrupt naming the key, never a traceback, nothing
    sent to either manager."""
    sc = prepared
    path = os.path.join(sc.workspace(), 'workspace.json')
    meta = flows.read_json(path)
    meta.update(change)
    with open(path, 'w') as stream:
        json.dump(meta, stream)
    args = flows.NEW_HOST if command == 'new-host' else ('upgrade', 'status')
    with no_change(sc.old, sc.new):
        result = sc.run(*args)
    assert_refused(result, codes=(2,), error_id='workspace-corrupt', words=list(change)[:1])
