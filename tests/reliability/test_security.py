"""Security (issue 17): what an attacker on this machine, on the network or on a manager could
make the plugin do, through the real `cfy` against simulated managers.

- x01-x02: the workspace never follows a planted symbolic link and keeps private modes
  (item 6).
- x03-x04: a read-only workdir and manager answers of the wrong type end in an
  ``Error [id]`` line, never a traceback (item 8; the archive and workspace.json cases are
  b09 and b29 in test_bad_input.py).
- x05-x06: an endless and a trickled answer end at the size limit and the deadline (item 3).
- x07: a redirect to another origin carries no credentials and no tenant (item 4).
- x08: the API token of a killed run is revoked on resume (item 1; s03 in test_secrets.py).
- x09-x10: host copies of rest-security values are private and cleaned (item 2).
- x11-x14: SSH host keys: a changed key refused at the first contact, the operator's
  known_hosts honoured, an unknown key confirmed or refused, plan writes nothing (item 5).
"""
import os
import shutil
import stat
import subprocess

import pytest

from tests import flows
from tests.reliability import harness


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_x01_planted_link_at_the_part_path(managers, tmp_path):
    """prepare killed as download-snapshot starts; a symbolic link to a file outside the
    workspace is planted where the download's .part goes: the re-run refuses the workspace
    (exit 2 workspace-unsafe) and the outside file is unchanged; once the link is removed
    the same command finishes."""
    sc = managers
    sc.crash(*flows.prepare_args(), pause=('download-snapshot', 'started', 'after'),
             inside='download-snapshot')
    sid = sc.meta()['snapshot_id']
    directory = os.path.join(sc.workspace(), 'snapshot')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    outside = tmp_path / 'outside.txt'
    outside.write_bytes(b'the operator\'s own file\n')
    part = os.path.join(directory, sid + '.zip.part')
    os.symlink(str(outside), part)

    result = sc.run(*flows.prepare_args())
    assert result.returncode == 2, harness.show(result)
    assert 'Error [workspace-unsafe]' in result.stdout + result.stderr, harness.show(result)
    assert 'Traceback' not in result.stdout + result.stderr
    assert outside.read_bytes() == b'the operator\'s own file\n'
    assert os.path.islink(part)

    os.unlink(part)
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 0, harness.show(result)
    assert outside.read_bytes() == b'the operator\'s own file\n'
    sc.record_server_snapshot()
    harness.assert_snapshot_intact(sc)
    harness.assert_private_modes(sc)


def test_x02_workspace_modes_are_put_back(managers):
    """A prepared workspace whose folders were made 0755 and a file 0644 (a copy, an umask, a
    careless chmod): the next command puts them back to 0700/0600 and says so."""
    sc = managers
    sc.prepare()
    workspace = sc.workspace()
    os.chmod(workspace, 0o755)
    os.chmod(os.path.join(workspace, 'snapshot'), 0o755)
    os.chmod(os.path.join(workspace, 'workspace.json'), 0o644)
    os.chmod(sc.upgrades_dir, 0o755)
    result = sc.run('upgrade', 'status')
    assert result.returncode == 0, harness.show(result)
    assert 'modes are back to 0700/0600' in result.stdout + result.stderr, harness.show(result)
    harness.assert_private_modes(sc)
    assert _mode(sc.upgrades_dir) == 0o700


def _read_only(path):
    """Make the directory ``path`` read-only for this process: a read-only tmpfs mounted on
    it as root (root ignores modes), mode 0500 otherwise.  Returns the undo function."""
    if os.geteuid() == 0 and shutil.which('mount'):
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'ro,size=64k,mode=0700', 'tmpfs',
                        path], check=True)
        return lambda: subprocess.run(['umount', '-l', path], check=False)
    os.chmod(path, 0o500)
    return lambda: os.chmod(path, 0o700)


def test_x03_read_only_workdir(managers):
    """The upgrades folder of the cfy workdir is read-only: prepare ends with
    `Error [local-write-failed]` naming the path and the cause (exit 1), no traceback, and
    the old manager received no change (no snapshot)."""
    sc = managers
    os.makedirs(sc.upgrades_dir, mode=0o700, exist_ok=True)
    undo = _read_only(sc.upgrades_dir)
    try:
        mark = len(sc.old.requests)
        result = sc.run(*flows.prepare_args())
    finally:
        undo()
    text = result.stdout + result.stderr
    assert result.returncode == 1, harness.show(result)
    assert 'Error [local-write-failed]' in text and sc.upgrades_dir in text, harness.show(result)
    assert 'Traceback' not in text, harness.show(result)
    assert flows.mutations(sc.old, mark) == []


@pytest.mark.parametrize('path, body', [
    (r'^/api/version$', {'version': 41, 'edition': 'premium'}),
    (r'^/api/v3\.1/users$', {'items': 3, 'metadata': {'pagination': {'total': 3}}}),
    (r'^/api/v3\.1/users$', [{'username': 'admin'}])],
    ids=['version-number', 'items-not-a-list', 'list-not-an-object'])
def test_x04_manager_answers_of_the_wrong_type(managers, path, body):
    """The old manager answers with JSON of the wrong type (a number for its version,
    ``items`` that is not a list, a list for an object): plan ends with
    `Error [manager-bad-answer]` naming the manager (exit 1), never a traceback."""
    sc = managers
    sc.old.faults.replace_answer(path, body)
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION)
    text = result.stdout + result.stderr
    assert result.returncode == 1, harness.show(result)
    assert 'Error [manager-bad-answer]' in text, harness.show(result)
    assert '127.0.0.1:{0}'.format(sc.old.rest_port) in text, harness.show(result)
    assert 'Traceback' not in text, harness.show(result)


VERSION_41 = {'version': '4.1.0', 'edition': 'premium', 'build': None, 'date': None,
              'commit': None, 'distribution': 'centos', 'distro_release': 'Core'}


@pytest.mark.parametrize('path', [r'^/api/version$', r'^/api/v3\.1/users$'],
                         ids=['discovery', 'rest-client'])
def test_x05_endless_json_answer(managers, path):
    """The old manager's answer never ends (64 MiB of JSON array here; the limit is set to
    1 MiB with CFY_UPGRADE_MAX_ANSWER_MB): plan stops reading at the limit and ends with
    `Error [manager-answer-too-large]` naming the manager and the setting (exit 1)."""
    sc = managers
    sc.old.faults.endless_json(path, limit=64 << 20)
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION,
                    env={'CFY_UPGRADE_MAX_ANSWER_MB': '1'})
    text = result.stdout + result.stderr
    assert result.returncode == 1, harness.show(result)
    assert 'Error [manager-answer-too-large]' in text, harness.show(result)
    assert '127.0.0.1:{0}'.format(sc.old.rest_port) in text, harness.show(result)
    assert 'CFY_UPGRADE_MAX_ANSWER_MB' in text and 'Traceback' not in text


@pytest.mark.parametrize('path, body', [
    (r'^/api/version$', VERSION_41),
    (r'^/api/v3\.1/users$', {'items': [{'username': 'admin'}, {'username': 'alice'}],
                             'metadata': {'pagination': {'total': 2, 'offset': 0,
                                                         'size': 1000}}})],
    ids=['discovery', 'rest-client'])
def test_x06_trickled_answer(managers, path, body):
    """The old manager sends its answer one byte every 0.2 s (each read gets a byte, so no
    per-read timeout ever fires; whole, it would take about 30 s): with a 2 s overall
    deadline (CFY_UPGRADE_REQUEST_DEADLINE) plan ends with `Error [manager-too-slow]` naming
    the manager (exit 1)."""
    sc = managers
    sc.old.faults.trickle(path, interval=0.2, body=body)
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION,
                    env={'CFY_UPGRADE_REQUEST_DEADLINE': '2'})
    text = result.stdout + result.stderr
    assert result.returncode == 1, harness.show(result)
    assert 'Error [manager-too-slow]' in text, harness.show(result)
    assert '127.0.0.1:{0}'.format(sc.old.rest_port) in text, harness.show(result)
    assert 'CFY_UPGRADE_REQUEST_DEADLINE' in text and 'Traceback' not in text


def _token_profile(sc, name, sim, token):
    """A cfy profile that logs in with an API token (no username, no password)."""
    from cloudify_cli.env import ProfileContext
    profile = ProfileContext(profile_name=name)
    profile.manager_ip = '127.0.0.1'
    profile.rest_port = sim.rest_port
    profile.rest_protocol = 'http'
    profile.manager_token = token
    profile.manager_tenant = 'default_tenant'
    directory = os.path.join(sc.dot, 'profiles', name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    profile.save(destination=directory)
    sc.activate(name)


def test_x07_redirect_to_another_origin_carries_no_credentials(managers):
    """With a token profile, the old manager redirects its users list to another server
    (another port of 127.0.0.1: another origin): plan follows it, but the other server
    receives neither `Authentication-Token` nor `Tenant` (nor `Authorization`)."""
    from tests.simulator.helpers import raw
    from tests.simulator.recorder import RecordingServer
    sc = managers
    token = raw(sc.old, 'GET', '/api/v3.1/tokens').json()['value']
    _token_profile(sc, 'old-token', sc.old, token)
    page = {'items': [{'username': 'admin'}], 'metadata': {'pagination': {'total': 1}}}
    with RecordingServer(answer=page) as other:
        sc.old.faults.redirect(r'^/api/v3\.1/users$', other.url)
        result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION)
    text = result.stdout + result.stderr
    assert 'Traceback' not in text, harness.show(result)
    assert other.requests, harness.show(result)      # the redirect was followed
    seen = other.headers_seen()
    assert not seen & {'authentication-token', 'tenant', 'authorization'}, seen
    assert token not in repr(other.requests)


def _upgrade_tokens(sim):
    with sim.state.lock:
        return [dict(t) for t in sim.state.tokens.values()
                if (t.get('description') or '').startswith('cfy upgrade')]


def test_x08_token_of_a_killed_run_is_revoked_on_resume(managers):
    """new-host --users rest-security killed while restore-users holds its API token on the
    7.0 target (the admin re-hash request held): the token is alive then, with an expiration
    date; the same command again revokes it and finishes; no token of the upgrade is left."""
    sc = managers
    sc.prepare()
    gate = sc.gate(sc.new, 'POST', r'/users/admin$')
    sc.crash(*flows.NEW_HOST, gate=gate, inside='restore-users')
    left = _upgrade_tokens(sc.new)
    assert len(left) == 1 and left[0]['expiration_date'] is not None, left
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    assert 'Revoked 1 API token(s) an interrupted run had left' in result.stdout, \
        harness.show(result)
    assert _upgrade_tokens(sc.new) == []
    harness.assert_upgraded(sc)


def _staged_leftovers(sim):
    """Copies of rest-security values a run left on a host: staging directories and files
    under /tmp, and hidden copies next to /opt/manager/rest-security.conf."""
    root = sim.machine.host.root
    found = [os.path.join('tmp', n) for n in os.listdir(os.path.join(root, 'tmp'))
             if 'cfy-upgrade' in n]
    found += [os.path.join('opt/manager', n)
              for n in os.listdir(os.path.join(root, 'opt', 'manager'))
              if n.startswith('.rest-security.conf.')]
    return sorted(found)


def _local_leftovers(private_tmp, workspace):
    found = [os.path.join('TMPDIR', n) for n in os.listdir(private_tmp)]
    for current, _, names in os.walk(workspace):
        found += [os.path.join(current, n) for n in names if 'rest-security' in n
                  and os.path.join('backups', 'rest-security.conf') not in
                  os.path.join(current, n)]
    return sorted(found)


def test_x09_rest_security_copies_are_private_from_the_first_byte(managers, tmp_path):
    """new-host --users rest-security: every file the target host creates to carry the old
    rest-security values is 0600 when it is created, in a 0700 directory (never a 0644 file
    chmod-ed afterwards); nothing is left on the host, in TMPDIR or in the workspace."""
    sc = managers
    sc.prepare()
    private_tmp = tmp_path / 'private-tmp'
    private_tmp.mkdir()
    host = sc.new.machine.host
    mark = len(host.created)
    result = sc.run(*flows.NEW_HOST, env={'TMPDIR': str(private_tmp)})
    assert result.returncode == 0, harness.show(result)
    created = host.created[mark:]
    staged = [c for c in created if c['path'].startswith('/tmp/')]
    assert staged, created                       # the old values did go through the host
    assert [c for c in staged if (c['mode'], c['dir_mode']) != (0o600, 0o700)] == []
    assert _staged_leftovers(sc.new) == []
    assert _local_leftovers(str(private_tmp), sc.workspace()) == []
    harness.assert_upgraded(sc)


def test_x10_copies_left_by_a_kill_are_removed_on_resume(managers, tmp_path):
    """new-host --users rest-security killed while a copy of the old rest-security values is
    staged on the target host (its `sudo cp` into /opt/manager held): the same command again
    finishes and leaves no copy on the host, in TMPDIR or in the workspace."""
    sc = managers
    sc.prepare()
    private_tmp = tmp_path / 'private-tmp'
    private_tmp.mkdir()
    run_env = {'TMPDIR': str(private_tmp)}
    gate = sc.exec_gate(sc.new, 'cp', sudo=True,
                        when=lambda argv: any(a.startswith('/tmp/') for a in argv))
    sc.crash(*flows.NEW_HOST, gate=gate, inside='restore-users', env=run_env)
    assert _staged_leftovers(sc.new)             # the kill left a copy behind
    result = sc.run(*flows.NEW_HOST, env=run_env)
    assert result.returncode == 0, harness.show(result)
    assert _staged_leftovers(sc.new) == []
    assert _local_leftovers(str(private_tmp), sc.workspace()) == []
    harness.assert_upgraded(sc)


def _pinned_file(sc):
    return os.path.join(sc.dot, 'upgrade_known_hosts')


def _forget_host_keys(sc):
    """As if the harness had not pinned the simulated hosts' keys (a first upgrade)."""
    os.unlink(_pinned_file(sc))


def test_x11_changed_key_refused_at_check_target_not_at_cut_over(managers):
    """After prepare, the old manager's host presents another SSH host key (reinstalled, or
    someone in between): new-host refuses at check-target (exit 3 ssh-host-key-changed,
    both fingerprints shown), before anything is uploaded or restored: not at the cut-over
    where it must stop riemann, after the restore."""
    sc = managers
    sc.prepare()
    old_key = sc.old.machine.host.fingerprint()
    sc.old.machine.host.new_host_key()
    marks = len(sc.new.requests), len(sc.old.requests)
    result = sc.run(*flows.NEW_HOST)
    text = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    assert 'Error [ssh-host-key-changed]' in text, harness.show(result)
    assert old_key in text and sc.old.machine.host.fingerprint() in text
    assert flows.mutations(sc.new, marks[0]) == []
    assert flows.mutations(sc.old, marks[1]) == []
    assert 'Traceback' not in text


def test_x12_the_operators_known_hosts_are_honoured(managers):
    """~/.ssh/known_hosts holds another key for the old manager's host (the operator's own
    record): plan refuses it (exit 3 ssh-host-key-changed naming that file); with the right
    key there and nothing pinned by the plugin, prepare needs no confirmation and pins
    nothing."""
    sc = managers
    ssh_dir = os.path.join(sc.home, '.ssh')
    os.makedirs(ssh_dir, mode=0o700)
    known = os.path.join(ssh_dir, 'known_hosts')
    from tests.simulator.host import SimulatedHost
    other = SimulatedHost(os.path.join(sc.logs_dir, 'other-host'), lambda *a: (0, ''))
    other.port = sc.old.ssh_port
    with open(known, 'w') as stream:
        stream.write(other.known_hosts_line() + '\n')
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION)
    text = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    assert 'Error [ssh-host-key-changed]' in text and known in text, harness.show(result)

    _forget_host_keys(sc)
    with open(known, 'w') as stream:
        stream.write(sc.old.machine.host.known_hosts_line() + '\n')
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 0, harness.show(result)
    assert not os.path.exists(_pinned_file(sc))
    assert [e for e in sc.journal() if e['step'] == 'host-keys'] == []


def test_x13_plan_with_an_unknown_host_writes_nothing(managers):
    """The old manager's host key is known nowhere: plan without a terminal and without
    --accept-new-host-keys stops (exit 3 ssh-host-key-unknown, showing the fingerprint and
    the option); with the option it trusts the key for that run only: exit 0, and no
    known-hosts file is written (main pinned it)."""
    sc = managers
    _forget_host_keys(sc)
    fingerprint = sc.old.machine.host.fingerprint()
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION)
    text = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    assert 'Error [ssh-host-key-unknown]' in text and fingerprint in text
    assert '--accept-new-host-keys' in text
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION,
                    '--accept-new-host-keys')
    text = result.stdout + result.stderr
    assert result.returncode == 0, harness.show(result)
    assert fingerprint in text and 'nothing is written' in text, harness.show(result)
    assert not os.path.exists(_pinned_file(sc))
    assert sc.upgrade_ids() == []


def test_x14_prepare_confirms_an_unknown_host_and_journals_it(managers):
    """The old manager's host key is known nowhere: prepare without a terminal and without
    --accept-new-host-keys stops before anything changes (exit 3, no snapshot, no
    workspace); with the option it pins the key and the journal records it (host,
    fingerprint, how)."""
    sc = managers
    _forget_host_keys(sc)
    fingerprint = sc.old.machine.host.fingerprint()
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 3, harness.show(result)
    assert 'Error [ssh-host-key-unknown]' in result.stdout + result.stderr
    assert flows.executions(sc.old, 'create_snapshot') == [] and sc.upgrade_ids() == []
    result = sc.run(*flows.prepare_args(extra=('--accept-new-host-keys',)))
    assert result.returncode == 0, harness.show(result)
    with open(_pinned_file(sc)) as stream:
        assert stream.read() == sc.old.machine.host.known_hosts_line() + '\n'
    recorded = [e['details'] for e in sc.journal() if e['step'] == 'host-keys']
    assert len(recorded) == 1, recorded
    assert recorded[0]['fingerprint'] == fingerprint
    assert recorded[0]['reason'] == '--accept-new-host-keys'
    assert recorded[0]['host'] == '[127.0.0.1]:{0}'.format(sc.old.ssh_port)
