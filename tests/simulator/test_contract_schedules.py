"""Contract: execution schedules (5.2+) and the scheduler of the simulated manager.

References: behaviour §12.5
(5.2.x schedules keep firing in maintenance mode); Cloudify source: cloudify-manager@5.2.7 /
@6.0.0 / @7.0.4 rest-service/manager_rest/rest/resources_v3_1/execution_schedules.py,
execution-scheduler/execution_scheduler/main.py (check_schedules, should_run,
execute_workflow), rest-service/manager_rest/utils.py (get_rrule); cloudify-common@7.0.5
cloudify_rest_client/execution_schedules.py (what the stock client sends).
"""
import datetime

import pytest

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_execution, wait_until
from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload

PASSWORD = 'Same-Admin-Pw1'


def _since(minutes_ago=5):
    return (datetime.datetime.utcnow() - datetime.timedelta(minutes=minutes_ago)).strftime(
        '%Y-%m-%dT%H:%M:%S')


@pytest.mark.parametrize('version,key', [('5.2.7', 'frequency'), ('6.0', 'recurrence'),
                                         ('7.0', 'recurrence')])
def test_demo_schedules_listed(simulated_manager, version, key):
    """GET /execution-schedules: the demo's enabled nightly-check (default_tenant) and
    disabled weekly-backup (t_prod); the rule's frequency key is 'frequency' at 5.2.x,
    'recurrence' from 6.0 (cloudify-manager@5.2.7 / @6.0.0)."""
    client = simulated_manager(version, data='demo').client()
    items = client.execution_schedules.list(_all_tenants=True)
    by_id = {s.id: s for s in items}
    assert sorted(by_id) == ['nightly-check', 'weekly-backup']
    nightly = by_id['nightly-check']
    assert nightly.deployment_id == 'hw-1' and nightly.enabled is True
    assert nightly['rule'][key] == '1 day' and nightly['workflow_id'] == 'execute_operation'
    assert nightly.next_occurrence and len(nightly['all_next_occurrences']) == 1000
    assert by_id['weekly-backup']['tenant_name'] == 't_prod'
    assert by_id['weekly-backup'].enabled is False


@pytest.mark.parametrize('version', ['5.0.5', '5.1'])
def test_no_schedules_before_52(simulated_manager, version):
    """Execution schedules are 5.2+ (cloudify-manager@5.2.0 endpoint_mapper.py); the nginx
    of 5.0.5/5.1 does not proxy them: the UI's 404 page (behaviour §2.1)."""
    mgr = simulated_manager(version, data='demo')
    assert raw(mgr, 'GET', '/api/v3.1/execution-schedules').status_code == 404


def test_patch_needs_deployment_id_from_60(simulated_manager):
    """PATCH/GET by id: 5.2.x take no query argument; 6.0+ require ?deployment_id=
    (flask-restful 400 'Missing required parameter in the query string'); PATCH answers
    201 with the schedule."""
    old = simulated_manager('5.2.7', data='demo')
    patched = raw(old, 'PATCH', '/api/v3.1/execution-schedules/nightly-check',
                  json_body={'enabled': False})
    assert patched.status_code == 201, patched.text
    assert patched.json()['enabled'] is False
    new = simulated_manager('7.0', data='demo')
    path = '/api/v3.1/execution-schedules/nightly-check'
    missing = raw(new, 'PATCH', path, json_body={'enabled': False})
    assert missing.status_code == 400
    assert missing.json() == {'message': {
        'deployment_id': 'Missing required parameter in the query string'}}
    assert raw(new, 'GET', path).status_code == 400
    wrong = raw(new, 'GET', path + '?deployment_id=web-1')
    assert wrong.status_code == 404 and wrong.json()['message'].startswith(
        'Requested `ExecutionSchedule` with ID `nightly-check` was not found')
    ok = raw(new, 'PATCH', path + '?deployment_id=hw-1', json_body={'enabled': 'false'})
    assert ok.status_code == 201 and ok.json()['enabled'] is False


@pytest.mark.parametrize('version', ['5.2.7', '7.0'])
def test_stock_client_disables_and_enables(simulated_manager, version):
    """The 7.0.5 client's update(schedule_id, deployment_id, enabled=...) sends
    ?deployment_id= and a JSON body with null recurrence/count: both versions take it."""
    client = simulated_manager(version, data='demo').client()
    assert client.execution_schedules.update('nightly-check', 'hw-1',
                                             enabled=False).enabled is False
    assert client.execution_schedules.get('nightly-check', 'hw-1').enabled is False
    assert client.execution_schedules.update('nightly-check', 'hw-1',
                                             enabled=True).enabled is True


def test_create_52_wants_deployment_in_body(simulated_manager):
    """5.2.x PUT reads deployment_id, workflow_id, since, slip from the body (cloudify-
    manager@5.2.7 ExecutionSchedulesId.put): the 7.0.5 client's create, which puts the
    deployment in the query, is refused; 7.0 takes it."""
    old = simulated_manager('5.2.7', data='demo').client()
    with pytest.raises(CloudifyClientError) as refused:
        old.execution_schedules.create('s1', 'hw-1', 'install', since=_since(),
                                       recurrence='1 min')
    assert refused.value.status_code == 400
    assert 'Missing deployment_id in json request body' in str(refused.value)
    new = simulated_manager('7.0', data='demo').client()
    created = new.execution_schedules.create('s1', 'hw-1', 'install', since=_since(),
                                             recurrence='1 min')
    assert created.enabled and created['rule']['recurrence'] == '1 min'


def test_scheduler_fires_due_schedules(simulated_manager):
    """check_schedules: an enabled schedule whose next_occurrence passed starts its workflow
    on its deployment (by the schedule's creator); next_occurrence moves on; a disabled one
    does not fire; every start is in the manager's execution log."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    client.execution_schedules.create('every-minute', 'web-1', 'install', since=_since(),
                                      recurrence='1 min')
    client.execution_schedules.create('off', 'hw-1', 'install', since=_since(),
                                      recurrence='1 min', enabled=False)
    before = client.execution_schedules.get('every-minute', 'web-1').next_occurrence
    assert mgr.scheduler.check() == []
    fired = mgr.scheduler.advance(61)
    assert len(fired) == 1
    execution = client.executions.get(fired[0])
    assert execution.deployment_id == 'web-1' and execution.workflow_id == 'install'
    assert execution.created_by == 'admin'
    assert [e['id'] for e in mgr.started_executions(source='scheduler')] == fired
    after = client.execution_schedules.get('every-minute', 'web-1')
    assert after.next_occurrence > before
    assert wait_execution(client, fired[0]).status == 'terminated'
    assert client.execution_schedules.get(
        'every-minute', 'web-1')['latest_execution_status'] == 'terminated'


@pytest.mark.parametrize('version,fires', [('5.2.7', True), ('6.0', False), ('7.0', False)])
def test_scheduler_and_maintenance_mode(simulated_manager, version, fires):
    """behaviour §12.5 (execution_scheduler/main.py check_schedules): 6.0+ skip every schedule
    while maintenance mode is activated; 5.2.x fire anyway (the execution row appears; its
    workflow's own REST calls are then refused [I], so it fails)."""
    mgr = simulated_manager(version, data='demo')
    client = mgr.client()
    client.execution_schedules.update('nightly-check', 'hw-1', enabled=True)
    client.maintenance_mode.activate()
    wait_until(lambda: client.maintenance_mode.status().status == 'activated', 10,
               what='maintenance mode')
    fired = mgr.scheduler.advance(2 * 3600)
    assert bool(fired) is fires
    assert bool(mgr.started_executions(source='scheduler')) is fires
    if fires:
        client.maintenance_mode.deactivate()
        assert wait_execution(client, fired[0]).status == 'failed'


def test_scheduler_unit_stopped(simulated_manager):
    """The scheduler is the cloudify-execution-scheduler service (cloudify-manager-install
    @5.2.0 cfy_manager/components/execution_scheduler): stopped, nothing fires."""
    mgr = simulated_manager('6.4', data='demo')
    assert mgr.systemctl('stop', 'cloudify-execution-scheduler') == (0, '')
    assert mgr.scheduler.advance(2 * 3600) == []
    assert mgr.systemctl('start', 'cloudify-execution-scheduler') == (0, '')
    assert len(mgr.scheduler.check()) == 1


def test_schedules_travel_in_snapshots(simulated_manager):
    """A snapshot carries the schedules (the execution_schedules table is in the DB dump):
    6.4 -> 7.0 lists them with their enabled flags."""
    source = simulated_manager('6.4', data='demo', admin_password=PASSWORD)
    source.client().execution_schedules.update('nightly-check', 'hw-1', enabled=False)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    wait_until(lambda: raw(target, 'GET', '/api/v3.1/execution-schedules?_all_tenants=true')
               .status_code == 200, 10, what='the target answers')
    items = target.client().execution_schedules.list(_all_tenants=True)
    assert {(s.id, s.enabled) for s in items} == {
        ('nightly-check', False), ('weekly-backup', False)}


def test_52_schedule_restored_on_70(simulated_manager):
    """A 5.2.x schedule keeps its {'frequency': ...} rule on a 6.0+ manager (no migration
    renames it: no 'frequency' in cloudify-manager@7.0.4 rest-service/migrations), and
    get_rrule there reads only 'recurrence' (cloudify-manager@7.0.4 utils.py): listing it
    fails (all_next_occurrences iterates None), PATCH enabled is refused ('recurrence must
    be specified ...'), the scheduler fires nothing [I: code read, not run]."""
    source = simulated_manager('5.2.7', data='demo', admin_password=PASSWORD)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    path = '/api/v3.1/execution-schedules'
    wait_until(lambda: raw(target, 'GET', path).status_code in (200, 500), 10,
               what='the target answers')
    listed = raw(target, 'GET', path)
    assert listed.status_code == 500, listed.text
    assert listed.json()['error_code'] == 'internal_server_error'
    assert raw(target, 'GET', path + '?_include=id,enabled').status_code == 200
    patch = raw(target, 'PATCH', path + '/nightly-check?deployment_id=hw-1',
                json_body={'enabled': False})
    assert patch.status_code == 400
    assert 'recurrence must be specified' in patch.json()['message']
    assert target.client().execution_schedules.get('nightly-check', 'hw-1',
                                                   _include=['enabled']).enabled is True
    assert target.scheduler.advance(2 * 3600) == [] and target.scheduler.errors
