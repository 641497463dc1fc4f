"""Unit tests of manager/client.py and manager/retry.py over a fake transport."""
import base64
import json
import os

import pytest
import requests

from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.manager import client as client_module
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.status import normalise_status
from cloudify_upgrade_plugin.manager.retry import RetryPolicy, call_with_retries
from cloudify_upgrade_plugin.manager.credentials import Credentials


def _ok_execution(call, fakes):
    return fakes.Response(200, {'id': 'exec-1', 'status': 'pending'})


# -- restore / create bodies ----------------------------------------------------------------

@pytest.mark.parametrize('version, prefix, expected_body', [
    ('4.0.1', '/api/v3', {'force': False, 'recreate_deployments_envs': True,
                          'tenant_name': None, 'timeout': 300}),
    ('4.2', '/api/v3.1', {'force': False, 'recreate_deployments_envs': True,
                          'restore_certificates': False, 'no_reboot': False,
                          'ignore_plugin_failure': False, 'timeout': 300}),
    ('7.0.4', '/api/v3.1', {'force': False, 'restore_certificates': False,
                            'no_reboot': False, 'timeout': 300}),
])
def test_restore_posts_the_body_for_the_target(make_manager, fakes, version, prefix,
                                               expected_body):
    manager, session = make_manager(version, lambda call: fakes.Response(
        200, {'id': 'exec-42', 'status': 'pending'}))
    assert manager.restore_snapshot('upg_1') == 'exec-42'
    call, = session.calls
    assert call.method == 'POST'
    assert call.path == prefix + '/snapshots/upg_1/restore'
    assert call.body == expected_body
    assert call.headers['Content-type'] == 'application/json'
    assert call.headers['Tenant'] == 'default_tenant'
    user, password = base64.b64decode(call.headers['Authorization'][6:]).decode().split(':')
    assert (user, password) == ('admin', 's3cret-pw')


def test_restore_with_certificates_on_the_same_address(make_manager, fakes):
    manager, session = make_manager('4.3', lambda call: fakes.Response(200, {'id': 'e'}))
    manager.restore_snapshot('upg_1', restore_certificates=True, force=True, no_reboot=True)
    body = session.calls[0].body
    assert body['restore_certificates'] is True and body['force'] is True
    assert body['no_reboot'] is True
    assert '"force": true' in session.calls[0].raw_body


def test_restore_is_never_retried(make_manager, fakes, sleeps):
    manager, session = make_manager('4.2', lambda call: fakes.error(503, 'unavailable'))
    with pytest.raises(UpgradeError) as info:
        manager.restore_snapshot('upg_1')
    assert len(session.calls) == 1 and sleeps == []
    assert info.value.error_id == 'manager-request-failed'
    assert info.value.details['status_code'] == 503


def test_create_snapshot_body_and_id_check(make_manager, fakes):
    manager, session = make_manager('4.5.1', lambda call: fakes.Response(
        201, {'id': 'exec-7', 'workflow_id': 'create_snapshot'}))
    assert manager.create_snapshot('upg_1') == 'exec-7'
    call, = session.calls
    assert call.method == 'PUT' and call.path == '/api/v3.1/snapshots/upg_1'
    assert call.body == {'include_credentials': True, 'include_metrics': False,
                         'include_logs': True, 'include_events': True, 'queue': False}
    with pytest.raises(InputError) as info:
        manager.create_snapshot('1bad id')
    assert info.value.error_id == 'bad-snapshot-id'
    assert len(session.calls) == 1


def test_3x_manager_uses_v21_and_no_auth_when_none_given(make_manager, fakes):
    manager, session = make_manager('3.4.2', lambda call: fakes.Response(
        201, {'id': 'exec-3'}), username=None, password=None)
    manager.create_snapshot('upg_1')
    call, = session.calls
    assert call.path == '/api/v2.1/snapshots/upg_1'
    assert call.body == {'include_credentials': True, 'include_metrics': False}
    assert 'Authorization' not in call.headers
    assert manager.list_tenants() == []


# -- pagination -------------------------------------------------------------------------

def paged_server(fakes, total, strict_max=1000):
    """Lists like a 4.2 server: >1000 rows is an error; _offset without _size = empty."""
    items = [{'id': 'e{0:05d}'.format(i)} for i in range(total)]

    def handler(call):
        size = call.q('_size')
        offset = int(call.q('_offset', 0))
        if size is None:
            if call.q('_offset') is not None:
                page = []
            elif total > strict_max:
                return fakes.error(400, 'illegal_action_error',
                                   'Response size ({0}) bigger than max allowed'.format(total))
            else:
                page = items
            size = 0
        else:
            size = int(size)
            if size > strict_max:
                return fakes.error(400, 'illegal_action_error', 'too big')
            page = items[offset:offset + size]
        return fakes.Response(200, {'items': page, 'metadata': {'pagination': {
            'total': total, 'size': size, 'offset': offset}}})
    return handler


def test_list_all_pages_with_size_and_offset(make_manager, fakes):
    manager, session = make_manager('4.2', paged_server(fakes, 2500))
    ids = [item['id'] for item in manager.list_all('executions', all_tenants=True)]
    assert len(ids) == 2500 and len(set(ids)) == 2500
    assert len(session.calls) == 3
    for call in session.calls:
        assert call.path == '/api/v3.1/executions'
        assert 0 < int(call.q('_size')) <= 1000
        assert call.q('_offset') is not None
        assert call.q('_include_system_workflows') == 'true'
        assert call.q('_all_tenants') == 'true'
    assert [int(c.q('_offset')) for c in session.calls] == [0, 1000, 2000]


def test_list_all_caps_the_page_size_and_passes_filters(make_manager, fakes):
    manager, session = make_manager('4.2', paged_server(fakes, 30))
    items = list(manager.list_all('deployments', page_size=5000, include=['id', 'tenant_name'],
                                  sort='-created_at', blueprint_id=['a', 'b'],
                                  tenant='t1', is_system=False))
    assert len(items) == 30
    call, = session.calls
    assert call.q('_size') == '1000'
    assert call.q('_include') == 'id,tenant_name'
    assert call.q('_sort') == '-created_at'
    assert call.query['blueprint_id'] == ['a', 'b']
    assert call.q('is_system') == 'false'
    assert call.headers['Tenant'] == 't1'
    assert '_include_system_workflows' not in call.query
    assert '_all_tenants' not in call.query


def test_list_all_system_workflows_can_be_left_out(make_manager, fakes):
    manager, session = make_manager('4.2', paged_server(fakes, 3))
    list(manager.list_all('executions', include_system_workflows=False))
    assert '_include_system_workflows' not in session.calls[0].query


def test_list_all_stops_on_an_empty_page_even_if_total_says_more(make_manager, fakes):
    def handler(call):
        offset = int(call.q('_offset'))
        page = [{'id': 'x'}] * 10 if offset == 0 else []
        return fakes.Response(200, {'items': page, 'metadata': {'pagination': {
            'total': 50, 'size': 10, 'offset': offset}}})
    manager, session = make_manager('4.2', handler)
    assert len(list(manager.list_all('blueprints'))) == 10
    assert len(session.calls) == 2


def test_list_all_follows_a_server_that_returns_smaller_pages(make_manager, fakes):
    items = [{'id': i} for i in range(25)]

    def handler(call):
        offset = int(call.q('_offset'))
        page = items[offset:offset + 10]          # ignores _size, like a capped server
        return fakes.Response(200, {'items': page, 'metadata': {'pagination': {
            'total': 25, 'size': 10, 'offset': offset}}})
    manager, session = make_manager('4.2', handler)
    assert [i['id'] for i in manager.list_all('blueprints')] == list(range(25))
    assert [int(c.q('_offset')) for c in session.calls] == [0, 10, 20]


def test_list_all_per_tenant(make_manager, fakes):
    def handler(call):
        if call.path.endswith('/tenants'):
            return fakes.Response(200, {'items': [{'name': 'default_tenant'}, {'name': 't2'}],
                                        'metadata': {'pagination': {'total': 2}}})
        tenant = call.headers['Tenant']
        return fakes.Response(200, {'items': [{'id': 'd-' + tenant}],
                                    'metadata': {'pagination': {'total': 1}}})
    manager, session = make_manager('4.0.1', handler)
    items = list(manager.list_all('deployments', all_tenants=True, per_tenant=True))
    assert items == [{'id': 'd-default_tenant', 'tenant_name': 'default_tenant'},
                     {'id': 'd-t2', 'tenant_name': 't2'}]
    assert all(c.path.startswith('/api/v3/') for c in session.calls)
    assert all('_all_tenants' not in c.query for c in session.calls)


def test_list_tenants_by_edition(make_manager, fakes):
    manager, session = make_manager('5.0.5', lambda call: fakes.error(500, 'x'),
                                    edition='community')
    assert manager.list_tenants() == ['default_tenant']
    assert session.calls == []


# -- status ---------------------------------------------------------------------------

def test_status_old_and_new_shapes():
    old = normalise_status({'status': 'running', 'services': [
        {'display_name': 'Riemann', 'instances': [{'ActiveState': 'active'}]},
        {'display_name': 'RabbitMQ', 'instances': [{'ActiveState': 'failed'}]}]})
    assert old['shape'] == 'units' and old['healthy'] is False
    assert old['services'] == {'Riemann': 'Active', 'RabbitMQ': 'failed'}
    healthy_old = normalise_status({'status': 'running', 'services': [
        {'display_name': 'Riemann', 'instances': [{'ActiveState': 'active'}]}]})
    assert healthy_old['healthy'] is True
    new = normalise_status({'status': 'Fail', 'services': {
        'Webserver': {'status': 'Inactive', 'is_remote': False, 'extra_info': {}},
        'PostgreSQL': {'status': 'Active', 'is_remote': True}}})
    assert new['shape'] == 'services' and new['healthy'] is False
    assert new['services'] == {'Webserver': 'Inactive', 'PostgreSQL': 'Active'}
    assert normalise_status({'status': 'OK', 'services': {}})['healthy'] is True


def test_status_goes_through_the_bound_prefix(make_manager, fakes):
    manager, session = make_manager('4.0.1', lambda call: fakes.Response(
        200, {'status': 'running', 'services': []}))
    manager.status()
    assert session.calls[0].path == '/api/v3/status'


# -- retries and errors ---------------------------------------------------------------------

def test_get_is_retried_on_5xx_and_connection_errors(make_manager, fakes, sleeps):
    answers = [fakes.error(503, 'maintenance_mode_active'), fakes.refused(),
               fakes.Response(502, content_type='text/html', text='<html>bad gw</html>'),
               fakes.Response(200, {'id': 'e1', 'status': 'started'})]
    manager, session = make_manager('4.2', lambda call: answers.pop(0))
    assert manager.get_execution('e1')['status'] == 'started'
    assert len(session.calls) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_give_up_after_the_policy(make_manager, fakes, sleeps):
    manager, session = make_manager('4.2', lambda call: fakes.refused(call.url))
    with pytest.raises(UpgradeError) as info:
        manager.version_data()
    assert info.value.error_id == 'manager-unreachable'
    assert len(session.calls) == 4
    assert 'http://10.0.0.5:80' in info.value.message


@pytest.mark.parametrize('status, code, error_id', [
    (401, 'unauthorized_error', 'manager-auth-failed'),
    (403, 'forbidden_error', 'manager-forbidden'),
    (404, 'not_found_error', 'not-found'),
    (400, 'bad_parameters_error', 'manager-request-failed'),
])
def test_client_errors_are_translated_and_not_retried(make_manager, fakes, sleeps, status,
                                                      code, error_id):
    manager, session = make_manager('7.0.4', lambda call: fakes.error(status, code, 'nope'))
    with pytest.raises(UpgradeError) as info:
        manager.get_snapshot('upg_1')
    assert info.value.error_id == error_id
    assert info.value.details['status_code'] == status
    assert 'manager http://10.0.0.5:80' in info.value.message
    assert len(session.calls) == 1 and sleeps == []
    if status == 401:
        assert any('CLOUDIFY_USERNAME' in hint for hint in info.value.hints)


def test_non_json_success_is_a_clear_error(make_manager, fakes):
    manager, _ = make_manager('4.2', lambda call: fakes.Response(
        200, content_type='text/html', text='<html>UI</html>'))
    with pytest.raises(UpgradeError) as info:
        manager.version_data()
    assert info.value.error_id == 'manager-bad-answer'


def test_call_with_retries_only_retries_idempotent_calls():
    calls = []

    def flaky():
        calls.append(1)
        raise requests.exceptions.ConnectionError('reset')
    policy = RetryPolicy(attempts=3, sleep=lambda s: None)
    with pytest.raises(requests.exceptions.ConnectionError):
        call_with_retries(flaky, idempotent=False, policy=policy)
    assert len(calls) == 1
    with pytest.raises(requests.exceptions.ConnectionError):
        call_with_retries(flaky, idempotent=True, policy=policy)
    assert len(calls) == 4


def test_backoff_is_capped():
    policy = RetryPolicy(base_delay=0.5, factor=2, max_delay=3)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3, 3]


# -- tenants, credentials, secrets ---------------------------------------------------------

def test_for_tenant_changes_only_the_tenant_header(make_manager, fakes):
    manager, session = make_manager('4.2', lambda call: fakes.Response(200, {'id': 's'}))
    other = manager.for_tenant('t2')
    other.get_snapshot('s')
    manager.get_snapshot('s')
    assert [c.headers['Tenant'] for c in session.calls] == ['t2', 'default_tenant']
    assert other.info is manager.info
    assert session.calls[0].headers['Authorization'] == session.calls[1].headers[
        'Authorization']


def test_with_credentials(make_manager, fakes):
    manager, session = make_manager('4.2', lambda call: fakes.Response(200, {'id': 's'}))
    manager.with_credentials(Credentials('admin', 'old-admin-pw')).get_snapshot('s')
    header = session.calls[0].headers['Authorization']
    assert base64.b64decode(header[6:]).decode() == 'admin:old-admin-pw'


def test_password_is_registered_and_never_shown(make_manager, fakes):
    from cloudify_upgrade_plugin.engine import redact
    manager, _ = make_manager('4.2', lambda call: fakes.Response(200, {}),
                              password='pw-to-hide-123')
    try:
        assert 'pw-to-hide-123' in redact.registered_secrets()
        encoded = base64.b64encode(b'admin:pw-to-hide-123').decode()
        assert encoded in redact.registered_secrets()
    finally:
        redact.clear_registered_secrets()
    shown = repr(manager) + json.dumps(manager.describe()) + manager.label
    assert 'pw-to-hide-123' not in shown


# -- profiles ------------------------------------------------------------------------------

def _write_profile(workdir, name, **values):
    directory = os.path.join(str(workdir), '.cloudify', 'profiles', name)
    os.makedirs(directory, mode=0o700)
    context = {'name': name, 'manager_ip': '10.0.0.9', 'rest_port': 80,
               'rest_protocol': 'http', 'manager_username': 'admin',
               'manager_password': 'profile-pw', 'manager_tenant': None}
    context.update(values)
    with open(os.path.join(directory, 'context.json'), 'w') as handle:
        json.dump(context, handle)
    return directory


@pytest.fixture
def discovered(fakes):
    seen = []

    def fake_discover(host, port, protocol, **kwargs):
        seen.append(dict(kwargs, host=host, port=port, protocol=protocol))
        return fakes.info_for('4.2', protocol=protocol, port=port, host=host)
    fake_discover.seen = seen
    return fake_discover


def test_from_profile_reads_the_named_profile(cfy_workdir, monkeypatch, discovered):
    monkeypatch.delenv('LOCAL_REST_CERT_FILE', raising=False)
    directory = _write_profile(cfy_workdir, 'old', rest_protocol='https', rest_port=443)
    with open(os.path.join(directory, 'public_rest_cert.crt'), 'w') as handle:
        handle.write('CERT')
    manager = Manager.from_profile('old', discover_fn=discovered)
    seen, = discovered.seen
    assert (seen['host'], seen['port'], seen['protocol']) == ('10.0.0.9', 443, 'https')
    assert seen['username'] == 'admin' and seen['password'] == 'profile-pw'
    assert seen['cert'] == os.path.join(directory, 'public_rest_cert.crt')
    assert seen['trust_all'] is False
    assert manager.profile_name == 'old' and manager.tenant == 'default_tenant'
    assert manager.profile.manager_ip == '10.0.0.9'
    assert manager.client._client.headers['Tenant'] == 'default_tenant'
    assert manager.client._client.url == 'https://10.0.0.9:443/api/v3.1'


def test_from_profile_uses_the_active_profile(cfy_workdir, discovered):
    _write_profile(cfy_workdir, 'new', manager_tenant='t9')
    with open(os.path.join(str(cfy_workdir), '.cloudify', 'active.profile'), 'w') as handle:
        handle.write('new')
    manager = Manager.from_profile(discover_fn=discovered)
    assert manager.profile_name == 'new' and manager.tenant == 't9'


def test_from_profile_unknown_profile_lists_the_existing_ones(cfy_workdir, discovered):
    _write_profile(cfy_workdir, 'old')
    _write_profile(cfy_workdir, 'new')
    with pytest.raises(InputError) as info:
        Manager.from_profile('nosuch', discover_fn=discovered)
    assert info.value.error_id == 'unknown-profile'
    assert 'new, old' in info.value.message
    assert discovered.seen == []


def test_from_profile_without_any_profile(cfy_workdir, discovered):
    with pytest.raises(InputError) as info:
        Manager.from_profile(discover_fn=discovered)
    assert info.value.error_id == 'no-active-profile'


def test_credentials_from_env_when_the_profile_has_none(cfy_workdir, monkeypatch,
                                                        discovered):
    _write_profile(cfy_workdir, 'old', manager_username=None, manager_password=None)
    monkeypatch.setenv('CLOUDIFY_USERNAME', 'envuser')
    monkeypatch.setenv('CLOUDIFY_PASSWORD', 'envpw')
    Manager.from_profile('old', discover_fn=discovered)
    assert discovered.seen[0]['username'] == 'envuser'
    assert discovered.seen[0]['password'] == 'envpw'


def test_credentials_in_profile_and_env_conflict(cfy_workdir, monkeypatch, discovered):
    _write_profile(cfy_workdir, 'old')
    monkeypatch.setenv('CLOUDIFY_PASSWORD', 'envpw')
    with pytest.raises(InputError) as info:
        Manager.from_profile('old', discover_fn=discovered)
    assert info.value.error_id == 'profile-settings-conflict'
    assert 'envpw' not in info.value.message and 'profile-pw' not in info.value.message


def test_module_exports_are_lazy_and_complete():
    import cloudify_upgrade_plugin.manager as package
    for name in package.__all__:
        assert getattr(package, name) is not None
    assert package.Manager is client_module.Manager
    with pytest.raises(AttributeError):
        package.nothing_here
