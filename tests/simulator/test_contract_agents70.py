"""Contract: GET /agents per version and install_new_agents on a 7.0 target (which hosts
move, the rows a move leaves, stop_old_agent, parameters per restored deployment, a host
left behind).

References: behaviour §5.3, §12.6; Cloudify source:
cloudify-common@7.0.4 cloudify/plugins/workflows.py (_make_install_agents_graph,
_create_hosts_list, _assert_hosts_started), cloudify/constants.py
(AGENT_INSTALL_METHODS_INSTALLED); cloudify-agent@7.0.4 cloudify_agent/operations.py
(create_agent_amqp, _stop_old_agent), cloudify_agent/api/utils.py
(generate_new_agent_name); cloudify-manager@4.5 / @5.0.5 / @6.3.0 / @7.0.4
rest-service/manager_rest/rest/responses_v3.py (AgentResponse),
mgmtworker/cloudify_system_workflows/snapshots/agents.py (insert_agent_to_db);
cloudify-manager@4.2..7.0.4 resources/rest-service/cloudify/types/types.yaml.
"""
import json
import re
import signal

import pytest
import requests

from tests.simulator import agents
from tests.simulator.helpers import raw, wait_execution, wait_until
from tests.simulator.test_contract_main import launch
from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload

PASSWORD = 'Same-Admin-Pw1'


def _moved(simulated_manager, source_version):
    source = simulated_manager(source_version, data='demo', admin_password=PASSWORD)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    wait_until(lambda: raw(target, 'GET', '/api/v3.1/agents').status_code == 200, 10,
               what='the target answers')
    return source, target


def _run(target, deployment, parameters=None, allow_custom=False):
    client = target.client()
    response = raw(target, 'POST', '/api/v3.1/executions', json_body={
        'deployment_id': deployment, 'workflow_id': 'install_new_agents',
        'parameters': parameters or {}, 'allow_custom_parameters': allow_custom})
    if response.status_code != 201:
        return response
    return wait_execution(client, response.json()['id'])


def _rows(target, deployment):
    return target.client().agents.list(deployment_id=deployment, _all_tenants=True)


@pytest.mark.parametrize('version,fields,absent', [
    ('4.5.0', ('id', 'host_id', 'version', 'install_method', 'deployment'),
     ('tenant_name', 'state')),
    ('5.0.5', ('tenant_name', 'version'), ('state', 'node_instance_id')),
    ('6.0', ('tenant_name',), ('state', 'node_instance_id')),
    ('6.4', ('state', 'node_instance_id', 'rabbitmq_exchange'), ()),
])
def test_agents_fields_per_version(simulated_manager, version, fields, absent):
    """AgentResponse: 4.5 basic fields, 5.0.5 + tenant_name, 6.3+ node_instance_id and
    state (cloudify-manager@6.3.0, absent at 6.2.0; 6.4 is the first simulated version
    that has them)."""
    mgr = simulated_manager(version, data='demo')
    items = mgr.client().agents.list()
    assert items
    for field in fields:
        assert field in items[0], field
    for field in absent:
        assert field not in items[0], field


def test_no_agents_endpoint_before_45(simulated_manager):
    """GET /agents appears in 4.5 (cloudify-manager@4.5 endpoint_mapper.py 'Agents';
    cloudify-manager-install@4.5 nginx rest-location): 4.4's nginx answers with the UI."""
    assert raw(simulated_manager('4.4', data='demo'), 'GET',
               '/api/v3.1/agents').status_code == 404


def test_move_adds_a_row(simulated_manager):
    """A 4.1 snapshot has no agents table: the restore creates the rows, state 'restored'
    (insert_agent_to_db); a move marks the old row 'upgraded' and adds a started row named
    <old name>_<uuid> at the target's version; the node instance then names the new agent."""
    _, target = _moved(simulated_manager, '4.1')
    before = _rows(target, 'hw-1')
    assert [(a.state, a.version) for a in before] == [('restored', '4.1.0')]
    assert _run(target, 'hw-1').status == 'terminated'
    rows = {a.id: a for a in _rows(target, 'hw-1')}
    old = rows[before[0].id]
    assert (old.state, old.version) == ('upgraded', '4.1.0')
    new = [a for a in rows.values() if a.id != old.id]
    assert len(new) == 1
    assert re.match(re.escape(old.id) + r'_[0-9a-f-]{36}$', new[0].id)
    assert (new[0].state, new[0].version, new[0]['node_instance_id']) == (
        'started', '7.0.4', old['node_instance_id'])
    instance = target.client().node_instances.get(old['node_instance_id'])
    assert instance.runtime_properties['cloudify_agent']['name'] == new[0].id


def test_rows_of_a_recent_source_stay_as_they_were(simulated_manager):
    """A 4.5.5+ snapshot brings its agents table: the rows keep their state."""
    _, target = _moved(simulated_manager, '6.4')
    assert {a.state for a in _rows(target, 'hw-1')} == {'started'}


@pytest.mark.parametrize('method,moved', [('provided', False), ('none', False),
                                          ('init_script', True), ('plugin', True)])
def test_install_methods(simulated_manager, method, moved):
    """behaviour §12.6: only init_script, plugin, remote hosts get a new agent; provided and
    none are skipped silently and the execution still ends terminated."""
    _, target = _moved(simulated_manager, '6.4')
    agents.set_install_method(target, 'hw-1', method)
    assert _run(target, 'hw-1').status == 'terminated'
    versions = sorted(a.version for a in _rows(target, 'hw-1'))
    if method == 'none':
        assert versions == []
    elif moved:
        assert versions == ['6.4.0', '7.0.4']
    else:
        assert versions == ['6.4.0']


def test_hosts_must_be_started_unless_filtered_out(simulated_manager):
    """_assert_hosts_started runs on the hosts left after the install-method filter:
    draft-1's never-started host fails the execution ('Node ... is not started (state:
    uninitialized)') unless its install method is provided."""
    mgr = simulated_manager('7.0', data='demo')
    failed = _run(mgr, 'draft-1')
    assert failed.status == 'failed'
    assert re.search(r'Node vm_\w+ is not started \(state: uninitialized\)', failed.error)
    agents.set_install_method(mgr, 'draft-1', 'provided')
    assert _run(mgr, 'draft-1').status == 'terminated'


def test_named_none_host_fails(simulated_manager):
    """node_instance_ids naming a host whose install method is none: the 7.0.4 code calls
    .format on list.append's None (_create_hosts_list), so the execution fails."""
    mgr = simulated_manager('7.0', data='demo')
    [host] = agents.set_install_method(mgr, 'hw-1', 'none')
    done = _run(mgr, 'hw-1', {'node_instance_ids': [host]})
    assert done.status == 'failed' and 'AttributeError' in done.error


def test_stop_old_agent(simulated_manager):
    """stop_old_agent (declared from 4.4 types): the old agent's process stops on its host
    and the target's old row says 'stopped'; the old manager's own row is not told."""
    source, target = _moved(simulated_manager, '6.4')
    assert _run(target, 'web-1', {'stop_old_agent': True}).status == 'terminated'
    states = sorted(a.state for a in _rows(target, 'web-1'))
    assert states == ['started', 'started', 'stopped', 'stopped']
    old = [a for a in source.agents('default_tenant') if a['deployment'] == 'web-1']
    assert {a['process'] for a in old} == {'stopped'}
    assert {a.state for a in source.client().agents.list(deployment_id='web-1')} == {
        'started'}
    untouched = [a for a in source.agents('default_tenant') if a['deployment'] == 'hw-1']
    assert {a['process'] for a in untouched} == {'running'}


@pytest.mark.parametrize('source_version,undeclared', [
    ('4.3', 'stop_old_agent'), ('4.4', 'install_methods'),
])
def test_parameters_declared_by_the_restored_deployment(simulated_manager, source_version,
                                                        undeclared):
    """cloudify-manager@7.0.4 storage/resource_models.py Execution.merge_workflow_parameters
    and resources/rest-service/cloudify/types/types.yaml per version: the REST service
    checks the parameters the deployment's stored workflow declares (4.3 types: no
    stop_old_agent / manager_ip / install_methods; 4.4: no install_methods): undeclared keys
    are refused unless allow_custom_parameters."""
    _, target = _moved(simulated_manager, source_version)
    value = True if undeclared == 'stop_old_agent' else ['remote']
    refused = _run(target, 'hw-1', {undeclared: value})
    assert refused.status_code == 400
    assert refused.json()['error_code'] == 'illegal_execution_parameters_error'
    assert undeclared in refused.json()['message']
    assert _run(target, 'hw-1', {undeclared: value}, allow_custom=True).status == \
        'terminated'


def test_host_left_on_the_old_version(simulated_manager):
    """Fault agent_stays_old: the execution ends terminated but that host keeps its old
    agent (what a verification through GET /agents must catch); fail_execution with
    node_instance_ids makes the execution fail instead."""
    _, target = _moved(simulated_manager, '6.4')
    hosts = sorted(a['node_instance_id'] for a in _rows(target, 'web-1'))
    target.faults.agent_stays_old(hosts[0])
    assert _run(target, 'web-1').status == 'terminated'
    current = {a['node_instance_id']: a['version'] for a in target.agents('default_tenant')
               if a['deployment'] == 'web-1'}
    assert current == {hosts[0]: '6.4.0', hosts[1]: '7.0.4'}
    rows = _rows(target, 'web-1')
    assert sorted((a['node_instance_id'], a.state, a.version) for a in rows) == sorted([
        (hosts[0], 'started', '6.4.0'), (hosts[1], 'upgraded', '6.4.0'),
        (hosts[1], 'started', '7.0.4')])


def test_command_line_agent_options():
    """`python -m tests.simulator --agent-install-method [TENANT/]DEPLOYMENT=METHOD`: the
    hosts' install method is set before serving; a bad method is bad input (exit 2)."""
    bad = launch('--manager-version', '7.0', '--no-ssh', '--data', 'demo',
                 '--agent-install-method', 'hw-1=bogus')
    out, _ = bad.communicate(timeout=30)
    assert bad.returncode == 2 and out == ''
    proc = launch('--manager-version', '7.0', '--no-ssh', '--data', 'demo',
                  '--agent-install-method', 't_prod/prod-db=provided',
                  '--agent-stays-old', 'nosuch')
    try:
        info = json.loads(proc.stdout.readline())
        url = 'http://127.0.0.1:{0}/api/v3.1/agents?deployment_id=prod-db'.format(
            info['rest_port'])
        items = requests.get(url, auth=(info['admin_username'], info['admin_password']),
                             headers={'Tenant': 't_prod'}).json()['items']
        assert [a['install_method'] for a in items] == ['provided']
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
