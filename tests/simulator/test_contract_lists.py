"""Contract: list responses (shape, pagination per version, _sort/_include/filters,
_all_tenants, _get_all_results, system workflows), users/tenants per edition, data sets.

References: behaviour §4 (pagination table, query parameters), observed-7.0 §5 'Lists'.
"""
import pytest

from tests.simulator.helpers import raw


def get(mgr, path, **kwargs):
    return raw(mgr, 'GET', mgr.rules.api_prefix + path, **kwargs)


@pytest.fixture(scope='module')
def large42():
    from tests.simulator.manager import start
    mgr = start('4.2', data='large', ssh=False, time_scale=0.05)
    yield mgr
    mgr.stop()


@pytest.fixture(scope='module')
def large70():
    from tests.simulator.manager import start
    mgr = start('7.0', data='large', ssh=False, time_scale=0.05)
    yield mgr
    mgr.stop()


def test_list_shape_70(simulated_manager):
    """observed-7.0 'GET /tenants' row and §5 'Lists': metadata.pagination {total,size,offset},
    filtered null, size = page size (1000 default)."""
    body = get(simulated_manager('7.0'), '/tenants').json()
    assert body == {'metadata': {'pagination': {'total': 1, 'size': 1000, 'offset': 0},
                                 'filtered': None},
                    'items': [{'name': 'default_tenant', 'groups': 0, 'users': 1,
                               'user_roles': None, 'rabbitmq_username': None,
                               'rabbitmq_password': None, 'rabbitmq_vhost': None}]}


def test_large_data_set(large42, large70):
    """issue 3 item 3: thousands of executions over many tenants."""
    body = get(large70, '/executions?_all_tenants=true&_size=1').json()
    assert body['metadata']['pagination']['total'] >= 3500
    tenants = get(large70, '/tenants').json()['metadata']['pagination']['total']
    assert tenants == 50


def test_strict_pagination_42(large42):
    """behaviour §4 pagination table, 4.0-4.5.x row: >1000 rows without _size -> 400
    illegal_action_error; _size > 1000 -> error; _offset alone -> size 0 (empty page)."""
    too_many = get(large42, '/executions')
    assert too_many.status_code == 400
    assert too_many.json()['error_code'] == 'illegal_action_error'
    assert too_many.json()['message'] == ('Response size (2600) bigger than max allowed '
                                          '(1000), please use pagination.')
    assert get(large42, '/executions?_size=1001').status_code == 400
    page = get(large42, '/executions?_size=1000&_offset=2000').json()
    assert len(page['items']) == 600
    assert page['metadata']['pagination'] == {'total': 2600, 'size': 1000, 'offset': 2000}
    empty = get(large42, '/node-instances?_offset=0').json()
    assert empty['items'] == [] and empty['metadata']['pagination']['size'] == 0
    small = get(large42, '/blueprints').json()
    assert small['metadata']['pagination'] == {'total': 1, 'size': 0, 'offset': 0}


def test_default_page_size_70(large70):
    """behaviour §4: 4.5.5+ default_page_size 1000 (no error); observed-7.0 _size/_offset."""
    body = get(large70, '/executions').json()
    assert len(body['items']) == 1000
    assert body['metadata']['pagination'] == {'total': 2600, 'size': 1000, 'offset': 0}


@pytest.mark.parametrize('version,expected', [('4.2', 'error'), ('4.4', 'all'),
                                              ('4.5.5', 'page'), ('5.1', 'all'),
                                              ('7.0', 'all')])
def test_get_all_results(simulated_manager, version, expected):
    """behaviour §4 '_get_all_results 4.4+' (MGR@4.4/4.5 _paginate: honoured without
    pagination; MGR@4.5.5/5.0.5 _paginate: ignored; MGR@5.1+: all results)."""
    mgr = simulated_manager(version, data='large')
    response = get(mgr, '/deployments?_get_all_results=true')
    if expected == 'error':
        assert response.status_code == 400
        return
    items = response.json()['items']
    assert len(items) == (1050 if expected == 'all' else 1000)


def test_342_truncates_silently(simulated_manager):
    """behaviour §4 pagination table 3.4.2 row: silently truncated at 1000."""
    mgr = simulated_manager('3.4.2', data='large')
    body = get(mgr, '/deployments').json()
    assert len(body['items']) == 1000 and body['metadata']['pagination']['total'] == 1050


def test_sort_include_filters(simulated_manager):
    """observed-7.0: _include projection, _sort -field, repeatable filters = OR, unknown keys
    400."""
    mgr = simulated_manager('7.0', data='demo')
    body = get(mgr, '/deployments?_sort=-id&_include=id,blueprint_id').json()
    ids = [d['id'] for d in body['items']]
    assert ids == sorted(ids, reverse=True)
    assert set(body['items'][0]) == {'id', 'blueprint_id'}
    both = get(mgr, '/deployments?id=hw-1&id=web-1').json()['items']
    assert {d['id'] for d in both} == {'hw-1', 'web-1'}
    assert get(mgr, '/deployments?nosuch=1').status_code == 400
    bad_sort = get(mgr, '/deployments?_sort=nosuchfield')
    assert bad_sort.status_code == 400 and 'do not exist' in bad_sort.json()['message']
    bad_include = get(mgr, '/deployments?_include=nosuchfield')
    assert bad_include.json()['error_code'] == 'no_such_include_field_error'


def test_system_workflows_hidden(simulated_manager):
    """behaviour §4 / observed-7.0: create_snapshot executions are hidden unless
    _include_system_workflows=true; booleans must be true/false."""
    mgr = simulated_manager('7.0')
    client = mgr.client()
    client.snapshots.create('snap1', True)
    assert get(mgr, '/executions').json()['items'] == []
    shown = get(mgr, '/executions?_include_system_workflows=true').json()['items']
    assert [e['workflow_id'] for e in shown] == ['create_snapshot']
    bad = get(mgr, '/executions?_include_system_workflows=yes')
    assert bad.status_code == 400
    assert bad.json()['message'] == '_include_system_workflows must be <true/false>, got yes'


def test_all_tenants(simulated_manager):
    """behaviour §4 '_all_tenants=true 4.0+': a sys_admin sees every tenant."""
    mgr = simulated_manager('4.2', data='demo')
    mine = get(mgr, '/deployments').json()['items']
    every = get(mgr, '/deployments?_all_tenants=true').json()['items']
    assert {d['tenant_name'] for d in mine} == {'default_tenant'}
    assert {d['tenant_name'] for d in every} == {'default_tenant', 't_prod'}


def test_users_premium_only(simulated_manager):
    """observed-7.0 'GET /users' community -> 404 missing_premium_package_error; GET /user."""
    community = simulated_manager('7.0', edition='community', data='demo')
    response = get(community, '/users')
    assert response.status_code == 404
    assert response.json()['error_code'] == 'missing_premium_package_error'
    assert get(community, '/user').json()['role'] == 'sys_admin'
    assert [t['name'] for t in get(community, '/tenants').json()['items']] == [
        'default_tenant']
    premium = simulated_manager('7.0', data='demo')
    names = {u['username'] for u in get(premium, '/users').json()['items']}
    assert names == {'admin', 'alice', 'bob'}


def test_demo_user_scoping(simulated_manager):
    """behaviour §4: non-admins with _all_tenants see their own tenants only."""
    mgr = simulated_manager('7.0', data='demo')
    password = mgr.user_passwords['alice']
    mine = get(mgr, '/deployments?_all_tenants=true', username='alice',
               password=password).json()['items']
    assert {d['tenant_name'] for d in mine} == {'default_tenant'}
    denied = get(mgr, '/deployments', username='alice', password=password, tenant='t_prod')
    assert denied.status_code == 403


def test_node_instances_and_agents(simulated_manager):
    """Compute hosts have id == host_id (behaviour §5.2); /agents (5.0.5+) fields per observed-7.0
    §5 'Agent (list)'; agent broker config in runtime properties (behaviour §5.3)."""
    mgr = simulated_manager('7.0', data='demo')
    instances = get(mgr, '/node-instances?deployment_id=hw-1').json()['items']
    hosts = [ni for ni in instances if ni['id'] == ni['host_id']]
    assert len(hosts) == 1 and hosts[0]['state'] == 'started'
    agent_conf = hosts[0]['runtime_properties']['cloudify_agent']
    assert agent_conf['broker_config']['broker_port'] == mgr.rest_port
    agents = get(mgr, '/agents?deployment_id=hw-1').json()['items']
    assert set(agents[0]) == {'id', 'host_id', 'node_instance_id', 'ip', 'install_method',
                              'system', 'version', 'node', 'deployment', 'tenant_name',
                              'created_at', 'rabbitmq_exchange', 'created_by',
                              'rabbitmq_username', 'visibility', 'rabbitmq_password',
                              'state'}
    old = simulated_manager('4.2', data='demo')
    response = get(old, '/agents')
    assert response.headers['Content-Type'].startswith('text/html')
