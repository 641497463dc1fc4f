"""Contract: the licence of premium managers from 4.6.

References: behaviour §12.2: an unlicensed premium manager serves only the version's
ALLOWED_LICENSE_ENDPOINTS (MGR@4.6/5.0.5/5.1.0/5.2.7/6.0.0/6.4.0/7.0.4
rest-service/manager_rest/constants.py) and refuses everything else with
`missing_cloudify_license` (`expired_cloudify_license` once expired; client codes
COMMON@7.0.4 cloudify_rest_client/exceptions.py; the HTTP status is [U], the simulator
answers 400, README); `GET /license` answers `items: []` without a licence and an item with
expiration_date, cloudify_version, license_edition, trial, expired when licensed
(MGR@7.0.4 storage/management_models.py License); a licence older than the manager is
refused at upload with 400 `unverified_cloudify_license`.  behaviour §12.11: a community
`GET /license` is the JSON 404 `missing_premium_package_error`.
"""
import json

import pytest

from cloudify_rest_client.exceptions import (CloudifyClientError, ExpiredCloudifyLicense,
                                             MissingCloudifyLicense)

from tests.simulator.helpers import raw

GATED = ('4.6', '5.0.5', '5.1', '5.2.7', '6.0', '6.4', '7.0')

# endpoint probe -> the first version whose licence allow-list holds it (behaviour §12.2)
PROBES = {
    ('GET', 'status'): '4.6', ('GET', 'version'): '4.6', ('GET', 'license'): '4.6',
    ('GET', 'tenants'): '4.6', ('GET', 'maintenance'): '5.0.5',
    ('GET', 'managers'): '5.0.5', ('GET', 'users'): '6.0', ('GET', 'user'): '6.4',
    ('GET', 'blueprints'): None, ('GET', 'snapshots'): None, ('GET', 'executions'): None,
    ('GET', 'deployments'): None, ('GET', 'license-check'): None,
}
ORDER = ('4.6', '5.0.5', '5.1', '5.2.7', '6.0', '6.4', '7.0')


def _allowed(version, since):
    return since is not None and ORDER.index(version) >= ORDER.index(since)


@pytest.mark.parametrize('version', GATED)
def test_unlicensed_gate_per_version(simulated_manager, version):
    """behaviour §12.2: only the version's allow-list answers; every other endpoint is refused
    with missing_cloudify_license."""
    mgr = simulated_manager(version, licensed=False)
    prefix = mgr.rules.api_prefix
    for (method, endpoint), since in PROBES.items():
        if endpoint == 'managers' and not mgr.rules.has_cluster_nodes:
            continue                        # no such route before 5.0.5 (behaviour §2.1)
        response = raw(mgr, method, '{0}/{1}'.format(prefix, endpoint))
        refused = response.status_code == 400 and \
            response.json().get('error_code') == 'missing_cloudify_license'
        assert refused is not _allowed(version, since), (version, endpoint,
                                                         response.status_code)


def test_stock_client_meets_missing_licence(simulated_manager):
    """COMMON@7.0.4 exceptions.py: the error code maps to MissingCloudifyLicense."""
    mgr = simulated_manager('7.0', data='demo', licensed=False)
    client = mgr.client()
    with pytest.raises(MissingCloudifyLicense) as err:
        client.blueprints.list()
    assert err.value.status_code == 400
    with pytest.raises(MissingCloudifyLicense):
        client.snapshots.create('snap1', True)
    with pytest.raises(MissingCloudifyLicense):
        client.license.check()                      # /license-check is not on the list
    assert list(client.license.list()) == []        # behaviour §12.2 `items: []`
    assert client.manager.get_version()['version'] == '7.0.4'
    assert mgr.requests.matching('PUT', '/snapshots/snap1')[0]['status'] == 400
    assert not mgr.state.all('snapshots')


def test_licence_items_when_licensed(simulated_manager):
    """behaviour §12.2: one item with expiration_date, cloudify_version, license_edition,
    trial, expired (+ customer_id, capabilities: MGR@7.0.4 responses_v3.License)."""
    mgr = simulated_manager('7.0')
    body = raw(mgr, 'GET', '/api/v3.1/license').json()
    assert body['metadata']['pagination']['total'] == 1
    item = body['items'][0]
    assert set(item) == {'customer_id', 'expiration_date', 'license_edition', 'trial',
                         'cloudify_version', 'capabilities', 'expired'}
    assert item['cloudify_version'] == '7.0' and item['expired'] is False
    assert raw(mgr, 'GET', '/api/v3.1/blueprints').status_code == 200


def test_expired_licence(simulated_manager):
    """behaviour §12.2 `expired`; the vendor's tests (MGR@7.0.4 tests/integration_tests/tests/
    agentless_tests/test_license.py): an expired paying licence still serves, an expired
    trial licence closes the gate with expired_cloudify_license."""
    paying = simulated_manager('6.4', licence_expired=True)
    item = paying.client().license.list()[0]
    assert item.expired is True and item['trial'] is False
    assert raw(paying, 'GET', '/api/v3.1/blueprints').status_code == 200
    trial = simulated_manager('7.0', licence_expired=True, licence_trial=True)
    with pytest.raises(ExpiredCloudifyLicense) as err:
        trial.client().blueprints.list()
    assert err.value.status_code == 400
    assert raw(trial, 'GET', '/api/v3.1/license').json()['items'][0]['expired'] is True


def test_older_licence_version(simulated_manager):
    """The option for a licence issued for an older version (behaviour §12.2 'cloudify_version');
    such a licence still opens the gate of a running manager [I]."""
    mgr = simulated_manager('7.0', licence_version='6.4')
    assert mgr.client().license.list()[0].cloudify_version == '6.4'
    assert raw(mgr, 'GET', '/api/v3.1/blueprints').status_code == 200


def test_upload_older_licence_refused(simulated_manager, tmp_path):
    """behaviour §12.2: 400 unverified_cloudify_license for a licence older than the manager;
    a current one is accepted and opens the gate (the file format is the simulator's,
    README [U])."""
    mgr = simulated_manager('7.0', licensed=False)
    client = mgr.client()
    old = tmp_path / 'old.yaml'
    old.write_text(json.dumps({'license': {'cloudify_version': '6.4',
                                           'expiration_date': '2099-01-01T00:00:00.000Z'}}))
    with pytest.raises(CloudifyClientError) as err:
        client.license.upload(str(old))
    assert err.value.status_code == 400
    assert err.value.error_code == 'unverified_cloudify_license'
    assert mgr.licence_state() == 'missing'
    current = tmp_path / 'current.yaml'
    current.write_text('license:\n  cloudify_version: "7.0"\n  trial: false\n'
                       '  expiration_date: 11/24/2030\n')
    client.license.upload(str(current))
    assert mgr.licence_state() == 'valid'
    assert client.license.list()[0].expiration_date == '2030-11-24T00:00:00.000Z'
    assert raw(mgr, 'GET', '/api/v3.1/blueprints').status_code == 200
    unversioned = tmp_path / 'any.yaml'           # cloudify_version null: every version
    unversioned.write_text('license:\n  cloudify_version: null\n  expiration_date: null\n')
    client.license.upload(str(unversioned))
    item = client.license.list()[0]
    assert item.cloudify_version is None and item.expired is False


def test_gate_runs_before_authentication(simulated_manager):
    """MGR@4.6..7.0.4 server.py: the licence hook is a before_request registered before
    the maintenance handler and authentication: a refused request is never authenticated
    (no failed login is counted)."""
    mgr = simulated_manager('7.0', licensed=False)
    response = raw(mgr, 'GET', '/api/v3.1/blueprints', password='wrong')
    assert response.status_code == 400
    assert response.json()['error_code'] == 'missing_cloudify_license'
    entry = mgr.requests.matching('GET', '/blueprints')[0]
    assert entry['auth_ok'] is None
    assert mgr.failed_logins('admin') == 0
    assert raw(mgr, 'GET', '/api/v3.1/tenants', password='wrong').status_code == 401


@pytest.mark.parametrize('version', ['4.6', '7.0'])
def test_community_license_is_json_404(simulated_manager, version):
    """behaviour §12.11: community GET /license -> JSON 404 missing_premium_package_error
    (MGR@4.6 MissingPremiumFeatureResource, MGR@6.4+ `premium_only`); community has no
    licence gate."""
    mgr = simulated_manager(version, edition='community', licensed=False)
    response = raw(mgr, 'GET', mgr.rules.api_prefix + '/license')
    assert response.status_code == 404
    assert response.json()['error_code'] == 'missing_premium_package_error'
    assert raw(mgr, 'GET', mgr.rules.api_prefix + '/blueprints').status_code == 200


def test_no_gate_before_46(simulated_manager):
    """behaviour §12.2: licences exist on premium managers from 4.6."""
    mgr = simulated_manager('4.5.5', licensed=False)
    assert raw(mgr, 'GET', '/api/v3.1/blueprints').status_code == 200
    assert raw(mgr, 'GET', '/api/v3.1/license').status_code == 404
