"""Contract: POST /executions (install_new_agents, heal), agents moving between managers,
the auto-heal hazard of old managers, cancel / PATCH, units stopped through systemctl.

References: behaviour §4 (executions), §5 (agents install), §7.4 (riemann), §7.6 (old broker);
observed-7.0 'POST /executions' rows and 'Cancelling stuck executions'.
"""
import pytest

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_execution, wait_until


def post_execution(mgr, body):
    return raw(mgr, 'POST', mgr.rules.api_prefix + '/executions', json_body=body)


def test_post_execution_errors(simulated_manager):
    """observed-7.0: missing deployment_id -> 400 'Missing deployment_id in json request body';
    unknown deployment -> 404; MGR@4.2 resource_manager: unknown workflow, custom
    parameters without the flag, a running execution on the deployment."""
    mgr = simulated_manager('7.0', data='demo')
    missing = post_execution(mgr, {'workflow_id': 'install_new_agents'})
    assert missing.status_code == 400
    assert missing.json()['message'] == 'Missing deployment_id in json request body'
    unknown = post_execution(mgr, {'deployment_id': 'dep1', 'workflow_id':
                                   'install_new_agents', 'parameters': {}})
    assert unknown.status_code == 404
    assert unknown.json()['message'] == 'Requested `Deployment` with ID `dep1` was not found'
    bad_wf = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'nosuch'})
    assert bad_wf.json()['error_code'] == 'nonexistent_workflow_error'
    custom = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal',
                                  'parameters': {'whatever': 1}})
    assert custom.json()['error_code'] == 'illegal_execution_parameters_error'
    mgr.faults.hang_execution(workflow_id='heal')
    first = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal'})
    assert first.status_code == 201
    second = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal'})
    assert second.json()['error_code'] == 'existing_running_execution_error'
    forced = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal',
                                  'force': 'true'})
    assert forced.status_code == 201


def _moved_from_41_to_70(simulated_manager):
    source = simulated_manager('4.1', data='demo')
    from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload
    payload = make_snapshot(source)
    target = simulated_manager('7.0')
    upload(target, payload)
    assert restore_and_wait(target).status == 'terminated'
    return source, target


def test_install_new_agents_moves_agents(simulated_manager):
    """behaviour §5.3 / §7.6: install_new_agents reaches the old agent through the old broker
    and installs a new agent talking to this manager."""
    source, target = _moved_from_41_to_70(simulated_manager)
    before = {a['id']: a['broker']['port'] for a in target.agents('default_tenant')}
    assert set(before.values()) == {source.rest_port}
    client = target.client()
    ex = client.executions.start('hw-1', 'install_new_agents', {},
                                 allow_custom_parameters=True)
    assert wait_execution(client, ex.id).status == 'terminated'
    moved = [a for a in target.agents('default_tenant') if a['deployment'] == 'hw-1']
    assert moved and all(a['broker']['port'] == target.rest_port for a in moved)
    assert all(a['version'] == '7.0.4' and a['installs'] == 1 for a in moved)
    assert target.agent_installs() == {('default_tenant', 'hw-1'): 1}
    untouched = [a for a in target.agents('default_tenant') if a['deployment'] == 'web-1']
    assert all(a['broker']['port'] == source.rest_port for a in untouched)


def test_install_new_agents_fails_for_chosen_instances(simulated_manager):
    """issue 3 item 6: fail for chosen node instances; the others move (a moved host has a
    new agent row, cloudify-agent@7.0.4 operations.py create_agent_amqp: key by node
    instance)."""
    source, target = _moved_from_41_to_70(simulated_manager)
    hosts = sorted(a['node_instance_id'] for a in target.agents('default_tenant')
                   if a['deployment'] == 'web-1')
    target.faults.fail_execution(workflow_id='install_new_agents', deployment_id='web-1',
                                 node_instance_ids=[hosts[0]], error='agent unreachable')
    client = target.client()
    ex = client.executions.start('web-1', 'install_new_agents', {})
    done = wait_execution(client, ex.id)
    assert done.status == 'failed' and 'agent unreachable' in done.error
    ports = {a['node_instance_id']: a['broker']['port']
             for a in target.agents('default_tenant')}
    assert ports[hosts[0]] == source.rest_port
    assert ports[hosts[1]] == target.rest_port


def test_install_new_agents_needs_old_broker(simulated_manager):
    """behaviour §7.6 / §1 item 8: keep the old manager and its broker up until every agent is
    migrated (validate_amqp goes through the old broker)."""
    source, target = _moved_from_41_to_70(simulated_manager)
    assert source.systemctl('stop', 'cloudify-rabbitmq') == (0, '')
    client = target.client()
    ex = client.executions.start('hw-1', 'install_new_agents', {})
    done = wait_execution(client, ex.id)
    assert done.status == 'failed' and 'old broker' in done.error


def test_install_new_agents_requires_started_hosts(simulated_manager):
    """behaviour §5.3 step 1: every selected host must be started, otherwise RuntimeError."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    ex = client.executions.start('draft-1', 'install_new_agents', {})
    done = wait_execution(client, ex.id)
    assert done.status == 'failed' and 'not started' in done.error


def test_auto_heal_while_riemann_runs(simulated_manager):
    """behaviour §7.4: an old 3.x/4.x manager's riemann starts `heal` executions; stopping
    cloudify-riemann stops them; 5.0+ has no riemann."""
    mgr = simulated_manager('4.2', data='demo')
    # web-1 (web_host + db_host) and prod-web (2 x web_host) have host_failure policies
    assert mgr.auto_heal.schedule_all(after=0) == 4
    wait_until(lambda: len(mgr.auto_heal.fired) == 4, 10)
    client = mgr.client()
    heals = client.executions.list(workflow_id='heal', _all_tenants=True,
                                   sort='created_at', is_descending=True)
    assert {h.id for h in heals} >= set(mgr.auto_heal.fired)
    assert {h.deployment_id for h in heals if h.id in mgr.auto_heal.fired} == {
        'web-1', 'prod-web'}
    assert mgr.systemctl('stop', 'cloudify-riemann.service') == (0, '')
    assert mgr.systemctl('is-active', 'cloudify-riemann') == (3, 'inactive\n')
    mgr.auto_heal.schedule('web-1', 'x', after=0)
    wait_until(lambda: mgr.auto_heal.suppressed, 10)
    assert len(mgr.auto_heal.fired) == 4
    new = simulated_manager('5.0.5', data='demo')
    new.auto_heal.schedule('web-1', 'x', after=0)
    wait_until(lambda: new.auto_heal.suppressed, 10)
    assert new.systemctl('stop', 'cloudify-riemann')[0] == 5      # unit not found


@pytest.mark.parametrize('version', ['4.2', '7.0'])
def test_cancel_and_patch(simulated_manager, version):
    """observed-7.0 §3.2: a cancel of a stuck execution stays 'cancelling'; only an admin PATCH
    {"status": "cancelled"} finalises it; a bad action lists the valid ones."""
    mgr = simulated_manager(version, data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    ex = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    wait_until(lambda: client.executions.get(ex.id).status == 'started', 10)
    assert client.executions.cancel(ex.id).status == 'cancelling'
    bogus = raw(mgr, 'POST', '/api/v3.1/executions/' + ex.id, json_body={'action': 'bogus'})
    assert bogus.status_code == 400
    if version == '7.0':
        assert bogus.json()['message'] == (
            "Invalid action: bogus, Valid action values are: ['cancel', 'force-cancel', "
            "'kill', 'resume', 'force-resume', 'requeue']")
    assert client.executions.get(ex.id).status == 'cancelling'
    client.executions.update(ex.id, 'cancelled')
    assert client.executions.get(ex.id).status == 'cancelled'


def test_force_cancel_of_running_execution(simulated_manager):
    mgr = simulated_manager('7.0', data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    ex = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    client.executions.cancel(ex.id, force=True)
    assert wait_execution(client, ex.id).status == 'cancelled'


def test_mgmtworker_stopped_keeps_executions_pending(simulated_manager):
    """observed-7.0 §3.1: without a worker the execution stays pending; it runs once the worker is
    back."""
    mgr = simulated_manager('7.0', data='demo')
    mgr.systemctl('stop', 'cloudify-mgmtworker')
    client = mgr.client()
    ex = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    with pytest.raises(AssertionError):
        wait_until(lambda: client.executions.get(ex.id).status != 'pending', 0.5)
    mgr.systemctl('start', 'cloudify-mgmtworker')
    assert wait_execution(client, ex.id).status == 'terminated'


def test_execution_fields_per_version(simulated_manager):
    """MGR@4.4/4.5/4.5.5 resource_models Execution: ended_at 4.4+, started_at 4.5+."""
    old = simulated_manager('4.2', data='demo').client().executions.list()[0]
    assert 'ended_at' not in old and 'started_at' not in old
    mid = simulated_manager('4.5.0', data='demo').client().executions.list()[0]
    assert 'ended_at' in mid and 'started_at' in mid and 'scheduled_for' not in mid
    with pytest.raises(CloudifyClientError):
        simulated_manager('4.2').client().executions.list(_include=['status_display'])


def test_execution_events_listed_and_paged(simulated_manager):
    """cloudify-common@7.0.5 dispatch.py: an execution sends workflow_started, then
    workflow_succeeded / workflow_failed; GET /events?execution_id= lists them oldest first
    with _offset/_size and the total (7.0.4 resources_v3_1/events.py, flat), read here with
    cfy's own client (``events.list``, as `cfy events list` does); v3 answers the nested shape
    of 4.2 resources_v2/events.py."""
    mgr = simulated_manager('7.0', data='demo')
    mgr.faults.add_events(workflow_id='heal', messages=['one', 'two', 'three'])
    created = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal'})
    execution_id = created.json()['id']
    wait_execution(mgr.client(), execution_id)
    client = mgr.client()
    page = client.events.list(execution_id=execution_id, _offset=0, _size=2,
                              include_logs=False)
    assert page.metadata.pagination.total == 5
    assert [e['message'] for e in page.items] == ["Starting 'heal' workflow execution", 'one']
    rest = client.events.list(execution_id=execution_id, _offset=2, _size=10)
    assert [e['event_type'] for e in rest.items] == [
        'task_succeeded', 'task_succeeded', 'workflow_succeeded']
    assert rest.items[-1]['message'] == "'heal' workflow execution succeeded"
    assert rest.items[-1]['deployment_id'] == 'hw-1' and 'id' not in rest.items[-1]
    other = client.events.list(execution_id='no-such-execution')
    assert other.metadata.pagination.total == 0

    mgr.faults.fail_execution(workflow_id='heal', error='boom')
    failed = post_execution(mgr, {'deployment_id': 'hw-1', 'workflow_id': 'heal'}).json()
    wait_execution(client, failed['id'])
    last = client.events.list(execution_id=failed['id']).items[-1]
    assert (last['event_type'], last['message']) == (
        'workflow_failed', "'heal' workflow execution failed: boom")

    old = simulated_manager('4.1', data='demo')
    started = raw(old, 'POST', old.rules.api_prefix + '/executions',
                  json_body={'deployment_id': 'hw-1', 'workflow_id': 'heal'}).json()
    wait_execution(old.client(), started['id'])
    answer = raw(old, 'GET', '/api/v3/events',
                 params={'execution_id': started['id'], '_offset': 0, '_size': 1}).json()
    assert answer['metadata']['pagination']['total'] == 2
    assert answer['items'][0]['message']['text'] == "Starting 'heal' workflow execution"
    assert answer['items'][0]['context']['execution_id'] == started['id']
