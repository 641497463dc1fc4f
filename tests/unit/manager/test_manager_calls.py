"""The Manager methods the runbooks call instead of building URLs, over a fake transport."""
import base64
import datetime

import pytest

from cloudify_upgrade_plugin.engine import redact
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager.connection import Connection
from cloudify_upgrade_plugin.manager.credentials import Credentials

UTC = datetime.timezone.utc


def _ok(fakes, body=None, **kw):
    return fakes.Response(200, body if body is not None else {}, **kw)


def test_credentials_hide_their_secrets_and_compare_without_the_label():
    first = Credentials('admin', 'pw-1', label='target')
    assert 'pw-1' not in repr(first) and 'admin' in repr(first)
    assert first == Credentials('admin', 'pw-1', label='source')
    assert first != Credentials('admin', 'pw-2')
    assert first.basic and not Credentials(token='tok').basic
    assert 'ctok-xyz' not in repr(Credentials(token='ctok-xyz'))


def test_with_credentials_keeps_the_label_and_switches_the_login(make_manager, fakes):
    manager, session = make_manager('4.2', lambda call: _ok(fakes, {'id': 's'}))
    other = manager.with_credentials(Credentials('admin', 'other-pw', label='source'))
    assert other.credentials.label == 'source' and other.username == 'admin'
    assert manager.credentials.password == 's3cret-pw'
    other.get_snapshot('s')
    header = session.calls[-1].headers['Authorization']
    assert base64.b64decode(header[6:]).decode() == 'admin:other-pw'


def test_maintenance_state_and_activation(make_manager, fakes):
    answers = {'GET': fakes.Response(200, {'status': 'activating',
                                           'remaining_executions': ['e1']})}

    def handler(call):
        return answers.get(call.method) or fakes.Response(200, {'status': 'activated'})
    manager, session = make_manager('4.5', handler)
    assert manager.maintenance_state() == 'activating'
    manager.activate_maintenance()
    assert [(c.method, c.path) for c in session.calls] == [
        ('GET', '/api/v3.1/maintenance'), ('POST', '/api/v3.1/maintenance/activate')]


def test_maintenance_state_is_none_where_the_manager_cannot_tell(make_manager, fakes):
    manager, _ = make_manager('3.4.2', lambda call: fakes.html(404))
    assert manager.maintenance_state() is None


def test_user_token_licence_and_context_calls(make_manager, fakes):
    def handler(call):
        if call.path.endswith('/tokens'):
            return fakes.Response(200, {'value': 'tok-123-secret'})
        if call.path.endswith('/user'):
            return fakes.Response(200, {'username': 'admin', 'role': 'sys_admin'})
        return _ok(fakes, {'context': {}})
    manager, session = make_manager('5.0.5', handler)
    try:
        assert manager.current_user()['role'] == 'sys_admin'
        assert manager.create_token() == 'tok-123-secret'
        assert 'tok-123-secret' in redact.registered_secrets()
        manager.provider_context()
        manager.licence()
        manager.set_password('bob', 'bobs-new-pw')
        assert 'bobs-new-pw' in redact.registered_secrets()
    finally:
        redact.clear_registered_secrets()
    assert [(c.method, c.path) for c in session.calls] == [
        ('GET', '/api/v3.1/user'), ('GET', '/api/v3.1/tokens'),
        ('GET', '/api/v3.1/provider/context'), ('GET', '/api/v3.1/license'),
        ('POST', '/api/v3.1/users/bob')]
    assert session.calls[-1].body == {'password': 'bobs-new-pw'}


def test_7x_creates_a_token_with_post_and_uses_it(make_manager, fakes):
    manager, session = make_manager('7.0.4', lambda call: fakes.Response(
        201, {'value': 'ctok-abc'}) if call.method == 'POST' else _ok(fakes, {'id': 's'}))
    try:
        token_manager = manager.with_token(manager.create_token())
        token_manager.get_snapshot('s')
    finally:
        redact.clear_registered_secrets()
    assert (session.calls[0].method, session.calls[0].body) == (
        'POST', {'description': 'cfy upgrade'})
    assert session.calls[1].headers['Authentication-Token'] == 'ctok-abc'
    assert 'Authorization' not in session.calls[1].headers


def test_accepts_credentials(make_manager, fakes):
    manager, _ = make_manager('4.2', lambda call: _ok(fakes, {'version': '4.2'}))
    assert manager.accepts_credentials() is True
    refused, _ = make_manager('4.2', lambda call: fakes.error(401, 'unauthorized_error'))
    assert refused.accepts_credentials() is False
    broken, _ = make_manager('4.2', lambda call: fakes.error(400, 'bad_request_error'))
    with pytest.raises(UpgradeError):
        broken.accepts_credentials()


def test_start_execution_posts_the_workflow(make_manager, fakes):
    manager, session = make_manager('6.4', lambda call: fakes.Response(201, {'id': 'ex9'}))
    assert manager.for_tenant('t1').start_execution('dep1', 'install_new_agents')['id'] == \
        'ex9'
    call, = session.calls
    assert (call.method, call.path, call.headers['Tenant']) == (
        'POST', '/api/v3.1/executions', 't1')
    assert call.body == {'deployment_id': 'dep1', 'workflow_id': 'install_new_agents',
                         'parameters': {}, 'allow_custom_parameters': False,
                         'force': False}


def test_list_page_sends_the_tenant_and_the_paging(make_manager, fakes):
    manager, session = make_manager('4.1', lambda call: _ok(fakes, {'items': []}))
    manager.list_page('executions', {'_size': 10, '_offset': 0}, 't3')
    call, = session.calls
    assert (call.path, call.headers['Tenant'], call.q('_size')) == (
        '/api/v3.1/executions', 't3', '10')


def test_health_in_one_shape(make_manager, fakes):
    manager, _ = make_manager('6.4', lambda call: _ok(fakes, {
        'status': 'Degraded', 'services': {'a': {'status': 'Active'},
                                           'b': {'status': 'Inactive'}}}))
    assert manager.health() == ('degraded', ['b'])


def test_rest_answers_is_unauthenticated_and_json_only(make_manager, fakes):
    answers = [fakes.error(401, 'unauthorized_error'), fakes.html(200),
               fakes.Response(502, content_type='text/html', text='<html>x</html>'),
               fakes.refused()]
    manager, session = make_manager('4.4', lambda call: answers.pop(0))
    assert [manager.rest_answers()[0] for _ in range(4)] == [True, False, False, False]
    assert all('Authorization' not in c.headers for c in session.calls)
    assert all(c.path == '/api/v3.1/version' for c in session.calls)


def test_server_time_from_the_date_header(make_manager, fakes):
    manager, _ = make_manager('4.4', lambda call: fakes.Response(
        401, {}, headers={'Date': 'Wed, 01 May 2024 12:00:05 GMT'}))
    assert manager.server_time() == datetime.datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    silent, _ = make_manager('4.4', lambda call: fakes.refused())
    assert silent.server_time() is None


def test_connection_carries_prefix_headers_and_verification(make_manager, fakes):
    manager, _ = make_manager('4.0.1', lambda call: _ok(fakes), tenant='t2',
                              cert='/path/ca.pem')
    connection = manager.connection()
    assert isinstance(connection, Connection)
    assert connection.url('/snapshots/s/archive') == \
        'http://10.0.0.5:80/api/v3/snapshots/s/archive'
    assert connection.headers['Tenant'] == 't2'
    assert connection.headers['Authorization'].startswith('Basic ')
    assert connection.verify == '/path/ca.pem'
    assert 'Authorization' not in repr(connection) and 's3cret' not in repr(connection)
    assert manager.for_tenant('x').connection().headers['Tenant'] == 'x'


def test_ids_are_one_quoted_path_segment(make_manager, fakes):
    """Issue 17 item 7: an id never adds a path, a query or a line to a request."""
    from cloudify_upgrade_plugin.manager.client import segment
    assert segment('a/b?c#d\n') == 'a%2Fb%3Fc%23d%0A'
    manager, session = make_manager('7.0', lambda call: _ok(fakes, {'id': 'e'}))
    manager.get_execution('ex/../1\n')
    manager.set_password('bob/../admin', 'pw-x')
    assert [c.url.split('/api/v3.1', 1)[1] for c in session.calls] == [
        '/executions/ex%2F..%2F1%0A', '/users/bob%2F..%2Fadmin']
    with pytest.raises(UpgradeError) as info:
        manager.create_snapshot('upgrade1\n')
    assert info.value.error_id == 'bad-snapshot-id' and len(session.calls) == 2
    redact.clear_registered_secrets()


@pytest.mark.parametrize('body, why', [
    ({'items': 3}, '"items" that is not a list of objects'),
    ({'items': ['a']}, '"items" that is not a list of objects'),
    ({'items': [], 'metadata': {'pagination': {'total': '3'}}}, 'a "total"'),
    ([{'name': 'x'}], 'a JSON list instead of an object')])
def test_answers_of_the_wrong_shape_are_manager_bad_answer(make_manager, fakes, body, why):
    """Issue 17 item 8: never a TypeError later on."""
    manager, _ = make_manager('5.0.5', lambda call: fakes.Response(200, body))
    with pytest.raises(UpgradeError) as info:
        list(manager.list_all('deployments'))
    assert info.value.error_id == 'manager-bad-answer' and why in info.value.message
    assert manager.label in info.value.message
    redact.clear_registered_secrets()


def test_ids_in_answers_must_be_strings(make_manager, fakes):
    manager, _ = make_manager('7.0', lambda call: fakes.Response(201, {'id': 17}))
    with pytest.raises(UpgradeError) as info:
        manager.create_snapshot('snap1')
    assert info.value.error_id == 'manager-bad-answer' and '"id" a int' in info.value.message
    redact.clear_registered_secrets()


def test_7_0_tokens_expire_and_are_revoked(make_manager, fakes):
    """Issue 17 item 1: POST /tokens with an expiration date; DELETE /tokens/<id>."""
    def handler(call):
        if call.method == 'POST':
            return fakes.Response(200, {'id': 'Ab12', 'value': 'ctok-Ab12-S3cretS3cret'})
        if call.method == 'GET':
            return fakes.Response(200, {'items': [
                {'id': 'Old1', 'description': 'cfy upgrade u1 restore-users'},
                {'id': 'Else', 'description': 'somebody else'}],
                'metadata': {'pagination': {'total': 2}}})
        return fakes.Response(204, None)
    manager, session = make_manager('7.0', handler)
    try:
        token = manager.create_token('cfy upgrade u1 restore-users', lifetime=3900)
        assert token == 'ctok-Ab12-S3cretS3cret' and token in redact.registered_secrets()
        assert session.calls[0].body == {'description': 'cfy upgrade u1 restore-users',
                                         'expiration_date': '+66min'}
        assert manager.revoke_token(token) is True
        assert manager.revoke_tokens('cfy upgrade u1 restore-users') == 1
    finally:
        redact.clear_registered_secrets()
    assert [(c.method, c.path) for c in session.calls[1:]] == [
        ('DELETE', '/api/v3.1/tokens/Ab12'), ('GET', '/api/v3.1/tokens'),
        ('DELETE', '/api/v3.1/tokens/Old1')]


def test_4x_tokens_cannot_be_revoked(make_manager, fakes):
    manager, session = make_manager('4.6', lambda call: fakes.Response(
        200, {'value': 'MQ.sig', 'role': 'sys_admin'}))
    try:
        assert manager.create_token('x', lifetime=60) == 'MQ.sig'
        assert manager.revoke_token('MQ.sig') is False
        assert manager.revoke_tokens('x') == 0
    finally:
        redact.clear_registered_secrets()
    assert [(c.method, c.path) for c in session.calls] == [('GET', '/api/v3.1/tokens')]
