"""Contract: the config table and LDAP (5.0.5+ sources), and what a legacy restore does with
them (the target's config table is kept).

References: behaviour §12.3 (config is dumped before and reloaded after the restore: LDAP
settings are not restored); Cloudify source: cloudify-manager@7.0.4
rest-service/migrations/versions/423a1643f365_4_6_to_5_0.py,
rest/resources_v3_1/manager_config.py (ManagerConfig),
rest/resources_v3/manager.py (LdapAuthentication), cloudify-manager@5.0.5 / @5.2.0 (the
older validation), cloudify-common@7.0.5 cloudify_rest_client/ldap.py (what `cfy ldap set`
sends).
"""
import pytest

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_until
from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload

PASSWORD = 'Same-Admin-Pw1'
LDAP = dict(ldap_server='ldap://192.0.2.10:389', ldap_domain='example.com',
            ldap_username='cn=binder', ldap_password='bind-Secret-1',
            ldap_dn_extra='ou=people')


def _config(client):
    return {item['name']: item for item in client.manager.get_config(scope='rest')}


def _set_and_wait(mgr, **kwargs):
    result = mgr.client().ldap.set(**kwargs)
    # the REST service restarts after the change (restart_restservice / set_restart_task)
    wait_until(lambda: raw(mgr, 'GET', '/api/v3.1/ldap').status_code == 200, 10,
               what='the REST service is back')
    return result


@pytest.mark.parametrize('version,keys,absent', [
    ('5.0.5', ('ldap_server', 'ldap_ca_path', 'ldap_nested_levels', 'ldap_timeout'),
     ('ldap_base_dn', 'admin_only')),
    ('5.2.7', ('ldap_base_dn', 'ldap_group_dn', 'ldap_attribute_uid'), ('ldap_ca_path',)),
    ('7.0', ('ldap_bind_format', 'failed_logins_before_account_lock', 'account_lock_period'),
     ()),
])
def test_config_rows_per_version(simulated_manager, version, keys, absent):
    """GET /config?scope=rest: {"metadata": {}, "items": [{name, value, scope, schema,
    is_editable, updated_at, ...}]}; admin_only from 6.4 (migration 272e61bf5f4a)."""
    mgr = simulated_manager(version)
    body = raw(mgr, 'GET', '/api/v3.1/config?scope=rest').json()
    assert body['metadata'] == {} and 'authorization' not in body
    names = {item['name'] for item in body['items']}
    assert set(keys) <= names
    for key in absent:
        assert key not in names and not any(key in item for item in body['items'])
    assert all(item['scope'] == 'rest' for item in body['items'])
    ldap_server = [i for i in body['items'] if i['name'] == 'ldap_server'][0]
    assert ldap_server['value'] is None and ldap_server['schema'] == {'type': 'string'}
    assert mgr.client().ldap.get_status() == 'disabled'


def test_no_config_table_before_50(simulated_manager):
    """The config table comes with 5.0 (migration 423a1643f365_4_6_to_5_0)."""
    assert raw(simulated_manager('4.6'), 'GET', '/api/v3.1/config/ldap_server').status_code \
        == 404


def test_set_ldap_70(simulated_manager):
    """`cfy ldap set` (client.ldap.set -> POST /ldap): the config rows take the values,
    GET /ldap says enabled, the answer has no password; admins read the stored password,
    other users '********' (admin_only, 6.4+)."""
    mgr = simulated_manager('7.0', data='demo')
    answer = _set_and_wait(mgr, **LDAP)
    assert 'ldap_password' not in answer and answer['ldap_server'] == LDAP['ldap_server']
    assert mgr.client().ldap.get_status() == 'enabled'
    rows = _config(mgr.client())
    assert rows['ldap_server']['value'] == LDAP['ldap_server']
    assert rows['ldap_password']['value'] == LDAP['ldap_password']
    assert rows['ldap_password']['admin_only'] is True
    assert rows['ldap_nested_levels']['value'] == 1
    alice = mgr.client(username='alice', password=mgr.user_passwords['alice'])
    assert _config(alice)['ldap_password']['value'] == '********'
    one = mgr.client().manager.get_config(name='ldap_domain', scope='rest')
    assert one['value'] == 'example.com'
    assert 'cloudify-restservice stopped' in mgr.events()


@pytest.mark.parametrize('body,message', [
    (dict(ldap_server='ldaps://192.0.2.10:636', ldap_domain='d'),
     'A CA certificate must be provided to use ldaps.'),
    (dict(ldap_server='ldap://192.0.2.10:389', ldap_domain='d', ldap_ca_cert='x'),
     'CA certificate cannot be provided when not using ldaps.'),
    (dict(ldap_server='192.0.2.10', ldap_domain='d'),
     'ldap_server must specify protocol and should specify port'),
    (dict(ldap_server='ldap://192.0.2.10:389', ldap_domain='d', ldap_username='u'),
     'Must supply either both username and password or neither'),
    (dict(ldap_server='ldap://192.0.2.10:389'), 'Missing ldap_domain in json request body'),
])
def test_ldap_validation_70(simulated_manager, body, message):
    """_validate_set_ldap_request (cloudify-manager@7.0.4; same rules from 5.2.0)."""
    mgr = simulated_manager('7.0')
    response = raw(mgr, 'POST', '/api/v3.1/ldap', json_body=body)
    assert response.status_code == 400
    assert response.json()['message'].startswith(message)
    assert mgr.client().ldap.get_status() == 'disabled'


def test_unreachable_ldap_server(simulated_manager):
    """With a username the server binds to check: a failed bind is a 400 and the old
    configuration stays (6.2+: 'Unable to connect to LDAP Server')."""
    mgr = simulated_manager('6.4')
    mgr.ldap_reachable = False
    with pytest.raises(CloudifyClientError) as refused:
        mgr.client().ldap.set(**LDAP)
    assert refused.value.status_code == 400
    assert 'Unable to connect to LDAP Server ldap://192.0.2.10:389' in str(refused.value)
    assert mgr.client().ldap.get_status() == 'disabled'


@pytest.mark.parametrize('version,data,status,message', [
    ('5.0.5', 'demo', 405, 'LDAP Configuration may be set only on a clean manager.'),
    ('5.2.7', 'demo', 200, None),
    ('5.0.5', 'empty', 200, None),
])
def test_clean_manager_rule(simulated_manager, version, data, status, message):
    """5.0.5-5.1: only on a manager whose only user is the bootstrap admin (gone at
    5.2.0)."""
    mgr = simulated_manager(version, data=data)
    response = raw(mgr, 'POST', '/api/v3.1/ldap', json_body=LDAP)
    assert response.status_code == status, response.text
    if message:
        assert response.json()['message'] == message


def test_community_has_no_ldap(simulated_manager):
    """'LDAP is only supported in the Cloudify premium edition.' (405)."""
    mgr = simulated_manager('7.0', edition='community')
    response = raw(mgr, 'POST', '/api/v3.1/ldap', json_body=LDAP)
    assert response.status_code == 405
    assert response.json()['error_code'] == 'method_not_allowed_error'


def test_legacy_restore_keeps_the_targets_ldap(simulated_manager):
    """behaviour §12.3: the restore reloads the target's config table: a 6.4 source with LDAP
    -> the 7.0 target still says 'disabled' and has no ldap_server."""
    source = simulated_manager('6.4', data='demo', admin_password=PASSWORD)
    _set_and_wait(source, **LDAP)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    wait_until(lambda: raw(target, 'GET', '/api/v3.1/ldap').status_code == 200, 10,
               what='the target answers')
    assert target.client().ldap.get_status() == 'disabled'
    assert _config(target.client())['ldap_server']['value'] is None
    assert source.client().ldap.get_status() == 'enabled'
    assert target.client().deployments.get('hw-1').id == 'hw-1'
