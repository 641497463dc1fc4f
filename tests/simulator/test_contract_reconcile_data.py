"""Contract: the data a reconciliation compares (issue 15 item 6): deployment groups,
deployment / blueprint filters, labels, execution schedules (see also
test_contract_schedules.py), user groups, tenant roles, secrets by name and visibility;
served by the versions that have them, listed as a real manager lists them, carried by a
restore.

References: behaviour §3.2 (tenant/visibility fields), §12.3; Cloudify source:
cloudify-manager@5.2.0 / @6.0.0 / @7.0.4 rest-service/manager_rest/rest/endpoint_mapper.py,
storage/resource_models.py (DeploymentGroup, Filter / FilterBase, DeploymentLabel,
BlueprintLabel), rest/responses.py (Label), rest/resources_v3_1/labels.py,
configure_manager.py / packaging create_system_filters.py (system filters),
rest-service/migrations/versions/9d261e90b1f3_5_1_1_to_5_2.py and
396303c07e35_5_2_to_5_3.py; cloudify-manager@4.0 endpoint_mapper.py ('user-groups'),
@7.0.4 storage/management_models.py (Group.to_response).
"""
import pytest

from tests.simulator.helpers import raw, wait_until
from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload

PASSWORD = 'Same-Admin-Pw1'


def _get(mgr, path, **kwargs):
    return raw(mgr, 'GET', '/api/v3.1' + path, **kwargs)


def _items(mgr, path, **kwargs):
    response = _get(mgr, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()['items']


@pytest.mark.parametrize('path', ['/deployment-groups', '/filters', '/labels/deployments'])
def test_absent_before_52(simulated_manager, path):
    """Groups, filters and labels come with 5.2 (5.1's nginx does not proxy them: the UI
    404 page, behaviour §2.1)."""
    assert _get(simulated_manager('5.1', data='demo'), path).status_code == 404


def test_groups_labels_filters_52(simulated_manager):
    """5.2.x: deployment labels {key, value, created_at, creator_id} and
    deployment_groups on deployments; GET /deployment-groups; one filters endpoint whose
    items carry value {'labels': {'equal': ...}} and labels_filters; label keys / values."""
    mgr = simulated_manager('5.2.7', data='demo')
    client = mgr.client()
    hw = client.deployments.get('hw-1')
    assert [(lab['key'], lab['value']) for lab in hw['labels']] == [
        ('env', 'dev'), ('team', 'web')]
    assert set(hw['labels'][0]) == {'key', 'value', 'created_at', 'creator_id'}
    assert hw['deployment_groups'] == ['web-group']
    [group] = _items(mgr, '/deployment-groups')
    assert group['id'] == 'web-group' and group['deployment_ids'] == ['hw-1', 'web-1']
    assert group['default_blueprint_id'] == 'hello-world' and 'labels' not in group
    [one] = _items(mgr, '/filters')
    assert one['id'] == 'prod-deployments' and one['labels_filters'] == ['env=prod']
    assert one['value'] == {'labels': {'equal': {'env': ['prod']}}}
    assert _items(mgr, '/labels/deployments') == ['env', 'team']
    assert _items(mgr, '/labels/deployments/env') == ['dev', 'prod']
    assert _get(mgr, '/labels/blueprints').status_code == 404
    assert 'labels' not in client.blueprints.get('hello-world')


@pytest.mark.parametrize('version,system,author', [('6.0', 2, 'creator_id'),
                                                   ('6.4', 22, 'creator_id'),
                                                   ('7.0', 22, 'created_by')])
def test_split_filters_and_blueprint_labels(simulated_manager, version, system, author):
    """6.0+: filters/deployments (with the install's global system filters) and
    filters/blueprints, rule lists split into labels_filter_rules / attrs_filter_rules;
    blueprint labels; a label's author is creator_id until 6.4, created_by on 7.0."""
    mgr = simulated_manager(version, data='demo')
    deployments = _items(mgr, '/filters/deployments?_all_tenants=true')
    assert sum(1 for f in deployments if f['is_system_filter']) == system
    assert all(f['visibility'] == 'global' for f in deployments if f['is_system_filter'])
    mine = [f for f in deployments if f['id'] == 'prod-deployments'][0]
    assert mine['labels_filter_rules'] == mine['value'] == [
        {'key': 'env', 'values': ['prod'], 'operator': 'any_of', 'type': 'label'}]
    assert mine['attrs_filter_rules'] == []
    [blueprint_filter] = _items(mgr, '/filters/blueprints')
    assert blueprint_filter['id'] == 'demo-blueprints'
    labels = mgr.client().blueprints.get('hello-world')['labels']
    assert [(lab['key'], lab['value']) for lab in labels] == [('tier', 'demo')]
    assert author in labels[0]
    assert _items(mgr, '/labels/blueprints') == ['tier']
    [group] = _items(mgr, '/deployment-groups')
    assert group['labels'][0]['key'] == 'team' and group['creation_counter'] == 0


def test_empty_70_has_only_system_filters(simulated_manager):
    """A fresh 7.0 install holds the system deployment filters and nothing else."""
    mgr = simulated_manager('7.0')
    assert {f['is_system_filter'] for f in _items(mgr, '/filters/deployments')} == {True}
    assert _items(mgr, '/filters/blueprints') == []
    assert _items(mgr, '/deployment-groups') == []


def test_user_groups_and_tenant_roles(simulated_manager):
    """User groups (premium 4.0+): name, ldap_dn, role, tenants and users (counts, or
    mappings with _get_data); tenant roles: each user's role per tenant
    (/users?_get_data=true) and each tenant's users (/tenants?_get_data=true)."""
    mgr = simulated_manager('4.2', data='demo')
    counted = {g['name']: g for g in _items(mgr, '/user-groups')}
    assert counted['ops']['tenants'] == 1 and counted['ops']['users'] == 1
    detailed = {g['name']: g for g in _items(mgr, '/user-groups?_get_data=true')}
    assert detailed['ops']['tenants'] == {'t_prod': 'manager'}
    assert detailed['devs']['users'] == ['alice']
    users = {u['username']: u for u in _items(mgr, '/users?_get_data=true')}
    assert users['bob']['tenants']['t_prod']['tenant-role'] == 'manager'
    assert users['bob']['tenants']['default_tenant']['tenant-role'] == 'viewer'
    tenants = {t['name']: t for t in _items(mgr, '/tenants?_get_data=true')}
    assert tenants['t_prod']['user_roles']['direct'] == {'bob': 'manager'}
    community = simulated_manager('7.0', edition='community', data='demo')
    refused = _get(community, '/user-groups')
    assert refused.status_code == 404
    assert refused.json()['error_code'] == 'missing_premium_package_error'


def test_secrets_by_visibility(simulated_manager):
    """Secrets carry their visibility (4.3+): a global secret is listed in every tenant; a
    private one only to its creator and admins (behaviour §3.2)."""
    mgr = simulated_manager('7.0', data='demo')
    in_prod = {s['key']: s['visibility'] for s in _items(mgr, '/secrets', tenant='t_prod')}
    assert in_prod['shared_api_key'] == 'global'
    assert 'alice_token' not in in_prod
    admin_view = {s['key']: s['visibility'] for s in _items(mgr, '/secrets')}
    assert admin_view['alice_token'] == 'private'
    bob = _items(mgr, '/secrets', username='bob', password=mgr.user_passwords['bob'])
    assert 'alice_token' not in {s['key'] for s in bob}
    old = simulated_manager('4.2', data='demo')
    old_view = {s['key']: s for s in _items(old, '/secrets')}
    assert old_view['alice_token']['private_resource'] is True
    assert old_view['shared_api_key']['resource_availability'] == 'global'


def _restored(simulated_manager, source_version):
    source = simulated_manager(source_version, data='demo', admin_password=PASSWORD)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    wait_until(lambda: _get(target, '/deployment-groups').status_code == 200, 10,
               what='the target answers')
    return source, target


def test_restore_carries_everything_from_64(simulated_manager):
    """6.4 -> 7.0: groups, filters, labels, schedules, user groups, tenant roles and secrets
    arrive as they were (labels now with created_by)."""
    source, target = _restored(simulated_manager, '6.4')
    for path in ('/deployment-groups?_include=id,deployment_ids,default_blueprint_id',
                 '/filters/deployments?_all_tenants=true',
                 '/filters/blueprints', '/user-groups?_get_data=true',
                 '/execution-schedules?_all_tenants=true&_include=id,enabled,deployment_id',
                 '/secrets?_all_tenants=true&_include=key,visibility,tenant_name',
                 '/labels/deployments'):
        assert _items(target, path) == _items(source, path), path
    labels = target.client().deployments.get('web-1')['labels']
    assert [(lab['key'], lab['value']) for lab in labels] == [
        ('env', 'prod'), ('team', 'web')]
    assert 'created_by' in labels[0] and 'creator_id' not in labels[0]
    roles = {u['username']: u['tenants'] for u in _items(target, '/users?_get_data=true')}
    assert roles['bob']['t_prod']['tenant-role'] == 'manager'


def test_52_filters_lost_on_70(simulated_manager):
    """5.2.x -> 7.0: the 5.2 -> 5.3 migration drops the `filters` table, so the source's
    filters do not arrive; groups and labels do."""
    source, target = _restored(simulated_manager, '5.2.7')
    assert _items(source, '/filters')
    assert _items(target, '/filters/deployments') == []
    assert [g['id'] for g in _items(target, '/deployment-groups')] == ['web-group']
    assert _items(target, '/labels/deployments') == ['env', 'team']


def test_scale_data_set(simulated_manager):
    """issue 15 item 7: 'scale' = 10,000 deployments and 20,000 node instances over 50
    tenants, generated on first use (nothing is built while the manager starts)."""
    mgr = simulated_manager('7.0', data='scale')
    assert mgr.store.res._done is False
    assert len(mgr.store.tenants) == 50
    total = _get(mgr, '/deployments?_all_tenants=true&_size=1').json()
    assert total['metadata']['pagination']['total'] == 10000
    assert mgr.store.res._done is True
    instances = _get(mgr, '/node-instances?_all_tenants=true&_size=1').json()
    assert instances['metadata']['pagination']['total'] == 20000
    one = _get(mgr, '/deployments?_size=1', tenant='tenant_07').json()
    assert one['metadata']['pagination']['total'] == 200
    assert one['items'][0]['id'] == 'tenant_07-dep-0000'
    page = _items(mgr, '/node-instances?_size=1000&_offset=0&deployment_id='
                  'tenant_07-dep-0001', tenant='tenant_07')
    assert sorted(i['node_id'] for i in page) == ['app', 'vm']
    agents = mgr.client(tenant='tenant_07').agents.list(_size=1)
    assert agents.metadata.pagination.total == 200
