"""Contract: the differences the real 7.0.4 REST service showed against the simulated 7.0.

References: behaviour §12.11 (observed on the real 7.0.4 REST service), with the source lines
that explain each one (rules.py): `GET /executions?status=<unknown>` -> 500 (PostgreSQL
enum, MGR@4.0+ resource_models.py); snapshots created by PUT are `private` (MGR@4.3+
resource_manager.py create_snapshot_model); `POST /maintenance/activate` with nothing
running answers `remaining_executions: [[]]` (MGR@5.1.1+ maintenance_mode.py); 503 bodies in
maintenance carry `"server_traceback": "NoneType: None\\n"` (MGR maintenance.py
`_create_maintenance_error`); `GET /tokens` items carry `value` (MGR@7.0.4 Token.value);
`/ok` answers 500 `FAIL` after about 3 s when a service is down.  The community
`GET /license` 404 is pinned in test_contract_licence.py.
"""
import pytest

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_execution


@pytest.mark.parametrize('version', ['4.2', '7.0'])
def test_unknown_execution_status_filter_is_500(simulated_manager, version):
    """behaviour §12.11: status=bogus -> 500 internal_server_error (the enum rejects it)."""
    mgr = simulated_manager(version, data='demo')
    response = raw(mgr, 'GET', '/api/v3.1/executions?status=bogus')
    assert response.status_code == 500
    assert response.json()['error_code'] == 'internal_server_error'
    assert 'invalid input value for enum' in response.json()['message']
    with pytest.raises(CloudifyClientError) as err:
        mgr.client().executions.list(status='bogus')
    assert err.value.status_code == 500
    known = raw(mgr, 'GET', '/api/v3.1/executions?status=terminated')
    assert known.status_code == 200 and known.json()['items']


@pytest.mark.parametrize('version,visibility', [('4.2', 'tenant'), ('4.3', 'private'),
                                                ('7.0', 'private')])
def test_snapshot_visibility(simulated_manager, version, visibility):
    """behaviour §12.11: snapshots created by PUT are private (from 4.3; 4.0-4.2 take
    private_resource, default false -> tenant)."""
    mgr = simulated_manager(version)
    created = raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1', json_body={})
    assert created.status_code == 201
    wait_execution(mgr.client(), created.json()['id'])
    snapshot = raw(mgr, 'GET', '/api/v3.1/snapshots/snap1').json()
    assert snapshot['private_resource'] is (visibility == 'private')
    if 'visibility' in snapshot:
        assert snapshot['visibility'] == visibility
    else:
        assert snapshot['resource_availability'] == visibility


@pytest.mark.parametrize('version,nested', [('5.1', False), ('5.2.7', True),
                                            ('7.0', True)])
def test_maintenance_activate_remaining_executions(simulated_manager, version, nested):
    """behaviour §12.11: with nothing running, activate answers activated and
    remaining_executions [[]] (5.1.1+); 5.1.0 answers []."""
    mgr = simulated_manager(version)
    state = raw(mgr, 'POST', '/api/v3.1/maintenance/activate').json()
    assert state['status'] == 'activated'
    assert state['remaining_executions'] == ([[]] if nested else [])
    assert mgr.client().maintenance_mode.status().status == 'activated'


def test_maintenance_activate_with_running_execution_70(simulated_manager):
    """The same tuple wraps the running executions (MGR@7.0.4 maintenance_mode.py)."""
    mgr = simulated_manager('7.0', data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    heal = mgr.client().executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    state = raw(mgr, 'POST', '/api/v3.1/maintenance/activate').json()
    assert state['status'] == 'activating'
    assert [e['id'] for e in state['remaining_executions'][0]] == [heal.id]


@pytest.mark.parametrize('version,traceback', [('4.4', 'None\n'), ('5.1', 'NoneType: None\n'),
                                               ('7.0', 'NoneType: None\n')])
def test_maintenance_503_traceback(simulated_manager, version, traceback):
    """behaviour §12.11: 503 bodies carry the traceback of no exception ("NoneType: None\\n" on
    Python 3 managers; "None\\n" on Python 2 ones [I])."""
    mgr = simulated_manager(version)
    raw(mgr, 'POST', mgr.rules.api_prefix + '/maintenance/activate')
    blocked = raw(mgr, 'GET', mgr.rules.api_prefix + '/blueprints')
    assert blocked.status_code == 503
    assert blocked.json() == {'message': 'Your request was rejected since Cloudify manager '
                                         'is currently in maintenance mode',
                              'error_code': 'maintenance_mode_active',
                              'server_traceback': traceback}


def test_token_list_items_carry_masked_value(simulated_manager):
    """behaviour §12.11: GET /tokens items carry `value`; MGR@7.0.4 Token.value masks the
    secret ('ctok-<id>-********'); only the POST answer holds the secret."""
    mgr = simulated_manager('7.0')
    created = mgr.client().tokens.create(description='x')
    items = raw(mgr, 'GET', '/api/v3.1/tokens').json()['items']
    assert [i['value'] for i in items] == ['ctok-{0}-********'.format(created.id)]
    assert created.value.startswith('ctok-{0}-'.format(created.id))
    assert created.value != items[0]['value']


def test_ok_fails_after_a_delay_when_a_service_is_down(simulated_manager, monkeypatch):
    """behaviour §12.11: /ok answers 500 "FAIL" after about 3 s (manager seconds, scaled by the
    time scale; `ok_fail_delay` overrides); a healthy manager answers "OK" at once."""
    mgr = simulated_manager('7.0')
    slept = []
    monkeypatch.setattr(mgr, 'sleep_real', slept.append)
    assert raw(mgr, 'GET', '/api/v3.1/ok', auth=False).json() == 'OK'
    assert slept == []
    mgr.systemctl('stop', 'cloudify-mgmtworker')
    failed = raw(mgr, 'GET', '/api/v3.1/ok', auth=False)
    assert failed.status_code == 500 and failed.json() == 'FAIL'
    assert slept == [pytest.approx(3.0 * mgr.time_scale)]
    other = simulated_manager('7.0', ok_fail_delay=0.01)
    assert other.ok_fail_delay() == 0.01
