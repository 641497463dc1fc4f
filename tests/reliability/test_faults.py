"""Fault matrix (issue 9 item 2): manager, network, SSH and local-disk faults during prepare
and new-host, through the real `cfy` against simulated managers.

Every scenario ends either in success or in a clear error (``assert_clear_error``): the
expected exit code and error id, a message that names the step and says the cause (checked
in the error's own message, never in the progress lines or hints that always name the step),
and what to do; and always with nothing lost
(``assert_nothing_lost``): the old manager received no restore, delete, maintenance or
other change besides the snapshot creation; every ``snapshot/*.zip`` in the workspace has a
``.sha256`` that matches it and equals the server archive's SHA-256 (a half-written download
only ever lives under ``.part``).  Where a scenario ends in an error, the fault is then
removed and the same command must finish the upgrade.

Disk full is simulated two ways: ``RLIMIT_FSIZE`` on the `cfy` process (writes past the
limit fail with EFBIG; works without root), and, when this user may mount, a small tmpfs
holding CFY_WORKDIR (a real ENOSPC).
"""
import base64
import os
import re
import resource
import secrets
import shutil
import subprocess
import tempfile

import pytest

from tests import flows
from tests.reliability import harness
from tests.waiting import wait_until

CREATE_WAIT = r'/executions/[^/]+$'


# -- what every scenario asserts --------------------------------------------------------------

def assert_clear_error(result, step, error_id, cause, exit_code=1):
    """The command failed with exit ``exit_code`` and ``Error [error_id]: MESSAGE`` where
    MESSAGE names ``step`` ("Step <step> (...) failed", unless ``step`` is None) and holds
    ``cause``; then ``Possible solutions:`` with at least one hint.  The cause is looked for
    in MESSAGE only: the progress lines and the hints name the step and words like
    "failed", "timeout" or "ssh" whatever went wrong."""
    text = result.stdout + result.stderr
    assert result.returncode == exit_code, harness.show(result)
    found = re.search(r'Error \[([a-z0-9-]+)\]: (.*)', text)
    assert found, harness.show(result)
    assert found.group(1) == error_id, (found.group(1), harness.show(result))
    message = found.group(2)
    if step is not None:
        assert 'Step {0} ('.format(step) in message, (step, message)
    assert cause in message, (cause, message)
    hints = text.split('Possible solutions:', 1)
    assert len(hints) == 2 and re.search(r'^\s+- \S', hints[1], re.M), result
    return found.group(1)


def assert_blocked(result, check, cause):
    """Refused before any change (exit 3, ``Error [blocked]``) by the blocking ``check``,
    whose line under the error says ``cause``."""
    text = result.stdout + result.stderr
    assert_clear_error(result, None, 'blocked', 'nothing was changed', exit_code=3)
    failed = re.findall(r'^\s+- ([a-z0-9-]+): (.*)$', text.split('Possible solutions:')[0],
                        re.M)
    assert [name for name, _ in failed] == [check], (failed, harness.show(result))
    assert cause in failed[0][1], (cause, failed)


def journal_events(sc, step):
    return [e['event'] for e in sc.journal() if e['step'] == step
            and 'check' not in (e.get('details') or {})]


def old_changes(sc):
    """Changes the old manager received besides creating the upgrade's snapshot."""
    return [m for m in flows.mutations(sc.old)
            if not (m[0] == 'PUT' and re.search(flows.SNAPSHOT_CREATE, m[1]))]


def assert_nothing_lost(sc):
    assert old_changes(sc) == []
    for upgrade_id in sc.upgrade_ids():
        workspace = sc.workspace(upgrade_id)
        directory = os.path.join(workspace, 'snapshot')
        ids = [n[:-4] for n in os.listdir(directory) if n.endswith('.zip')] \
            if os.path.isdir(directory) else []
        server = {sid: flows.server_archive_sha256(sc.old, sid) for sid in ids}
        assert harness.snapshot_files_problems(workspace, server) == []


def no_zip(sc):
    directory = os.path.join(sc.workspace(), 'snapshot')
    return not os.path.isdir(directory) or not [
        n for n in os.listdir(directory) if n.endswith('.zip')]


def outage_longer_than_timeout(sc, sim, args, step, error_id, cause):
    """Run ``cfy ARGS``; once it polls an execution on ``sim``, refuse connections for 6 s
    (longer than its --timeout 2): it must end in a clear error naming ``step``.  Returns
    after the outage (``sim`` listens again)."""
    gate = sc.gate(sim, 'GET', CREATE_WAIT)
    proc = sc.start(*args)
    wait_until(gate.reached, flows.KILL_TIMEOUT,
               'the first poll of the {0} execution'.format(step), proc=proc)
    sim.rest_outage(6)
    gate.release()
    result = sc.finish(proc)
    assert_clear_error(result, step, error_id, cause)
    wait_until(lambda: sim.listener.listening, flows.KILL_TIMEOUT, 'the end of the outage')


def finish_prepare(sc):
    sc.old.faults.clear()
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 0, result
    sc.record_server_snapshot()
    assert_nothing_lost(sc)


def finish_new_host(sc):
    sc.new.faults.clear()
    sc.old.faults.clear()
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, result
    assert_nothing_lost(sc)
    return result


# -- prepare: the old manager misbehaves ----------------------------------------------------------

def test_f01_5xx_burst_on_execution_polls(managers):
    """503 pages on three polls of the create_snapshot execution: retried, prepare works."""
    sc = managers
    sc.old.faults.fail_requests(CREATE_WAIT, count=3, status=503, method='GET')
    sc.prepare()
    assert len(flows.requests_matching(sc.old, 'GET', CREATE_WAIT, status=503)) == 3
    # retried inside the step: it never failed
    assert journal_events(sc, 'create-snapshot') == ['started', 'succeeded']
    assert_nothing_lost(sc)
    harness.assert_snapshot_intact(sc)


@pytest.mark.slow
def test_f02_5xx_burst_on_lists_and_json_500(managers):
    """502 pages on node-instance lists and JSON 500s on the snapshot reads: retried."""
    sc = managers
    sc.old.faults.fail_requests(r'/node-instances$', count=2, status=502, method='GET')
    sc.old.faults.fail_requests(flows.SNAPSHOT_CREATE, count=2, status=500, method='GET')
    sc.prepare()
    assert len(flows.requests_matching(sc.old, 'GET', r'/node-instances$', status=502)) == 2
    assert len(flows.requests_matching(sc.old, 'GET', flows.SNAPSHOT_CREATE, status=500)) == 2
    assert_nothing_lost(sc)


def test_f03_5xx_on_snapshot_create(managers):
    """503 on the create request itself: never repeated blindly; a clear error, then the
    re-run creates the snapshot once."""
    sc = managers
    sc.old.faults.fail_requests(flows.SNAPSHOT_CREATE, count=1, status=503, method='PUT')
    result = sc.run(*flows.prepare_args())
    assert_clear_error(result, 'create-snapshot', 'manager-request-failed',
                       'answered HTTP 503 Service Unavailable (creating snapshot')
    assert_nothing_lost(sc)
    assert no_zip(sc)
    finish_prepare(sc)
    assert len(flows.executions(sc.old, 'create_snapshot')) == 1


def test_f04_download_reset_twice_resumes(managers):
    """The archive download is cut after 2,000 bytes twice: resumed with Range requests."""
    sc = managers
    sc.old.faults.drop_download(2000, times=2)
    sc.prepare()
    downloads = flows.requests_matching(sc.old, 'GET', flows.SNAPSHOT_ARCHIVE)
    assert len(downloads) >= 3
    assert_nothing_lost(sc)
    harness.assert_snapshot_intact(sc)
    harness.assert_no_partial_files(sc)


@pytest.mark.slow
def test_f05_download_reset_without_content_length(managers):
    """Chunked download (no Content-Length) cut once: resumed or restarted, verified."""
    sc = managers
    sc.old.faults.no_content_length = True
    sc.old.faults.drop_download(1500, times=1)
    sc.prepare()
    # the first download was cut: a second one (resumed or restarted) completed it
    assert len(flows.requests_matching(sc.old, 'GET', flows.SNAPSHOT_ARCHIVE)) >= 2
    assert_nothing_lost(sc)
    harness.assert_snapshot_intact(sc)


@pytest.mark.slow
def test_f06_download_always_reset(managers):
    """Every download attempt breaks before its first byte: a clear error naming
    download-snapshot, no zip under its final name; once the network is fixed the same
    command finishes."""
    sc = managers
    sc.old.faults.drop_download(0, times=None)
    result = sc.run(*flows.prepare_args())
    assert_clear_error(result, 'download-snapshot', 'download-failed',
                       'connection dropped after 0 B')
    assert no_zip(sc)
    assert_nothing_lost(sc)
    finish_prepare(sc)
    harness.assert_snapshot_intact(sc)


@pytest.mark.slow
def test_f07_slow_manager(managers):
    """Every answer of the old manager takes 0.15 s more: prepare still works."""
    sc = managers
    sc.old.faults.delay(r'.', 0.15)
    sc.prepare()
    assert_nothing_lost(sc)


@pytest.mark.slow
def test_f08_short_outage_during_create(managers):
    """The REST port refuses connections for 2 s while the snapshot is created: waited out."""
    sc = managers
    gate = sc.gate(sc.old, 'GET', CREATE_WAIT)
    proc = sc.start(*flows.prepare_args())
    wait_until(gate.reached, flows.KILL_TIMEOUT, 'the first poll of the create execution',
               proc=proc)
    sc.old.rest_outage(2)
    gate.release()
    result = sc.finish(proc)
    assert result.returncode == 0, result
    sc.record_server_snapshot()
    assert_nothing_lost(sc)


def test_f09_outage_longer_than_timeout(managers):
    """The old manager is unreachable for longer than --timeout while the snapshot is being
    created: a clear error naming create-snapshot; the re-run adopts the snapshot."""
    sc = managers
    outage_longer_than_timeout(sc, sc.old, flows.prepare_args(extra=('--timeout', '2')),
                               'create-snapshot', 'execution-timeout',
                               'The manager was not answering at the end')
    assert no_zip(sc)
    finish_prepare(sc)
    assert len(flows.executions(sc.old, 'create_snapshot')) == 1


def test_f10_create_execution_fails(managers):
    """create_snapshot fails on the manager: the error names the step and the workflow's
    error; nothing downloaded; nothing deleted on the old manager."""
    sc = managers
    sc.old.faults.fail_execution('create_snapshot', error='No space left on /opt/manager')
    result = sc.run(*flows.prepare_args())
    assert_clear_error(result, 'create-snapshot', 'snapshot-failed',
                       'No space left on /opt/manager')
    assert no_zip(sc)
    assert_nothing_lost(sc)


def test_f11_create_execution_hangs(managers):
    """create_snapshot never ends: --timeout 2 stops the wait with a clear error (also in
    the --json document: id, step, hints)."""
    sc = managers
    sc.old.faults.hang_execution('create_snapshot')
    result = sc.run(*flows.prepare_args(extra=('--timeout', '2', '--json')))
    assert_clear_error(result, 'create-snapshot', 'execution-timeout', 'did not end within 2s')
    error = result.json['error']          # --json: one document on stdout, names the step
    assert error['step'] == 'create-snapshot' and error['hints'] and error['exit_code'] == 1
    assert no_zip(sc)
    assert_nothing_lost(sc)


def test_f12_ssh_key_refused_at_prepare(managers, tmp_path):
    """The old host refuses the profile's SSH key (rest-security.conf of a 4.1 must be backed
    up): blocked before anything changes (exit 3, the ssh-access check), no workspace."""
    sc = managers
    sc.profile('old', sc.old, ssh_key=other_key(tmp_path))
    result = sc.run(*flows.prepare_args())
    assert_blocked(result, 'ssh-access', 'authentication failed')
    assert flows.mutations(sc.old) == []
    assert sc.upgrade_ids() == []
    assert_nothing_lost(sc)


def big_secret(sim, size=600 * 1024):
    """Make the old manager's snapshot large (an incompressible secret value)."""
    value = base64.b64encode(secrets.token_bytes(size)).decode('ascii')
    with sim.state.lock:
        sim.state.put('secrets', {'key': 'big-blob', 'value': value,
                                  'created_at': '2024-01-01T00:00:00.000Z',
                                  'updated_at': '2024-01-01T00:00:00.000Z',
                                  'is_hidden_value': True, 'tenant_name': 'default_tenant',
                                  'created_by': 'admin', 'visibility': 'tenant'})


def test_f13_disk_full_rlimit_during_download(managers):
    """Writes past 256 KiB fail (RLIMIT_FSIZE -> EFBIG) while a ~600 KiB snapshot downloads:
    a clear error naming download-snapshot and the cause; no zip under its final name; the
    same command finishes once there is room."""
    sc = managers
    big_secret(sc.old)
    sc.source_view = flows.data_view(sc.old)
    limit = 256 * 1024

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = sc.run(*flows.prepare_args(), preexec_fn=small_files)
    assert no_zip(sc)
    assert_nothing_lost(sc)
    assert_clear_error(result, 'download-snapshot', 'local-write-failed',
                       '[Errno 27] File too large')
    finish_prepare(sc)
    harness.assert_snapshot_intact(sc)


def _can_mount():
    if os.geteuid() != 0 or not shutil.which('mount'):
        return False
    probe = tempfile.mkdtemp(prefix='rel-mount-')
    try:
        ok = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(['umount', probe], capture_output=True)
        return ok
    finally:
        os.rmdir(probe)


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs (root only), unmounted at the end."""
    if not _can_mount():
        pytest.skip('mounting a tmpfs needs root (the RLIMIT_FSIZE scenario covers it)')
    mount_point = tmp_path / 'small-disk'
    mount_point.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=400k,mode=0700', 'tmpfs',
                    str(mount_point)], check=True)
    yield mount_point
    subprocess.run(['umount', '-l', str(mount_point)], check=False)


def test_f14_disk_full_tmpfs_during_download(managers, small_disk):
    """CFY_WORKDIR on a 400 KiB tmpfs, a ~600 KiB snapshot: ENOSPC while downloading.  The
    local-disk check is waived (it may see the small disk) so the download really hits a
    full disk; the error names download-snapshot and the cause; no zip under its final
    name; after moving CFY_WORKDIR to a bigger disk the same command finishes."""
    sc = managers
    big_secret(sc.old)
    workdir = small_disk / 'cfy'
    shutil.copytree(sc.workdir, str(workdir))
    sc.workdir = str(workdir)
    sc.dot = os.path.join(sc.workdir, '.cloudify')
    result = sc.run(*flows.prepare_args(extra=('--waive', 'local-disk', '--reason',
                                               'testing a full disk')))
    text = result.stdout + result.stderr
    if result.returncode == 3:
        pytest.fail('blocked before the download even with the waiver: ' + text[-800:])
    assert no_zip(sc)
    assert_nothing_lost(sc)
    assert_clear_error(result, 'download-snapshot', 'local-disk-full',
                       'The local disk is full')
    # the operator moves CFY_WORKDIR to a bigger disk: the same command finishes
    bigger = os.path.join(os.path.dirname(str(small_disk)), 'bigger-disk')
    shutil.copytree(sc.workdir, bigger)
    sc.workdir, sc.dot = bigger, os.path.join(bigger, '.cloudify')
    finish_prepare(sc)


def other_key(tmp_path):
    """An SSH private key no simulated host knows."""
    import asyncssh
    path = str(tmp_path / 'stranger_ed25519')
    asyncssh.generate_private_key('ssh-ed25519').write_private_key(path)
    os.chmod(path, 0o600)
    return path


# -- new-host: the target (or the network to it) misbehaves -----------------------------------

@pytest.fixture
def prepared(managers):
    managers.prepare()
    return managers


def drop_upload(mgr, after_bytes=2000, times=1):
    """Connection reset during the archive upload: the server reads ``after_bytes`` of the
    body, then closes the connection without an answer (``times`` uploads)."""
    original = mgr.api.handle
    state = {'left': times}

    def handle(request):
        if request.method == 'PUT' and re.search(flows.SNAPSHOT_ARCHIVE, request.path) \
                and state['left']:
            state['left'] -= 1
            entry = mgr.record_request(request)
            got = 0
            for chunk in request.iter_body(chunk_size=1024):
                got += len(chunk)
                if got >= after_bytes:
                    break
            entry['status'] = 'reset'
            raise ConnectionError('simulated connection reset during the upload')
        return original(request)

    mgr.api.handle = handle


def restores(sc, status=200):
    return flows.requests_matching(sc.new, 'POST', flows.SNAPSHOT_RESTORE, status=status)


@pytest.mark.slow
def test_t01_5xx_burst_while_waiting_for_restore(prepared):
    """503 pages on three polls of the restore execution: retried, new-host works."""
    sc = prepared
    sc.new.faults.fail_requests(CREATE_WAIT, count=3, status=503, method='GET')
    # (not finish_new_host: it clears the faults first, so the 503s were never served)
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    assert_nothing_lost(sc)
    # the three 503s were served to the restore's polls, retried inside the step
    assert len(flows.requests_matching(sc.new, 'GET', CREATE_WAIT, status=503)) == 3
    assert journal_events(sc, 'wait-restore') == ['started', 'succeeded']
    harness.assert_upgraded(sc)


def test_t02_5xx_on_upload(prepared):
    """503 on the archive upload: a clear error naming upload-snapshot; the re-run uploads
    and restores once."""
    sc = prepared
    sc.new.faults.fail_requests(flows.SNAPSHOT_ARCHIVE, count=1, status=503, method='PUT')
    result = sc.run(*flows.NEW_HOST)
    assert_clear_error(result, 'upload-snapshot', 'upload-failed', 'HTTP 503')
    assert restores(sc) == []
    assert_nothing_lost(sc)
    finish_new_host(sc)
    harness.assert_upgraded(sc)


def test_t03_connection_reset_during_upload(prepared):
    """The connection breaks after 2,000 bytes of the upload: a clear error naming
    upload-snapshot (or a transparent retry); then the upgrade finishes, restored once."""
    sc = prepared
    drop_upload(sc.new)
    result = sc.run(*flows.NEW_HOST)
    # the connection was reset once, inside the upload
    resets = [r for r in flows.upload_requests(sc.new) if r['status'] == 'reset']
    assert len(resets) == 1, list(sc.new.requests)
    if result.returncode != 0:
        assert_clear_error(result, 'upload-snapshot', 'upload-failed', 'Connection aborted')
        assert restores(sc) == []
        assert_nothing_lost(sc)
        finish_new_host(sc)
    harness.assert_upgraded(sc)


def test_t04_restore_execution_fails(prepared):
    """restore_snapshot fails on the target: a clear error naming wait-restore; the old
    manager untouched; the re-run restores again (the data was not changed) and finishes."""
    sc = prepared
    sc.new.faults.fail_execution('restore_snapshot', error='Simulated restore failure',
                                 times=1)
    result = sc.run(*flows.NEW_HOST)
    assert_clear_error(result, 'wait-restore', 'restore-failed', 'Simulated restore failure')
    assert_nothing_lost(sc)
    assert sc.new.agent_installs() == {}
    result = finish_new_host(sc)
    assert len(restores(sc)) == 2
    installs = sc.new.agent_installs()
    assert sorted(installs) == sc.source_agents and set(installs.values()) == {1}
    assert flows.data_view(sc.new) == sc.source_view


def test_t05_restore_execution_hangs(prepared):
    """restore_snapshot never ends: --timeout 3 stops the wait with a clear error; no agent
    moved, the old manager untouched."""
    sc = prepared
    sc.new.faults.hang_execution('restore_snapshot')
    result = sc.run(*flows.NEW_HOST, '--timeout', '3')
    assert_clear_error(result, 'wait-restore', 'execution-timeout', 'did not end within 3s')
    assert len(restores(sc)) == 1
    assert sc.new.agent_installs() == {}
    assert sc.old.unit_active('cloudify-riemann')
    assert_nothing_lost(sc)


@pytest.mark.slow
def test_t06_target_outage_longer_than_timeout(prepared):
    """The target refuses connections for longer than --timeout while restoring: a clear
    error naming wait-restore; after the outage the re-run finishes, restored once."""
    sc = prepared
    outage_longer_than_timeout(sc, sc.new, flows.NEW_HOST + ('--timeout', '2'),
                               'wait-restore', 'rest-timeout', 'did not come back within 2s')
    assert_nothing_lost(sc)
    finish_new_host(sc)
    harness.assert_upgraded(sc)


def test_t07_agents_fail_on_one_deployment(prepared):
    """install_new_agents fails once on web-1: agents-failed naming the deployment; the
    re-run retries only web-1; every agent moved once."""
    sc = prepared
    sc.new.faults.fail_execution('install_new_agents', deployment_id='web-1', times=1,
                                 error='Simulated agent failure')
    result = sc.run(*flows.NEW_HOST)
    assert_clear_error(result, 'install-agents', 'agents-failed', 'default_tenant/web-1')
    assert_nothing_lost(sc)
    finish_new_host(sc)
    installs = sc.new.agent_installs()
    assert installs.pop(('default_tenant', 'web-1')) == 2      # the failed run + the retry
    assert set(installs.values()) == {1}
    assert {a.get('installs') for a in sc.new.agents() if a.get('state') == 'started'} == {1}


@pytest.mark.slow
def test_t08_agents_hang(prepared):
    """install_new_agents hangs on prod-db: --agent-timeout 2 ends it with a clear error."""
    sc = prepared
    sc.new.faults.hang_execution('install_new_agents', deployment_id='prod-db')
    result = sc.run(*flows.NEW_HOST, '--agent-timeout', '2')
    assert_clear_error(result, 'install-agents', 'agents-failed', 't_prod/prod-db')
    assert_nothing_lost(sc)


@pytest.mark.slow
def test_t09_ssh_key_refused_by_target(prepared, tmp_path):
    """The target host refuses the profile's SSH key while old users need rest-security.conf
    put back: blocked before anything changes (exit 3, the target-ssh check), nothing sent to
    the target."""
    sc = prepared
    sc.profile('new', sc.new, ssh_key=other_key(tmp_path), activate=False)
    result = sc.run(*flows.NEW_HOST)
    assert_blocked(result, 'target-ssh', 'authentication failed')
    assert flows.mutations(sc.new) == []
    assert_nothing_lost(sc)


def test_t10_ssh_key_refused_by_old_host_at_cut_over(prepared, tmp_path):
    """The old host refuses the key when riemann must be stopped: a clear error naming
    cut-over; no agent moved (the auto-heal fence comes first)."""
    sc = prepared
    sc.profile('old', sc.old, ssh_key=other_key(tmp_path), activate=False)
    result = sc.run(*flows.NEW_HOST)
    assert_clear_error(result, 'cut-over', 'ssh-failed', 'authentication failed')
    assert sc.new.agent_installs() == {}
    assert sc.old.unit_active('cloudify-riemann')
    assert_nothing_lost(sc)


@pytest.mark.slow
def test_t11_slow_target(prepared):
    """Every answer of the target takes 0.1 s more: new-host still works."""
    sc = prepared
    sc.new.faults.delay(r'.', 0.1)
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, result
    harness.assert_upgraded(sc)


@pytest.mark.slow
def test_t12_target_down(prepared):
    """The target does not answer at all: a clear error (manager-unreachable, naming its
    address) before anything changes: the journal and workspace.json as prepare left them."""
    sc = prepared
    sc.new.listener.pause()
    journal, meta = sc.journal(), sc.meta()
    result = sc.run(*flows.NEW_HOST, '--timeout', '2')
    assert_clear_error(result, None, 'manager-unreachable',
                       'Cannot connect to the manager at http://127.0.0.1:{0}'.format(
                           sc.new.rest_port))
    # nothing changed: no step of new-host started, the workspace is the prepared one
    assert sc.journal() == journal
    assert sc.meta() == meta
    assert sc.active_profile() == 'old'
    assert_nothing_lost(sc)


def test_t13_5xx_on_restore_request(prepared):
    """502 on the restore request (nginx: nothing reached the REST service): a clear error
    naming start-restore; the re-run starts exactly one restore."""
    sc = prepared
    sc.new.faults.fail_requests(flows.SNAPSHOT_RESTORE, count=1, status=502, method='POST')
    result = sc.run(*flows.NEW_HOST)
    assert_clear_error(result, 'start-restore', 'manager-request-failed',
                       'answered HTTP 502 Bad Gateway (restoring snapshot')
    assert restores(sc) == []
    assert_nothing_lost(sc)
    finish_new_host(sc)
    harness.assert_upgraded(sc)


@pytest.mark.slow
def test_t14_5xx_on_agent_install_request(prepared):
    """503 on one install_new_agents request: a clear error (or a safe retry); then every
    deployment's agents are installed exactly once."""
    sc = prepared
    sc.new.faults.fail_requests(r'/executions$', count=1, status=503, method='POST')
    result = sc.run(*flows.NEW_HOST)
    assert len(flows.requests_matching(sc.new, 'POST', r'/executions$', status=503)) == 1
    if result.returncode != 0:
        assert_clear_error(result, 'install-agents', 'manager-request-failed',
                           'answered 503 (starting install_new_agents')
        assert_nothing_lost(sc)
        finish_new_host(sc)
    harness.assert_upgraded(sc)
