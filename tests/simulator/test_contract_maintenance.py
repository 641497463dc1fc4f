"""Contract: maintenance mode per version: the allow-list, the 503 body, the
X-BYPASS-MAINTENANCE header, the 'activating' state.

References: behaviour §2.5
(3.4.2-4.5 allow-lists), §12.5, §12.11 ("server_traceback": "NoneType: None\\n" seen on the
real 7.0.4); Cloudify source: cloudify-manager@4.2 / @4.6 / @5.0.5 / @5.2.0 / @7.0.4
rest-service/manager_rest/maintenance.py (maintenance_mode_handler,
_handle_activating_mode, _create_maintenance_error) and constants.py
(ALLOWED_MAINTENANCE_ENDPOINTS).
"""
import pytest

from cloudify_rest_client.exceptions import MaintenanceModeActiveError

from tests.simulator.helpers import raw, wait_until

BYPASS = {'X-BYPASS-MAINTENANCE': 'true'}


def _activated(mgr):
    response = raw(mgr, 'POST', mgr.rules.api_prefix + '/maintenance/activate',
                   json_body={})
    assert response.status_code == 200, response.text
    wait_until(lambda: raw(mgr, 'GET', mgr.rules.api_prefix + '/maintenance')
               .json()['status'] == 'activated', 10, what='maintenance activated')
    return mgr


def _get(mgr, resource, **kwargs):
    return raw(mgr, 'GET', '{0}/{1}'.format(mgr.rules.api_prefix, resource), **kwargs)


def test_503_body_70(simulated_manager):
    """_create_maintenance_error: 503 with message, error_code and the traceback printed
    with no exception active (behaviour §12.11: "NoneType: None\\n"); the stock client raises
    MaintenanceModeActiveError."""
    mgr = _activated(simulated_manager('7.0', data='demo'))
    response = _get(mgr, 'executions')
    assert response.status_code == 503
    assert response.json() == {
        'message': 'Your request was rejected since Cloudify manager is currently in '
                   'maintenance mode',
        'error_code': 'maintenance_mode_active', 'server_traceback': 'NoneType: None\n'}
    with pytest.raises(MaintenanceModeActiveError):
        mgr.client().executions.list()


@pytest.mark.parametrize('version,allowed,refused', [
    ('4.4', ['status', 'version', 'maintenance'], ['snapshots', 'executions', 'tenants']),
    ('4.5.5', ['snapshots'], ['executions', 'agents']),
    ('4.6', ['snapshots', 'version'], ['executions', 'tokens', 'license-check']),
    ('5.0.5', ['snapshots', 'snapshot-status'], ['managers', 'executions', 'tokens']),
    ('5.2.7', ['managers', 'brokers', 'config', 'snapshot-status'],
     ['executions', 'execution-schedules', 'deployments', 'plugins', 'ldap']),
    ('7.0', ['ok', 'managers', 'config', 'snapshots'],
     ['executions', 'tokens', 'tenants', 'users', 'agents', 'blueprints',
      'deployment-groups']),
])
def test_allowed_endpoints(simulated_manager, version, allowed, refused):
    """ALLOWED_MAINTENANCE_ENDPOINTS per version (behaviour §2.5; constants.py at each tag):
    the first path segment must be in the list ('license-check' is not 'license')."""
    mgr = _activated(simulated_manager(version, data='demo'))
    for resource in allowed:
        assert _get(mgr, resource).status_code != 503, resource
    for resource in refused:
        response = _get(mgr, resource)
        assert response.status_code == 503, resource
        assert response.json()['error_code'] == 'maintenance_mode_active'


@pytest.mark.parametrize('version,traceback', [('5.0.5', 'None\n'), ('5.1', 'NoneType: None\n'),
                                               ('6.4', 'NoneType: None\n')])
def test_traceback_per_python(simulated_manager, version, traceback):
    """traceback.print_exc() with no exception prints "None" on Python 2.7 (5.0.x REST
    service) and "NoneType: None" on Python 3 (5.1+) [I for 5.0.5]."""
    mgr = _activated(simulated_manager(version))
    assert _get(mgr, 'blueprints').json()['server_traceback'] == traceback


@pytest.mark.parametrize('version', ['5.2.7', '6.0', '7.0'])
def test_bypass_for_admins_from_52(simulated_manager, version):
    """5.2.0+: X-BYPASS-MAINTENANCE passes for a user who may maintenance_mode_set (the
    admin), on any endpoint; other users still get 503; a wrong password with the header
    is a 401 (the user is loaded from the credentials)."""
    mgr = _activated(simulated_manager(version, data='demo'))
    through = _get(mgr, 'executions', headers=BYPASS)
    assert through.status_code == 200 and through.json()['items']
    assert _get(mgr, 'tenants', headers=BYPASS).status_code == 200
    alice = mgr.user_passwords['alice']
    refused = _get(mgr, 'executions', headers=BYPASS, username='alice', password=alice)
    assert refused.status_code == 503
    wrong = _get(mgr, 'executions', headers=BYPASS, password='not-the-password')
    assert wrong.status_code == 401


@pytest.mark.parametrize('version', ['4.2', '4.6', '5.0.5', '5.1'])
def test_no_bypass_for_remote_clients_before_52(simulated_manager, version):
    """4.x-5.1: the header is honoured only for requests from the manager host itself
    (is_internal_request), which a remote client never is: the admin gets 503 too."""
    mgr = _activated(simulated_manager(version, data='demo'))
    response = _get(mgr, 'executions', headers=BYPASS)
    assert response.status_code == 503
    assert response.json()['error_code'] == 'maintenance_mode_active'


def test_activating_while_executions_run(simulated_manager):
    """_handle_activating_mode: with executions running the state stays 'activating' and
    only writes to executions, deployments/<id>, snapshots/<id>, snapshots/<id>/restore,
    deployment-modifications are refused (entering_maintenance_mode); reads pass; once the
    executions end the mode is 'activated'."""
    mgr = simulated_manager('7.0', data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    execution = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    client.maintenance_mode.activate()
    state = client.maintenance_mode.status()
    assert state.status == 'activating' and state.remaining_executions
    assert _get(mgr, 'executions').status_code == 200
    start = raw(mgr, 'POST', '/api/v3.1/executions',
                json_body={'deployment_id': 'web-1', 'workflow_id': 'install'})
    assert start.status_code == 503
    assert start.json()['error_code'] == 'entering_maintenance_mode'
    snapshot = raw(mgr, 'PUT', '/api/v3.1/snapshots/s1', json_body={})
    assert snapshot.json()['error_code'] == 'entering_maintenance_mode'
    client.executions.cancel(execution.id, force=True)
    wait_until(lambda: client.maintenance_mode.status().status == 'activated', 10,
               what='maintenance activated')
    assert _get(mgr, 'executions').status_code == 503


def test_bypass_without_credentials_is_anonymous(simulated_manager):
    """No credentials with the header: an anonymous user may not maintenance_mode_set, so
    the allow-list decides as without the header (GET /ok passes, /executions 503)."""
    mgr = _activated(simulated_manager('7.0'))
    assert raw(mgr, 'GET', '/api/v3.1/ok', auth=False, headers=BYPASS).status_code == 200
    assert raw(mgr, 'GET', '/api/v3.1/executions', auth=False,
               headers=BYPASS).status_code == 503
