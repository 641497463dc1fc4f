"""Contract: API prefixes, version / status / ok / snapshot-status endpoints, authentication,
tenants, content types, error bodies and maintenance mode, version by version.

References: facts = docs/manager-behaviour.md, observed-7.0 = docs/manager-7.0-observed.md.
"""
import pytest

from cloudify_rest_client import CloudifyClient
from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import is_json, raw
from tests.simulator.rules import VERSIONS

# behaviour §2.1 table "versions proxied by the stock nginx" (written out, not read from rules.py)
EXPOSED = {
    '3.4.2': {'v1', 'v2', 'v2.1'},
    '4.0.0': {'v1', 'v2', 'v2.1', 'v3'},
    '4.0.1': {'v1', 'v2', 'v2.1', 'v3'},
}
ALL_PREFIXES = ('v1', 'v2', 'v2.1', 'v3', 'v3.1')


def exposed(version):
    return EXPOSED.get(version, set(ALL_PREFIXES))


@pytest.mark.parametrize('version', VERSIONS)
def test_prefixes_proxied_per_version(simulated_manager, version):
    """behaviour §2.1 table: only the proxied prefixes answer JSON; the others fall through to a
    non-JSON UI page ("Always check Content-Type: application/json when probing")."""
    mgr = simulated_manager(version)
    for prefix in ALL_PREFIXES:
        response = raw(mgr, 'GET', '/api/{0}/version'.format(prefix))
        if prefix in exposed(version):
            assert response.status_code == 200, (prefix, response.text)
            assert is_json(response)
        else:
            assert not is_json(response), prefix
            assert response.headers['Content-Type'].startswith('text/html')


@pytest.mark.parametrize('version,expected', [('3.4.2', False), ('4.0.0', True),
                                              ('4.2', True), ('7.0', True)])
def test_unversioned_version_route(simulated_manager, version, expected):
    """behaviour §2.1 '4.0+ /api/version' (absent on 3.4.2, behaviour §11)."""
    mgr = simulated_manager(version)
    response = raw(mgr, 'GET', '/api/version')
    assert is_json(response) is expected


def test_unknown_routes_are_html_404_on_70(simulated_manager):
    """observed-7.0: GET /api/v9/version and /api/v3.1/nosuch -> 404 HTML Werkzeug page."""
    mgr = simulated_manager('7.0')
    for path in ('/api/v9/version', '/api/v3.1/nosuch'):
        response = raw(mgr, 'GET', path)
        assert response.status_code == 404
        assert not is_json(response)


@pytest.mark.parametrize('version,fields', [
    ('3.4.2', {'version', 'build', 'date', 'commit'}),
    ('4.1', {'edition', 'version', 'build', 'date', 'commit'}),
    ('4.3', {'edition', 'version', 'build', 'date', 'commit'}),
    ('4.4', {'edition', 'version', 'build', 'date', 'commit', 'distribution',
             'distro_release'}),
    ('7.0', {'edition', 'version', 'build', 'date', 'commit', 'distribution',
             'distro_release'}),
])
def test_version_fields(simulated_manager, version, fields):
    """behaviour §2.2 table 'fields' column; observed-7.0 GET /version."""
    mgr = simulated_manager(version)
    prefix = mgr.rules.api_prefix
    body = raw(mgr, 'GET', prefix + '/version').json()
    assert set(body) == fields


@pytest.mark.parametrize('version,reported', [('3.4.2', '3.4.2'), ('4.0.0', '4.0.0'),
                                              ('4.1', '4.1.0'), ('4.2', '4.2.0'),
                                              ('7.0', '7.0.4')])
def test_version_strings(simulated_manager, version, reported):
    """behaviour §2.2 'VERSION files ... three parts: 4.0 reports 4.0.0'; 7.0 plays 7.0.4."""
    mgr = simulated_manager(version)
    assert raw(mgr, 'GET', mgr.rules.api_prefix + '/version').json()['version'] == reported


def test_community_calendar_versions(simulated_manager):
    """behaviour §2.2: community tags' VERSION files are 17.3.31 (~4.0) and 17.6.30 (~4.1)."""
    assert raw(simulated_manager('4.0.0', edition='community'), 'GET',
               '/api/version').json()['version'] == '17.3.31'
    assert raw(simulated_manager('4.1', edition='community'), 'GET',
               '/api/version').json()['version'] == '17.6.30'


@pytest.mark.parametrize('version', ['3.4.2', '4.0.0', '4.1', '4.2', '7.0'])
def test_version_endpoint_auth(simulated_manager, version):
    """behaviour §2.2 'auth' column: 3.4.2 none (even with security on); 4.0/4.1 auth but the
    tenant check is skipped; 4.2+ auth."""
    mgr = simulated_manager(version, security_enabled=True if version == '3.4.2' else None)
    path = mgr.rules.api_prefix + '/version'
    anonymous = raw(mgr, 'GET', path, auth=False, tenant=None)
    if version == '3.4.2':
        assert anonymous.status_code == 200
    else:
        assert anonymous.status_code == 401
        assert anonymous.json()['error_code'] == 'unauthorized_error'
    assert raw(mgr, 'GET', path, tenant=None).status_code == 200


@pytest.mark.parametrize('version', ['3.4.2', '4.2', '5.0.5'])
def test_old_status_shape(simulated_manager, version):
    """behaviour §2.3 'GET …/status 3.4.2 - 5.0.0' shape (v1-v3 paths keep it through 6.4)."""
    mgr = simulated_manager(version)
    prefix = '/api/v3' if version == '5.0.5' else mgr.rules.api_prefix
    body = raw(mgr, 'GET', prefix + '/status').json()
    assert body['status'] == 'running'
    units = {i['Id'] for s in body['services'] for i in s['instances']}
    assert 'cloudify-restservice.service' in units
    instance = body['services'][0]['instances'][0]
    assert set(instance) == {'Id', 'Description', 'LoadState', 'ActiveState', 'SubState',
                             'MainPID', 'state'}
    if version == '3.4.2':
        assert 'elasticsearch.service' in units
    if version == '4.2':
        assert {'cloudify-riemann.service', 'postgresql-9.5.service'} <= units


@pytest.mark.parametrize('version', ['5.0.5', '6.4', '7.0'])
def test_new_status_shape(simulated_manager, version):
    """behaviour §2.3 5.0.5+ at /api/v3.1/status; observed-7.0: ?summary=true -> services {}."""
    mgr = simulated_manager(version)
    body = raw(mgr, 'GET', '/api/v3.1/status').json()
    assert body['status'] == 'OK'
    assert body['services']['Manager Rest-Service'] == {
        'status': 'Active', 'is_remote': False, 'extra_info': {}}
    assert raw(mgr, 'GET', '/api/v3.1/status?summary=true').json()['services'] == {}


def test_v1_status_gone_in_70(simulated_manager):
    """behaviour §2.3: v1 status is gone in 7.0.0 (kept through 6.4)."""
    assert raw(simulated_manager('6.4'), 'GET', '/api/v3/status').json()['status'] == 'running'
    response = raw(simulated_manager('7.0'), 'GET', '/api/v3/status')
    assert response.status_code == 404 and not is_json(response)


@pytest.mark.parametrize('version,present', [('5.2.7', False), ('6.0', True), ('7.0', True)])
def test_ok_endpoint(simulated_manager, version, present):
    """behaviour §2.3 '/api/v3.1/ok (6.0+) unauthenticated ... JSON string'."""
    response = raw(simulated_manager(version), 'GET', '/api/v3.1/ok', auth=False, tenant=None)
    if present:
        assert response.status_code == 200 and response.json() == 'OK'
    else:
        assert not is_json(response)


@pytest.mark.parametrize('version,present', [('4.6', False), ('5.0.5', True), ('7.0', True)])
def test_snapshot_status_endpoint(simulated_manager, version, present):
    """behaviour §2.3 '/api/v3.1/snapshot-status (5.0.5+) unauthenticated'."""
    response = raw(simulated_manager(version), 'GET', '/api/v3.1/snapshot-status', auth=False,
                   tenant=None)
    if present:
        assert response.json() == {'status': 'not-running'}
    else:
        assert not is_json(response)


def test_unauthorized_bodies(simulated_manager):
    """observed-7.0 table: no auth / wrong password / Bearer -> 401 unauthorized_error."""
    mgr = simulated_manager('7.0')
    none = raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False)
    assert none.status_code == 401
    assert none.json() == {'error_code': 'unauthorized_error', 'server_traceback': None,
                           'message': 'User unauthorized: No authentication info provided'}
    wrong = raw(mgr, 'GET', '/api/v3.1/blueprints', password='nope')
    assert wrong.status_code == 401
    assert 'Wrong credentials' in wrong.json()['message']
    bearer = raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False,
                 headers={'Authorization': 'Bearer abc'})
    assert bearer.status_code == 401


def test_tokens_70(simulated_manager):
    """observed-7.0 'POST /tokens' -> value ctok-…; header Authentication-Token."""
    mgr = simulated_manager('7.0')
    token = raw(mgr, 'POST', '/api/v3.1/tokens', json_body={'description': 'x'}).json()
    assert token['value'].startswith('ctok-') and token['description'] == 'x'
    ok = raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False,
             headers={'Authentication-Token': token['value']})
    assert ok.status_code == 200
    bad = raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False,
              headers={'Authentication-Token': token['value'] + 'x'})
    assert bad.status_code == 401


def test_tokens_4x_signed_with_secret_key(simulated_manager):
    """behaviour §2.4 'Tokens': 4.x tokens are signed with secret_key and stop working when it
    changes (here: rest-security.conf edited and cloudify-restservice restarted)."""
    mgr = simulated_manager('4.2')
    token = raw(mgr, 'GET', '/api/v3.1/tokens').json()['value']
    headers = {'Authentication-Token': token}
    assert raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False, headers=headers).ok
    mgr.merge_rest_security({'secret_key': 'another'})
    mgr.systemctl('stop', 'cloudify-restservice')
    mgr.systemctl('start', 'cloudify-restservice')
    assert raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False,
               headers=headers).status_code == 401


def test_342_security(simulated_manager):
    """behaviour §2.4 3.4.2: security off by default; when enabled Basic auth or a token from
    GET /api/v2.1/tokens; Tenant ignored."""
    open_mgr = simulated_manager('3.4.2')
    assert raw(open_mgr, 'GET', '/api/v2.1/blueprints', auth=False, tenant=None).ok
    secured = simulated_manager('3.4.2', security_enabled=True)
    assert raw(secured, 'GET', '/api/v2.1/blueprints', auth=False).status_code == 401
    token = raw(secured, 'GET', '/api/v2.1/tokens').json()['value']
    assert raw(secured, 'GET', '/api/v2.1/blueprints', auth=False, tenant='whatever',
               headers={'Authentication-Token': token}).ok


@pytest.mark.parametrize('version', ['4.0.0', '4.1'])
def test_tenant_mandatory_40_41(simulated_manager, version):
    """behaviour §2.4 '4.0 and 4.1': missing Tenant -> 401 'a Tenant name was not provided';
    unknown tenant -> 401; /version skips the tenant check."""
    mgr = simulated_manager(version)
    prefix = mgr.rules.api_prefix
    missing = raw(mgr, 'GET', prefix + '/blueprints', tenant=None)
    assert missing.status_code == 401
    assert 'a Tenant name was not provided' in missing.json()['message']
    assert raw(mgr, 'GET', prefix + '/blueprints', tenant='nosuch').status_code == 401
    assert raw(mgr, 'GET', prefix + '/status', tenant=None).status_code == 401
    assert raw(mgr, 'GET', prefix + '/version', tenant=None).status_code == 200


def test_tenant_optional_42(simulated_manager):
    """behaviour §2.4 '4.2+': invalid tenant -> 403; without the header only global resources
    are visible, so a default_tenant snapshot is a 404."""
    mgr = simulated_manager('4.2', data='demo')
    client = mgr.client()
    client.snapshots.create('snap1', True)
    invalid = raw(mgr, 'GET', '/api/v3.1/blueprints', tenant='nosuch')
    assert invalid.status_code == 403 and invalid.json()['error_code'] == 'forbidden_error'
    listed = raw(mgr, 'GET', '/api/v3.1/blueprints', tenant=None).json()
    assert listed['items'] == [] and listed['metadata']['pagination']['total'] == 0
    assert raw(mgr, 'GET', '/api/v3.1/snapshots/snap1', tenant=None).status_code == 404
    assert raw(mgr, 'GET', '/api/v3.1/snapshots/snap1').status_code == 200


def test_tenant_not_provided_70(simulated_manager):
    """observed-7.0: no Tenant header -> /version 200, /snapshots 403 'tenant not provided';
    Tenant: nosuch -> 403 invalid tenant name."""
    mgr = simulated_manager('7.0')
    assert raw(mgr, 'GET', '/api/v3.1/version', tenant=None).status_code == 200
    response = raw(mgr, 'GET', '/api/v3.1/snapshots', tenant=None)
    assert response.status_code == 403
    assert response.json()['message'] == 'Authorization failed: tenant not provided'
    response = raw(mgr, 'GET', '/api/v3.1/snapshots', tenant='nosuch')
    assert response.json()['message'] == ('Authorization failed: Tried to authenticate with '
                                          'invalid tenant name: nosuch')


@pytest.mark.parametrize('version', ['3.4.2', '4.2', '7.0'])
def test_json_content_type_exact(simulated_manager, version):
    """behaviour §2.5: Content-Type compared literally -> 415 unsupported_content_type_error
    (charset suffix included); observed-7.0: no Content-Type -> 415, body not JSON -> HTML 400."""
    mgr = simulated_manager(version)
    path = mgr.rules.api_prefix + '/snapshots/snap1'
    for ctype in ('application/json; charset=utf-8', None):
        headers = {'Content-Type': ctype} if ctype else {}
        response = raw(mgr, 'PUT', path, data='{}', headers=headers)
        assert response.status_code == 415
        body = response.json()
        assert body['error_code'] == 'unsupported_content_type_error'
        assert set(body) == {'message', 'error_code', 'server_traceback'}
    headers = {'Content-Type': 'application/json'}
    broken = raw(mgr, 'PUT', path, data='{not json', headers=headers)
    assert broken.status_code == 400 and not is_json(broken)


def test_pydantic_error_has_no_traceback_key(simulated_manager):
    """observed-7.0 '_size=abc' -> 400 bad_parameters_error without a server_traceback key."""
    response = raw(simulated_manager('7.0'), 'GET', '/api/v3.1/executions?_size=abc')
    assert response.status_code == 400
    assert set(response.json()) == {'message', 'error_code'}


@pytest.mark.parametrize('version,snapshots_allowed', [('4.2', False), ('4.4', False),
                                                       ('4.5.0', True), ('7.0', True)])
def test_maintenance_allow_list(simulated_manager, version, snapshots_allowed):
    """behaviour §2.5 maintenance table: 3.4.2-4.4 allow maintenance/status/version; 4.5+ add
    snapshots; 5.0.5+ add snapshot-status."""
    mgr = simulated_manager(version)
    prefix = mgr.rules.api_prefix
    state = raw(mgr, 'POST', prefix + '/maintenance/activate').json()
    assert state['status'] == 'activated'
    blocked = raw(mgr, 'GET', prefix + '/blueprints')
    assert blocked.status_code == 503
    assert blocked.json()['error_code'] == 'maintenance_mode_active'
    assert raw(mgr, 'GET', prefix + '/version').status_code == 200
    assert raw(mgr, 'GET', prefix + '/maintenance').json()['status'] == 'activated'
    create = raw(mgr, 'PUT', prefix + '/snapshots/snap1', json_body={})
    assert (create.status_code == 201) is snapshots_allowed
    if version == '7.0':
        assert raw(mgr, 'GET', '/api/v3.1/snapshot-status', auth=False).ok
    raw(mgr, 'POST', prefix + '/maintenance/deactivate')
    assert raw(mgr, 'GET', prefix + '/blueprints').status_code == 200


def test_maintenance_activating_while_executions_run(simulated_manager):
    """MGR@4.2 maintenance.py: 'activating' while executions run, then 'activated'."""
    mgr = simulated_manager('4.2', data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    ex = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    state = client.maintenance_mode.activate()
    assert state.status == 'activating'
    with pytest.raises(CloudifyClientError) as err:
        client.executions.start('web-1', 'heal', {'node_instance_id': 'y'})
    assert err.value.status_code == 503
    client.executions.cancel(ex.id, force=True)
    from tests.simulator.helpers import wait_until
    wait_until(lambda: client.maintenance_mode.status().status == 'activated', 10)


@pytest.mark.parametrize('version,api_version', [('3.4.2', 'v2.1'), ('4.0.1', 'v3'),
                                                 ('4.1', 'v3.1')])
def test_official_client_with_version_prefix(simulated_manager, version, api_version):
    """behaviour §2.1 'Default client API version' / §1 item 2: the official client works when
    built with the version's prefix (3.4.2 has no /api/version, behaviour §11)."""
    mgr = simulated_manager(version, data='demo')
    client = CloudifyClient(host='127.0.0.1', port=mgr.rest_port, api_version=api_version,
                            username=mgr.admin_username, password=mgr.admin_password,
                            tenant='default_tenant')
    assert {d.id for d in client.deployments.list()} >= {'hw-1', 'web-1'}
    execution = client.snapshots.create('snap1', True)
    assert execution.workflow_id == 'create_snapshot'
    if version == '3.4.2':
        with pytest.raises(CloudifyClientError) as err:
            client.manager.get_version()
        assert err.value.status_code == 404
    else:
        assert client.manager.get_version()['version'] == mgr.version
