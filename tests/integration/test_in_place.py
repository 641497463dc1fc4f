"""`cfy upgrade in-place` through the real `cfy` against a simulated manager host (issue 7).

The old manager is a simulator on its own host directory (SSH included); `prepare --mode
in-place` takes the snapshot and the host backups, then the test tears the old manager down
and installs the new version on the same REST port and host directory (what the operator
does by hand, behaviour §7.5), updates the profile's password to the new install's, and runs
the real `cfy upgrade in-place`.  The simulated reboot after a certificate restore refuses
connections for `workflows.REBOOT_OUTAGE` manager-seconds (times the time scale).
"""
import pytest

from tests import flows
from tests.simulator import data as simdata
from tests.simulator import workflows
from tests.simulator.fixtures import TEST_TIME_SCALE as TIME_SCALE

CONTRACT_KEYS = {'upgrade_id', 'target', 'restore_execution_id', 'reconciliation', 'agents',
                 'cutover_at', 'next'}
DEMO_AGENT_DEPLOYMENTS = {('default_tenant', 'hw-1'), ('default_tenant', 'web-1'),
                          ('t_prod', 'prod-web'), ('t_prod', 'prod-db')}
CERT = 'etc/cloudify/ssl/cloudify_internal_cert.pem'


@pytest.fixture
def machine(flow, run_cfy, simulated_manager, make_profile, tmp_path):
    """machine(old_version) -> (old, reinstall): old manager prepared for in-place;
    reinstall(new_version, **kwargs) tears it down, installs the new one, sets the profile."""

    def make(old_version):
        old = simulated_manager(old_version, data='demo', ssh=True,
                                state_dir=str(tmp_path / 'machine'))
        make_profile('mgr', old)
        flow.prepare('--from-profile', 'mgr', '--mode', 'in-place', '--json')

        def reinstall(new_version, **kwargs):
            old.teardown()
            new = old.reinstall(new_version, **kwargs)
            # the fresh install has its own admin password: the operator sets it
            result = run_cfy('profiles', 'set', '-p', new.admin_password,
                             '--skip-credentials-validation')
            assert result.returncode == 0, result
            return new
        return old, reinstall
    return make


def _host_ssl(sim):
    return {name: sim.read_host_file('etc/cloudify/ssl/' + name)
            for name in sim.rules.ssl_files}


def _assert_agents_moved(new):
    installs = new.agent_installs()
    assert {key: installs.get(key) for key in DEMO_AGENT_DEPLOYMENTS} == \
        {key: 1 for key in DEMO_AGENT_DEPLOYMENTS}
    for agent in new.agents():
        if (agent['tenant_name'], agent['deployment']) in DEMO_AGENT_DEPLOYMENTS:
            assert agent['version'] == new.version, agent


def test_41_to_42_with_two_users_and_a_20s_reboot(flow, machine, monkeypatch):
    # the reboot after the certificate restore lasts 20 manager-seconds (1 s at the
    # tests' time scale), connections refused meanwhile; the post-restore shell's `sleep 3`
    # (behaviour §3.8) keeps its real length, as the plugin's polls are in real seconds
    monkeypatch.setattr(workflows, 'REBOOT_OUTAGE', 20.0)
    monkeypatch.setattr(workflows, 'POST_RESTORE_DELAY', 3.0 / TIME_SCALE)
    old, reinstall = machine('4.1')
    assert flow.meta()['mode'] == 'in-place'
    assert {b['kind'] for b in flow.meta()['backups']} == {'ssl', 'rest-security'}
    old_ssl = _host_ssl(old)
    new = reinstall('4.2')
    fresh_cert = new.read_host_file(CERT)
    assert fresh_cert != old_ssl['cloudify_internal_cert.pem']
    # no --users: in place, the backed-up rest-security values are put back by default
    result = flow.upgrade('in-place', '--yes')
    assert result.returncode == 0, result
    doc = result.json
    assert CONTRACT_KEYS <= set(doc)
    assert doc['target']['version'] == '4.2.0'
    assert doc['reconciliation']['ok'] is True and doc['reconciliation']['differences'] == []
    assert doc['agents']['succeeded'] == doc['agents']['deployments'] == 4
    assert doc['cutover_at'] and doc['healing_fenced'] is False
    # the restore asked for the certificates; the host has the old ones again
    [restore] = flows.restore_executions(new)
    assert restore['parameters']['restore_certificates'] is True
    assert restore['parameters']['recreate_deployments_envs'] is True
    assert new.read_host_file(CERT) == old_ssl['cloudify_internal_cert.pem']
    # the manager rebooted after the restore; the command waited for it, then went on
    timeline = new.events()
    assert timeline.index('certificates replaced') < timeline.index('reboot') < \
        timeline.index('booted')
    assert flow.meta()['restore_outage_seen'] is True
    waited = flow.last_entry('wait-restore', 'succeeded')['details']
    assert waited['certificates'] == 'restored' and waited['health'] == 'ok'
    assert flow.last_entry('restore-users', 'succeeded')['details']['users'] == \
        'rest-security'
    # the old users log in with their old passwords (old rest-security values put back)
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    assert flows.can_login(new, 'admin', new.admin_password)
    _assert_agents_moved(new)
    assert flow.active_profile() == 'mgr'


def test_400_with_patch_1_gets_its_ssl_directory_back(flow, machine):
    old, reinstall = machine('4.0.0+patch1')
    assert flow.meta()['snapshot']['snapshot_version'] == '4.1.0-p1-4.0.0'
    assert flow.meta()['snapshot']['has_ssl'] is False      # behaviour §7.1
    old_ssl = _host_ssl(old)
    new = reinstall('4.2')
    result = flow.upgrade('in-place', '--users', 'rest-security', '--yes')
    assert result.returncode == 0, result
    [restore] = flows.restore_executions(new)
    assert restore['parameters']['restore_certificates'] is False
    assert flow.events('restore-ssl')[-1] == 'succeeded'
    # every file of the old /etc/cloudify/ssl is back on the host, byte for byte
    for name, content in old_ssl.items():
        assert new.read_host_file('etc/cloudify/ssl/' + name) == content, name
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    _assert_agents_moved(new)


def test_old_manager_still_there_is_refused_and_nothing_uploaded(flow, machine):
    old, _ = machine('4.1')
    result = flow.upgrade('in-place', '--users', 'rest-security', '--yes')
    assert result.returncode == 3, result
    error = result.json['error']
    assert error['id'] == 'blocked' and 'target-is-source' in error['message']
    assert flows.upload_requests(old) == []
    assert old.requests.matching('POST', '/restore') == []
    assert old.agent_installs() == {}


def test_manager_that_never_comes_back_times_out_and_resumes_later(
        flow, machine, run_cfy, monkeypatch):
    monkeypatch.setattr(workflows, 'REBOOT_OUTAGE', 100000.0)   # never, for this test
    old, reinstall = machine('4.1')
    new = reinstall('4.2')
    result = flow.upgrade('in-place', '--users', 'rest-security', '--yes', '--timeout', '3')
    assert result.returncode == 1, result
    error = result.json['error']
    assert error['id'] == 'rest-timeout' and error['step'] == 'wait-restore'
    assert 'did not come back within 3s' in error['message']
    assert any('again' in hint for hint in error['hints'])
    failed = flow.last_entry('wait-restore', 'failed')
    assert failed['details']['error_id'] == 'rest-timeout'
    status = run_cfy('upgrade', 'status', '--upgrade-id', flow.upgrade_id, '--json')
    assert status.returncode == 0, status
    assert status.json['next'] == 'cfy upgrade in-place --upgrade-id {0}'.format(
        flow.upgrade_id)
    steps = {s['id']: s['status'] for s in status.json['steps']}
    assert steps['start-restore'] == 'succeeded' and steps['wait-restore'] == 'failed'
    assert new.agent_installs() == {}
    # the host finally boots (the operator powered it on): the same command resumes
    for unit in new.rules.units:
        new.systemctl('start', unit)
    again = flow.upgrade('in-place', '--users', 'rest-security', '--yes')
    assert again.returncode == 0, again
    assert len(flows.restore_requests(new)) == 1
    _assert_agents_moved(new)


def test_44_to_64_restore_brings_back_the_old_admin_password(flow, machine, run_cfy):
    """behaviour §3.8: after a >= 4.2 snapshot the admin logs in with the OLD password; the
    profile holds the fresh install's, so the command stops and says what to do; after the
    operator sets the old password on the profile, the same command resumes."""
    old, reinstall = machine('4.4')
    old_cert = old.read_host_file(CERT)
    new = reinstall('6.4')
    first = flow.upgrade('in-place', '--yes', '--timeout', '5')
    assert first.returncode == 1, first
    error = first.json['error']
    assert error['id'] == 'credentials-changed-by-restore', error
    assert error['step'] == 'wait-restore'
    assert any('cfy profiles set --manager-password' in hint for hint in error['hints'])
    assert old.admin_password not in first.stdout + first.stderr
    assert flows.can_login(new, 'admin', old.admin_password)
    result = run_cfy('profiles', 'set', '-p', old.admin_password,
                     '--skip-credentials-validation')
    assert result.returncode == 0, result
    again = flow.upgrade('in-place', '--yes')
    assert again.returncode == 0, again
    assert len(flows.restore_requests(new)) == 1
    assert new.read_host_file(CERT) == old_cert
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    _assert_agents_moved(new)
    assert flow.files_containing(old.admin_password, new.admin_password) == []
