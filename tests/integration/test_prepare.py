"""`cfy upgrade prepare` through the real `cfy` against simulated managers (issue 5).

Each test starts a simulated old manager (and, where a host step is involved, its SSH
host), creates a cfy profile for it and runs the installed `cfy upgrade prepare`.
Asserted: exit codes, the `--json` document of docs/cli-contract.md, the files of the upgrade
workspace (snapshot and its SHA-256 against the server's archive, backups and their modes,
inventory, journal), and what the simulator received (request log, snapshots, maintenance
mode).
"""
import json
import os
import signal
import stat
import subprocess
import time

import pytest

from tests.conftest import CFY
from tests.simulator import data as simdata
from tests.simulator.fixtures import simulated_manager  # noqa: F401  (pytest fixture)
from tests.simulator.helpers import sha256_of

CONTRACT_KEYS = {'upgrade_id', 'mode', 'source', 'checks', 'steps', 'snapshot', 'backups',
                 'next'}
PREPARE_STEPS = ['check-source', 'create-snapshot', 'download-snapshot', 'verify-snapshot',
                 'backup-host-files', 'source-inventory', 'write-prepare-report']


# -- helpers ----------------------------------------------------------------------------

def _upgrades(cfy_workdir):
    return os.path.join(str(cfy_workdir), '.cloudify', 'upgrades')


def _workspace(cfy_workdir, upgrade_id):
    return os.path.join(_upgrades(cfy_workdir), upgrade_id)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _journal(cfy_workdir, upgrade_id):
    with open(os.path.join(_workspace(cfy_workdir, upgrade_id), 'journal.jsonl')) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _by_id(checks):
    return {check['id']: check for check in checks}


def _puts(sim, fragment='/snapshots/'):
    return [e for e in sim.requests.matching('PUT', fragment) if '/archive' not in e['path']]


def _mutating(sim):
    return [(e['method'], e['path']) for e in sim.requests if e['method'] != 'GET']


def _assert_snapshot_matches_server(cfy_workdir, document, sim):
    snapshot = document['snapshot']
    assert set(snapshot) >= {'id', 'path', 'sha256', 'size', 'snapshot_version'}
    local = os.path.join(_workspace(cfy_workdir, document['upgrade_id']), snapshot['path'])
    server = sim.snapshot_path(snapshot['id'])
    assert sha256_of(server) == sha256_of(local) == snapshot['sha256']
    assert os.path.getsize(local) == os.path.getsize(server) == snapshot['size']
    with open(local + '.sha256') as stream:
        assert stream.read().split()[0] == snapshot['sha256']
    assert _mode(local) == 0o600
    assert not os.path.exists(local + '.part')
    return local


def _running_execution(sim, execution_id, tenant, deployment_id):
    execution = simdata.new_execution(execution_id, 'install', tenant, 'admin', deployment_id,
                                      'web-app', {}, is_system=False)
    execution['status'] = 'started'
    sim.state.put('executions', execution)
    return execution


# -- 4.1 premium, two users -------------------------------------------------------------

def test_prepare_41_premium_two_users(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.1', data='demo', ssh=True)
    with sim.state.lock:
        del sim.state.users['bob']            # exactly two users: admin and alice
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'prepare', '--target-version', '4.2', '--json')

    assert result.returncode == 0, result
    document = result.json
    assert set(document) >= CONTRACT_KEYS
    upgrade_id = document['upgrade_id']
    root = _workspace(cfy_workdir, upgrade_id)
    assert document['mode'] == 'new-host'
    assert {k: document['source'][k] for k in ('version', 'edition', 'api_prefix')} == \
        {'version': '4.1.0', 'edition': 'premium', 'api_prefix': '/api/v3.1'}
    checks = _by_id(document['checks'])
    for check in document['checks']:
        assert set(check) >= {'id', 'status', 'message'}
        assert check['status'] in ('pass', 'warn', 'fail', 'waived')
    assert checks['users-rest-security']['status'] == 'warn'
    assert checks['upgrade-path']['status'] == 'pass'
    assert [step['id'] for step in document['steps']] == PREPARE_STEPS
    assert {step['status'] for step in document['steps']} == {'succeeded'}

    # snapshot: created once with the 4.1 body, downloaded, verified against the server
    assert len(_puts(sim)) == 1
    assert _mutating(sim) == [('PUT', '/api/v3.1/snapshots/' + document['snapshot']['id'])]
    _assert_snapshot_matches_server(cfy_workdir, document, sim)
    assert document['snapshot']['snapshot_version'] == '4.1.0'

    # rest-security.conf: the host's file, 0600
    assert document['backups'] == [{'kind': 'rest-security',
                                    'path': 'backups/rest-security.conf',
                                    'remote': '/opt/manager/rest-security.conf'}]
    backup = os.path.join(root, 'backups', 'rest-security.conf')
    assert _mode(backup) == 0o600
    with open(backup, 'rb') as stream:
        assert stream.read() == sim.read_host_file('opt/manager/rest-security.conf')

    # inventory: both tenants, the two users, secret keys but never their values
    inventory_path = os.path.join(root, 'inventory', 'source.json')
    assert _mode(inventory_path) == 0o600
    with open(inventory_path) as stream:
        text = stream.read()
    inventory = json.loads(text)
    assert inventory['users'] == ['admin', 'alice']
    assert set(inventory['tenants']) == {'default_tenant', 't_prod'}
    default = inventory['tenants']['default_tenant']
    assert default['deployments']['names'] == ['draft-1', 'hw-1', 'web-1']
    assert default['blueprints']['count'] == 2
    assert default['secrets']['count'] == len(default['secrets']['names']) > 0
    assert default['node_instances']['count'] == sum(
        default['node_instances']['by_state'].values())
    assert 'draft-1' not in ' '.join(default['agents']['names'])   # never installed
    assert 'sim-secret-value' not in text

    # workspace: private, journaled, reported; the next command printed
    assert _mode(root) == 0o700
    assert os.path.isfile(os.path.join(root, 'report.json'))
    assert os.path.isfile(os.path.join(root, 'report.md'))
    events = [(e['step'], e['event']) for e in _journal(cfy_workdir, upgrade_id)]
    for step in PREPARE_STEPS:
        assert (step, 'succeeded') in events
    assert document['next'] == ('cfy upgrade new-host --upgrade-id {0} --to-profile '
                                '<new manager profile>'.format(upgrade_id))
    assert sim.admin_password not in result.stdout + result.stderr


# -- 4.0.x patches ----------------------------------------------------------------------

def test_prepare_401_without_update_3_is_blocked_by_the_host_marker(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.0.1', data='demo', ssh=True)
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'prepare', '--json')

    assert result.returncode == 3, result
    document = result.json
    check = _by_id(document['checks'])['update-3-missing']
    assert check['status'] == 'fail' and 'update-3' in check['message']
    assert 'update-3-missing' in document['error']['message']
    assert document['upgrade_id'] is None
    assert _mutating(sim) == []                    # blocked before the snapshot
    assert any('grep' in line for line in sim.machine.host.commands)
    assert not os.path.exists(_upgrades(cfy_workdir))


def test_prepare_401_without_update_3_is_blocked_by_the_snapshot_version(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.0.1', data='empty')
    make_profile('old', sim, ssh=False)

    result = run_cfy('upgrade', 'prepare', '--json')

    assert result.returncode == 3, result
    document = result.json
    assert document['error']['id'] == 'update-3-missing'
    checks = _by_id(document['checks'])
    assert checks['update-3-missing']['status'] == 'fail'
    assert checks['update-3-missing']['details']['snapshot_version'] == '4.0.1'
    assert 'patch-level' not in checks        # the host-side "unknown" replaced
    assert 'snapshot' not in document         # not accepted
    upgrade_id = document['upgrade_id']
    events = [(e['step'], e['event']) for e in _journal(cfy_workdir, upgrade_id)]
    assert ('verify-snapshot', 'failed') in events
    assert ('backup-host-files', 'started') not in events

    # an operator who accepts it resumes the same upgrade with a named waiver
    again = run_cfy('upgrade', 'prepare', '--upgrade-id', upgrade_id, '--waive',
                    'update-3-missing', '--reason', 'no agents on this manager', '--json')

    assert again.returncode == 0, again
    assert again.json['upgrade_id'] == upgrade_id
    assert _by_id(again.json['checks'])['update-3-missing']['status'] == 'waived'
    assert len(_puts(sim)) == 1                    # the same snapshot, not a new one
    waivers = [e for e in _journal(cfy_workdir, upgrade_id) if e['event'] == 'waived']
    assert waivers and waivers[0]['details']['check'] == 'update-3-missing'


@pytest.mark.parametrize('ssh', [True, False], ids=['ssh', 'no-ssh'])
def test_prepare_401_with_update_3_passes(
        simulated_manager, make_profile, run_cfy, cfy_workdir, ssh):  # noqa: F811
    sim = simulated_manager('4.0.1+update3', data='empty', ssh=ssh)
    make_profile('old', sim, ssh=ssh)

    result = run_cfy('upgrade', 'prepare', '--json')

    assert result.returncode == 0, result
    document = result.json
    assert document['snapshot']['snapshot_version'] == '4.1.0-p3-4.0.1'
    assert document['source']['api_prefix'] == '/api/v3'
    check = _by_id(document['checks'])['patch-level']
    assert check['status'] == 'pass' and 'update-3 is applied' in check['message']
    assert check['details']['source'] == 'snapshot'    # the final word, after the host's
    assert any('grep' in line for line in sim.machine.host.commands) if ssh else True
    _assert_snapshot_matches_server(cfy_workdir, document, sim)


def test_prepare_400_in_place_backs_up_ssl(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.0.0+patch1', data='demo', ssh=True)
    make_profile('old', sim, ssh=True)

    result = run_cfy('upgrade', 'prepare', '--mode', 'in-place', '--json')

    assert result.returncode == 0, result
    document = result.json
    checks = _by_id(document['checks'])
    assert checks['patch-level']['status'] == 'pass'
    assert 'patch-1 is applied' in checks['patch-level']['message']
    assert checks['in-place-certificates']['status'] == 'pass'
    assert document['snapshot']['snapshot_version'] == '4.1.0-p1-4.0.0'
    kinds = {backup['kind']: backup['path'] for backup in document['backups']}
    assert kinds == {'rest-security': 'backups/rest-security.conf', 'ssl': 'backups/ssl'}
    ssl = os.path.join(_workspace(cfy_workdir, document['upgrade_id']), 'backups', 'ssl')
    remote = os.path.join(sim.root, 'etc', 'cloudify', 'ssl')
    names = sorted(os.listdir(remote))
    assert names and sorted(os.listdir(ssl)) == names
    assert 'cloudify_internal_cert.pem' in names
    assert _mode(ssl) == 0o700
    for name in names:
        assert sha256_of(os.path.join(ssl, name)) == sha256_of(os.path.join(remote, name))
        assert _mode(os.path.join(ssl, name)) == 0o600
    assert document['next'] == 'cfy upgrade in-place --upgrade-id {0}'.format(
        document['upgrade_id'])
    assert any('cfy_teardown_4_0_0.sh' in line for line in document['instructions'])


# -- 3.4.2 ------------------------------------------------------------------------------

def test_prepare_342_without_auth(simulated_manager, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('3.4.2', data='demo')
    profile = run_cfy('profiles', 'use', '127.0.0.1', '--profile-name', 'old',
                      '--rest-port', sim.rest_port, '--skip-credentials-validation')
    assert profile.returncode == 0, profile          # no username, no password
    sim.requests.clear()

    refused = run_cfy('upgrade', 'prepare', '--target-version', '5.2', '--json')

    assert refused.returncode == 3, refused
    check = _by_id(refused.json['checks'])['source-3x-needs-stepping-stone']
    assert check['status'] == 'fail' and '4.2-4.6' in check['message']
    assert not os.path.exists(_upgrades(cfy_workdir))
    assert _mutating(sim) == []

    result = run_cfy('upgrade', 'prepare', '--target-version', '4.6')

    assert result.returncode == 0, result
    out = result.stdout + result.stderr
    assert 'Source manager: 3.4.2 at' in out and 'None' not in out
    assert 'Next: cfy upgrade new-host --upgrade-id' in out
    (upgrade_id,) = os.listdir(_upgrades(cfy_workdir))
    with open(os.path.join(_workspace(cfy_workdir, upgrade_id), 'report.json')) as stream:
        report = json.load(stream)
    assert report['source']['api_prefix'] == '/api/v2.1'
    assert report['snapshot']['snapshot_version'] == '3.4.2'
    assert report['backups'] == []                  # 3.x: no host file to keep
    _assert_snapshot_matches_server(cfy_workdir, report, sim)
    # after discovery's probes, every request went to /api/v2.1
    discovery = ('/api/v3.1/ok', '/api/v3.1/snapshot-status')
    paths = [e['path'] for e in sim.requests if e['path'] not in discovery]
    assert paths and all(path.startswith('/api/v2.1/') for path in paths), paths
    with open(os.path.join(_workspace(cfy_workdir, upgrade_id), 'inventory',
                           'source.json')) as stream:
        inventory = json.load(stream)
    assert inventory['users'] is None
    assert list(inventory['tenants']) == ['default_tenant']
    assert inventory['tenants']['default_tenant']['deployments']['count'] == 3


# -- faults -----------------------------------------------------------------------------

def test_prepare_resumes_a_dropped_download(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.2', data='demo')
    make_profile('old', sim, ssh=False)
    sim.faults.drop_download(1500, times=1)

    result = run_cfy('upgrade', 'prepare', '--json')

    assert result.returncode == 0, result
    document = result.json
    _assert_snapshot_matches_server(cfy_workdir, document, sim)
    assert document['snapshot']['size'] > 1500
    archive = [e for e in sim.requests.matching('GET', '/archive')]
    assert [e['status'] for e in archive] == [200, 206]    # the second one asked a Range
    (done,) = [e for e in _journal(cfy_workdir, document['upgrade_id'])
               if e['step'] == 'download-snapshot' and e['event'] == 'succeeded']
    assert done['details']['resumes'] == 1
    assert done['details']['sha256'] == document['snapshot']['sha256']


def test_prepare_reports_a_failed_snapshot_and_retries_it_under_a_new_id(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('5.2.7', data='empty')
    make_profile('old', sim, ssh=False)
    sim.faults.fail_execution(workflow_id='create_snapshot', times=1,
                              error='No space left on device: /opt/manager/snapshots')

    failed = run_cfy('upgrade', 'prepare', '--snapshot-id', 'first-try', '--json')

    assert failed.returncode == 1, failed
    error = failed.json['error']
    assert error['id'] == 'snapshot-failed' and error['step'] == 'create-snapshot'
    assert 'No space left on device' in error['message']
    upgrade_id = failed.json['upgrade_id']
    assert sim.state.find('snapshots', 'first-try')[0]['status'] == 'failed'

    again = run_cfy('upgrade', 'prepare', '--snapshot-id', 'second-try', '--json')

    assert again.returncode == 0, again
    assert again.json['upgrade_id'] == upgrade_id       # the same upgrade, resumed
    assert again.json['snapshot']['id'] == 'second-try'
    _assert_snapshot_matches_server(cfy_workdir, again.json, sim)
    refused = run_cfy('upgrade', 'prepare', '--upgrade-id', upgrade_id, '--snapshot-id',
                      'third-try', '--json')
    assert refused.returncode == 2 and refused.json['error']['id'] == 'snapshot-id-changed'


def test_prepare_blocks_on_a_running_execution(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.1', data='demo', ssh=True)
    _running_execution(sim, 'exec-busy-7', 't_prod', 'prod-db')
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'prepare', '--json')

    assert result.returncode == 3, result
    check = _by_id(result.json['checks'])['no-active-executions']
    assert check['status'] == 'fail'
    assert 'exec-busy-7' in check['message'] and 't_prod' in check['message']
    assert check['details']['executions'] == ['exec-busy-7']
    assert 'exec-busy-7' in result.stderr
    assert _mutating(sim) == []
    assert not os.path.exists(_upgrades(cfy_workdir))


def test_prepare_resumes_after_sigkill_and_freezes_only_once_the_snapshot_is_local(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    sim = simulated_manager('4.1', data='demo')
    make_profile('old', sim, ssh=False)
    sim.faults.delay(r'/archive$', 30, count=1)
    argv = [CFY, 'upgrade', 'prepare', '--freeze', '--waive', 'ssh-access', '--reason',
            'test: no SSH to this host']
    env = dict(os.environ, CFY_WORKDIR=str(cfy_workdir), PYTHONWARNINGS='ignore')
    proc = subprocess.Popen(argv, env=env, cwd=str(cfy_workdir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not sim.requests.matching('GET', '/archive'):
            assert proc.poll() is None, 'prepare ended before its download'
            assert time.monotonic() < deadline, 'no download request'
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    (upgrade_id,) = os.listdir(_upgrades(cfy_workdir))
    assert sim.maintenance_state()['status'] == 'deactivated'     # not frozen yet
    assert not sim.requests.matching('POST', '/maintenance')

    result = run_cfy(*argv[1:] + ['--json'])

    assert result.returncode == 0, result
    document = result.json
    assert document['upgrade_id'] == upgrade_id                  # resumed, not new
    assert len(_puts(sim)) == 1 and len(sim.state.all('snapshots')) == 1
    _assert_snapshot_matches_server(cfy_workdir, document, sim)
    download = [e['event'] for e in _journal(cfy_workdir, upgrade_id)
                if e['step'] == 'download-snapshot']
    assert download == ['started', 'interrupted', 'resumed', 'started', 'succeeded']
    # frozen, and only after the archive was read
    assert sim.maintenance_state()['status'] == 'activated'
    assert document['frozen'] is True
    order = [(e['method'], e['path']) for e in sim.requests
             if '/archive' in e['path'] or '/maintenance/activate' in e['path']]
    assert order[-1] == ('POST', '/api/v3.1/maintenance/activate')
    assert ('POST', '/api/v3.1/maintenance/activate') not in order[:-1]
    assert any('maintenance-mode deactivate' in line for line in document['instructions'])
    # no SSH (waived): the rest-security backup is recorded as not taken
    assert _by_id(document['checks'])['ssh-access']['status'] == 'waived'
    assert document['backups'] == []
    (backup,) = [e for e in _journal(cfy_workdir, upgrade_id)
                 if e['step'] == 'backup-host-files' and e['event'] == 'succeeded']
    assert backup['details']['not_backed_up'] == ['rest-security']


def test_prepare_help_explains_freeze(run_cfy):
    result = run_cfy('upgrade', 'prepare', '--help')

    assert result.returncode == 0, result
    text = ' '.join(result.stdout.split())
    assert '--freeze' in text and 'maintenance mode' in text
    assert '3.4-4.4' in text and '4.5+' in text


# -- every other source version ---------------------------------------------------------

@pytest.mark.parametrize('version,reported', [
    ('4.2', '4.2.0'), ('4.4', '4.4.0'), ('5.2.7', '5.2.7'), ('6.4', '6.4.0'),
    ('7.0', '7.0.4')])
def test_prepare_on_other_sources(
        simulated_manager, make_profile, run_cfy, cfy_workdir, version, reported):  # noqa: F811
    sim = simulated_manager(version, data='demo')
    make_profile('old', sim, ssh=False)

    result = run_cfy('upgrade', 'prepare', '--target-version', '7.0.4', '--json')

    assert result.returncode == 0, result
    document = result.json
    assert document['source']['version'] == reported
    assert document['snapshot']['snapshot_version'] == reported
    _assert_snapshot_matches_server(cfy_workdir, document, sim)
    assert document['backups'] == []
    assert _mutating(sim) == [('PUT', '{0}/snapshots/{1}'.format(
        document['source']['api_prefix'], document['snapshot']['id']))]
