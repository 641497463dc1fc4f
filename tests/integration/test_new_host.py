"""`cfy upgrade new-host` through the real `cfy` against simulated managers (issue 6).

Old and new managers are in-process simulators (tests/simulator); the plugin runs as the
real `cfy` in a subprocess.  Asserted: exit codes, the --json document (docs/cli-contract.md),
what each simulator received (request log, executions, agent records, units), the cfy
profiles and every file of the workspace.
"""
import json

import pytest

from tests import flows
from tests.simulator import data as simdata
from tests.waiting import wait_until

CONTRACT_KEYS = {'upgrade_id', 'target', 'restore_execution_id', 'reconciliation', 'agents',
                 'cutover_at', 'next'}
DEMO_AGENT_DEPLOYMENTS = {('default_tenant', 'hw-1'), ('default_tenant', 'web-1'),
                          ('t_prod', 'prod-web'), ('t_prod', 'prod-db')}


@pytest.fixture
def pair(flow, simulated_manager, make_profile):
    """pair(old_version, new_version, **new_kwargs): prepared old + clean new manager."""

    def make(old_version, new_version, old_data='demo', new_data='empty', new_profile=True,
             **new_kwargs):
        old = simulated_manager(old_version, data=old_data, ssh=True)
        new_kwargs.setdefault('ssh', True)
        new = simulated_manager(new_version, data=new_data, **new_kwargs)
        if new_profile:
            make_profile('new', new, ssh=new_kwargs['ssh'])
        make_profile('old', old)          # the active profile, as an operator would have
        flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
        return old, new
    return make


def _assert_agents_moved(old, new, deployments=DEMO_AGENT_DEPLOYMENTS):
    installs = new.agent_installs()
    assert {key: installs.get(key) for key in deployments} == {key: 1 for key in deployments}
    brokers = flows.agents_by_broker(new)
    for key in deployments:
        assert brokers[key] == {new.rest_port}, key


def test_41_premium_to_42_users_keep_their_passwords(flow, pair):
    old, new = pair('4.1', '4.2')
    assert old.unit_active('cloudify-riemann')
    args = ('--to-profile', 'new', '--users', 'rest-security')
    # without --yes (and no terminal to answer on) it stops at the point of no return
    unconfirmed = flow.upgrade('new-host', *args)
    assert unconfirmed.returncode == 1, unconfirmed
    assert unconfirmed.json['error']['id'] == 'not-confirmed'
    assert flow.events('reconcile')[-1] == 'succeeded' and flow.events('cut-over') == []
    assert old.unit_active('cloudify-riemann') and new.agent_installs() == {}
    result = flow.upgrade('new-host', *args + ('--yes',))
    assert result.returncode == 0, result
    doc = result.json
    assert CONTRACT_KEYS <= set(doc)
    assert doc['upgrade_id'] == flow.upgrade_id
    assert doc['target']['version'] == '4.2.0' and doc['target']['edition'] == 'premium'
    assert doc['reconciliation']['ok'] is True and doc['reconciliation']['differences'] == []
    assert doc['agents']['deployments'] == 4 and doc['agents']['succeeded'] == 4
    assert doc['agents']['failed'] == []
    assert doc['cutover_at'] and doc['next'].startswith('cfy upgrade verify-heals')
    # the restore body carried recreate_deployments_envs (4.2 answers 400 without it)
    restores = flows.restore_requests(new)
    assert len(restores) == 1 and restores[0]['status'] == 200
    executions = flows.restore_executions(new)
    assert [e['id'] for e in executions] == [doc['restore_execution_id']]
    assert executions[0]['parameters']['recreate_deployments_envs'] is True
    assert executions[0]['parameters']['restore_certificates'] is False
    # the data of both tenants is there
    with new.state.lock:
        blueprints = {(b['tenant_name'], b['id']) for b in new.state.all('blueprints')}
    assert {('default_tenant', 'hello-world'), ('default_tenant', 'web-app'),
            ('t_prod', 'web-app')} <= blueprints
    # the old users log in with their old passwords; the admin keeps the new one
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    assert flows.can_login(new, 'admin', new.admin_password)
    _assert_agents_moved(old, new)
    assert not old.unit_active('cloudify-riemann')
    assert flow.active_profile() == 'new'
    assert flow.meta()['healing_fenced'] is True


def _new_profile_options(new):
    """The `cfy profiles use`-like options that make new-host create the profile."""
    return ('--manager-ip', '127.0.0.1', '--rest-port', new.rest_port, '--profile-name', 'new',
            '--manager-username', 'admin', '--manager-password', new.admin_password,
            '--ssh-user', new.ssh_user, '--ssh-key', new.ssh_key, '--ssh-port', new.ssh_port)


@pytest.mark.parametrize('old_version,new_version,existing_profile', [
    ('4.4', '6.4', True), ('5.2.7', '7.0', False)])
def test_admin_password_change_is_followed(flow, pair, old_version, new_version,
                                           existing_profile):
    old, new = pair(old_version, new_version, new_profile=existing_profile)
    assert old.admin_password != new.admin_password
    # a profile made here has SSH settings: check-target runs `df` there (target-disk), so
    # the new host's key, known nowhere yet, is confirmed first (issue 17 items 5 and 22)
    target = ('--to-profile', 'new') if existing_profile else \
        _new_profile_options(new) + ('--accept-new-host-keys',)
    result = flow.upgrade('new-host', '--yes', *target)
    assert result.returncode == 0, result
    doc = result.json
    assert doc['target']['version'] == new.version
    assert doc['reconciliation']['ok'] is True
    # behaviour §3.8: the new manager's admin now has the OLD admin's password...
    assert flows.can_login(new, 'admin', old.admin_password)
    assert not flows.can_login(new, 'admin', new.admin_password)
    # ... and the new profile follows it (the plugin never printed it)
    assert flow.read_profile('new')['manager_password'] == old.admin_password
    assert old.admin_password not in result.stdout + result.stderr
    followed = flow.last_entry('follow-credentials', 'succeeded')
    assert followed['details']['profile_updated'] is True
    # >= 4.4 snapshots carry rest-security.conf: the other users keep their passwords too
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    restores = flows.restore_executions(new)
    assert len(restores) == 1
    assert ('recreate_deployments_envs' in restores[0]['parameters']) is \
        (new.rules.v < (6, 0, 0))
    _assert_agents_moved(old, new)
    # riemann exists on 4.x only (behaviour §7.4)
    assert flow.meta()['healing_fenced'] is (old.rules.v < (5, 0, 0))
    # no password of either manager in any file of the workspace
    assert flow.files()
    assert flow.files_containing(old.admin_password, new.admin_password) == []


def test_dirty_target_is_refused_before_anything_is_uploaded(flow, pair):
    old, new = pair('4.1', '4.2', new_data='demo')
    result = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                          '--yes')
    assert result.returncode == 3, result
    assert result.json['error']['id'] == 'blocked'
    assert 'target-not-clean' in result.json['error']['message']
    assert flows.upload_requests(new) == []
    assert new.requests.matching('POST', '/restore') == []
    assert old.unit_active('cloudify-riemann')
    assert new.agent_installs() == {}
    assert flow.active_profile() == 'old'


def test_failed_restore_touches_no_agent_and_a_rerun_restores_again(flow, pair):
    old, new = pair('4.1', '4.2')
    new.faults.fail_execution('restore_snapshot', times=1,
                              error='NonRecoverableError: simulated disk full')
    first = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                         '--yes')
    assert first.returncode == 1, first
    error = first.json['error']
    assert error['id'] == 'restore-failed' and error['step'] == 'wait-restore'
    assert 'simulated disk full' in error['message']
    failed_id = first.json['restore_execution_id']
    assert [e['status'] for e in flows.restore_executions(new)] == ['failed']
    # nothing after the restore ran: no agent touched, the old manager still heals
    assert new.agent_installs() == {} and old.agent_installs() == {}
    assert old.unit_active('cloudify-riemann')
    assert flow.events('cut-over') == []
    assert flow.events('start-restore')[-1] == 'failed'
    # the operator fixed the cause; the re-run checks the target and restores again
    second = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                          '--yes')
    assert second.returncode == 0, second
    assert len(flows.restore_requests(new)) == 2
    # (the second restore replaced the DB, the failed execution's row with it)
    assert second.json['restore_execution_id'] != failed_id
    statuses = {e['id']: e['status'] for e in flows.restore_executions(new)}
    assert statuses[second.json['restore_execution_id']] == 'terminated'
    assert flow.meta()['failed_restore_execution_ids'] == [failed_id]
    assert flows.upload_requests(new) and len(flows.upload_requests(new)) == 1
    _assert_agents_moved(old, new)


def test_failed_restore_that_changed_the_target_is_not_restored_over(flow, pair):
    old, new = pair('4.1', '4.2')
    new.faults.fail_execution('restore_snapshot', times=1)
    first = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                         '--yes')
    assert first.returncode == 1, first
    # a half-done restore left data behind (a blueprint in a tenant)
    with new.state.lock:
        new.state.put('blueprints', {'id': 'leftover', 'tenant_name': 'default_tenant',
                                     'created_by': 'admin', 'visibility': 'tenant',
                                     'created_at': simdata.ts(), 'updated_at': simdata.ts(),
                                     'description': '', 'plan': {}, 'main_file_name': 'b.yaml'})
    second = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                          '--yes')
    assert second.returncode == 1, second
    assert second.json['error']['id'] == 'target-changed-by-failed-restore'
    assert len(flows.restore_requests(new)) == 1
    assert new.agent_installs() == {}


def test_failed_agent_install_is_reported_and_only_it_is_retried(flow, pair):
    old, new = pair('4.1', '4.2')
    new.faults.fail_execution('install_new_agents', deployment_id='web-1', times=1,
                              error='validate_amqp failed: simulated')
    first = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                         '--yes')
    assert first.returncode == 1, first
    doc = first.json
    assert doc['error']['id'] == 'agents-failed' and doc['error']['step'] == 'install-agents'
    assert doc['agents']['deployments'] == 4 and doc['agents']['succeeded'] == 3
    [failed] = doc['agents']['failed']
    assert (failed['tenant'], failed['deployment_id']) == ('default_tenant', 'web-1')
    assert 'simulated' in failed['error'] and failed['execution_id']
    others = DEMO_AGENT_DEPLOYMENTS - {('default_tenant', 'web-1')}
    assert new.agent_installs() == {key: 1 for key in DEMO_AGENT_DEPLOYMENTS}
    assert flows.agents_by_broker(new)[('default_tenant', 'web-1')] == {old.rest_port}
    second = flow.upgrade('new-host', '--to-profile', 'new', '--users', 'rest-security',
                          '--yes')
    assert second.returncode == 0, second
    assert second.json['agents']['succeeded'] == 4 and second.json['agents']['failed'] == []
    # only web-1 ran again
    assert new.agent_installs() == {**{key: 1 for key in others},
                                    ('default_tenant', 'web-1'): 2}
    assert flows.agents_by_broker(new)[('default_tenant', 'web-1')] == {new.rest_port}
    assert len(flows.restore_requests(new)) == 1


def test_user_restore_stopped_half_way_does_not_lock_the_admin_out(flow, pair):
    """The old hash salt is in, the admin's re-hash is lost (behaviour §7.2: the admin row was
    hashed with the new manager's salt): every password is refused.  The re-run puts the
    manager's own rest-security values back (kept on its host) and does the swap again."""
    old, new = pair('4.1', '4.2')
    new.faults.fail_requests(r'/users/admin$', count=1, status=503, method='POST')
    args = ('--to-profile', 'new', '--users', 'rest-security', '--yes')
    first = flow.upgrade('new-host', *args)
    assert first.returncode == 1, first
    assert first.json['error']['step'] == 'restore-users'
    assert new.rest_security['hash_salt'] == old.rest_security['hash_salt']
    assert not flows.can_login(new, 'admin', new.admin_password)        # locked out
    assert new.read_host_file('opt/manager/rest-security.conf.cfy-upgrade-orig')
    second = flow.upgrade('new-host', *args)
    assert second.returncode == 0, second
    assert flows.can_login(new, 'admin', new.admin_password)
    for user, (password, _, tenants) in simdata.DEMO_USERS.items():
        assert flows.can_login(new, user, password, tenant=sorted(tenants)[0]), user
    assert new.rest_security['secret_key'] == old.rest_security['secret_key']
    assert new.read_host_file('opt/manager/rest-security.conf.cfy-upgrade-orig') is None
    assert len(flows.restore_requests(new)) == 1
    _assert_agents_moved(old, new)


def _install_executions(sim):
    with sim.state.lock:
        return [dict(e) for e in sim.state.all('executions')
                if e['workflow_id'] == 'install_new_agents']


def _slow_upload(flow, new):
    # the manager takes the whole archive, then its answer is held: the process dies with
    # the upload done on the manager and its answer lost (a gate, not a delay: under load
    # a delay could let the kill land before the body was sent)
    gate = flow.gate(new, 'PUT', r'/snapshots/[^/]+/archive$', phase='after')
    return gate, lambda: flows.upload_requests(new)


def _slow_restore_start(flow, new):
    # the answer to the restore POST is held: the process dies before it knows the
    # execution id (the manager starts the restore all the same)
    gate = flow.gate(new, 'POST', r'/snapshots/[^/]+/restore$', phase='after')
    return gate, lambda: new.requests.matching('POST', '/restore')


def _slow_restore_wait(flow, new):
    # every poll of an execution is slow: the process dies while waiting for the restore
    new.faults.delay(r'/executions/[^/]+$', 0.3, method='GET')
    return None, lambda: new.requests.matching('GET', '/executions/')


def _slow_agents(flow, new):
    # one deployment at a time, slow polls: the process dies with agents half moved
    new.faults.delay(r'/executions/[^/]+$', 0.3, method='GET')
    return None, lambda: _install_executions(new)


KILL_POINTS = [('upload-snapshot', _slow_upload), ('start-restore', _slow_restore_start),
               ('wait-restore', _slow_restore_wait), ('install-agents', _slow_agents)]


def test_killed_at_each_step_then_rerun_completes_with_one_restore_and_one_install(
        flow, pair):
    """SIGKILL inside upload, start-restore, the restore wait and the agents step, one after
    the other (each run resumes the previous one), then a last run completes."""
    old, new = pair('4.1', '4.2')
    args = ('--to-profile', 'new', '--users', 'rest-security', '--yes',
            '--agents-concurrency', '1')
    installs_at_kill = None
    for step, slow_down in KILL_POINTS:
        gate, inside = slow_down(flow, new)
        killed = flow.crash('upgrade', 'new-host', '--upgrade-id', flow.upgrade_id, '--json',
                            *args, gate=gate,
                            until=lambda: flow.last_entry(step, 'started') and inside())
        assert killed.returncode == -9
        assert flow.events(step)[-1] == 'started', step     # killed inside the step
        if step in ('upload-snapshot', 'start-restore'):
            # the simulator finishes answering the dead process's request (its body was
            # sent) before the next run, as a real manager would
            wait_until(lambda: inside()[0]['status'], 30, 'the answer to the dead process')
        new.faults.clear()
        if step == 'install-agents':
            installs_at_kill = {(e['tenant_name'], e['deployment_id'])
                                for e in _install_executions(new)}
    result = flow.upgrade('new-host', *args)
    assert result.returncode == 0, result
    for step, _ in KILL_POINTS:
        assert 'interrupted' in flow.events(step), step
        assert flow.events(step)[-1] == 'succeeded', step
    # the upload and the restore the dead processes started were found, not redone
    assert flow.last_entry('upload-snapshot', 'succeeded')['details']['recovered'] is True
    assert flow.last_entry('start-restore', 'succeeded')['details']['recovered'] is True
    assert len(flows.upload_requests(new)) == 1
    # one restore, ever
    assert len(flows.restore_requests(new)) == 1
    assert len(flows.restore_executions(new)) == 1
    # the agents step died with some deployments started: those were waited for, the
    # others started; one install_new_agents per deployment, ever
    assert installs_at_kill and installs_at_kill < DEMO_AGENT_DEPLOYMENTS
    per_deployment = {}
    for execution in _install_executions(new):
        key = (execution['tenant_name'], execution['deployment_id'])
        per_deployment[key] = per_deployment.get(key, 0) + 1
    assert per_deployment == {key: 1 for key in DEMO_AGENT_DEPLOYMENTS}
    _assert_agents_moved(old, new)


def test_rehearsal_restores_then_stops_before_the_cut_over_and_the_next_run_continues(
        flow, pair):
    """issue 17 item 21: `new-host --rehearse` runs every step before the point of no return
    (the restore on the new manager included), leaves the old manager in charge (riemann
    running, no agent moved, the active profile unchanged), writes the report and exits 0
    with the status "rehearsed"; the next `new-host` goes on from the cut-over."""
    old, new = pair('4.1', '4.2')
    args = ('--to-profile', 'new', '--users', 'rest-security')
    result = flow.upgrade('new-host', '--rehearse', *args)
    assert result.returncode == 0, result
    doc = result.json
    assert doc['status'] == 'rehearsed'
    assert doc['next'] == 'cfy upgrade new-host --upgrade-id {0}'.format(flow.upgrade_id)
    assert doc['cutover_at'] is None and doc['agents']['succeeded'] is None
    assert doc['reconciliation']['ok'] is True
    assert flow.events('reconcile')[-1] == 'succeeded'
    assert flow.events('cut-over') == ['rehearsed']
    assert flow.events('install-agents') == [] and flow.events('finish') == []
    # the restore ran on the new manager; the old one is untouched and still in charge
    assert len(flows.restore_executions(new)) == 1
    assert old.unit_active('cloudify-riemann')
    assert new.agent_installs() == {} and old.agent_installs() == {}
    assert flow.active_profile() == 'old'
    assert 'cutover_at' not in flow.meta()
    with open(flow.workspace() + '/report.json') as stream:
        assert json.load(stream)['status'] == 'rehearsed'
    with open(flow.workspace() + '/report.md') as stream:
        assert '- status: rehearsed' in stream.read()
    status = flow.run('upgrade', 'status', '--upgrade-id', flow.upgrade_id, '--json')
    assert status.returncode == 0, status
    assert status.json['status'] == 'rehearsed' and status.json['next'] == doc['next']
    human = flow.run('upgrade', 'status', '--upgrade-id', flow.upgrade_id)
    assert 'Status: rehearsed' in human.stdout + human.stderr, human
    # the human output of a rehearsal says so
    again = flow.run('upgrade', 'new-host', '--upgrade-id', flow.upgrade_id, '--rehearse',
                     *args)
    assert again.returncode == 0, again
    assert 'rehearsed' in again.stdout + again.stderr
    assert 'still in charge' in again.stdout + again.stderr
    assert len(flows.upload_requests(new)) == 1

    # the next run (no --rehearse) goes on from the cut-over: nothing before it is redone
    done = flow.upgrade('new-host', '--yes', *args)
    assert done.returncode == 0, done.json["error"]
    assert done.json['status'] == 'done'
    for step in ('check-target', 'upload-snapshot', 'start-restore', 'wait-restore',
                 'restore-users', 'reconcile'):
        assert flow.events(step).count('started') == 1, step
    assert flow.events('cut-over') == ['rehearsed', 'rehearsed', 'started', 'succeeded']
    assert len(flows.upload_requests(new)) == 1 and len(flows.restore_executions(new)) == 1
    _assert_agents_moved(old, new)
    assert not old.unit_active('cloudify-riemann')
    assert flow.active_profile() == 'new'
    status = flow.run('upgrade', 'status', '--upgrade-id', flow.upgrade_id, '--json')
    assert status.json['status'] == 'in-progress'           # verify-heals is next
    # past the point of no return a rehearsal is refused (bad input, nothing done)
    late = flow.upgrade('new-host', '--rehearse', *args)
    assert late.returncode == 2, late
    assert late.json['error']['id'] == 'rehearsal-too-late'


def test_prepare_reports_the_estimates_and_check_target_blocks_on_a_full_new_host(
        flow, pair):
    """issue 17 item 22: prepare keeps the estimates (with the real size next to them) and
    check-target measures the new host with `df -Pk`: too little room there is target-disk,
    blocking before anything is uploaded, and waivable."""
    old, new = pair('5.2.7', '7.0')
    with open(flow.workspace() + '/report.json') as stream:
        estimates = json.load(stream)['estimates']
    assert estimates['snapshot_bytes'] > 0
    assert estimates['actual_snapshot_bytes'] == flow.meta()['snapshot']['size']
    assert estimates['free']['old_host']['filesystems']
    new.machine.host.disk_kb = (10 * 1024 * 1024, 16)
    blocked = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert blocked.returncode == 3, blocked
    checks = {c['id']: c for c in blocked.json['checks']}
    assert checks['target-disk']['status'] == 'fail', checks['target-disk']
    assert 'Too little free space on the target host' in checks['target-disk']['message']
    assert flows.upload_requests(new) == []
    assert any(line.startswith('df -Pk') for line in new.machine.host.commands)
    done = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--waive', 'target-disk',
                        '--reason', 'the restore goes to a bigger disk')
    assert done.returncode == 0, done.json["error"]
    assert flow.last_entry('check-target', 'waived')['details']['check'] == 'target-disk'
