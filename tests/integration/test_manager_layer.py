"""The manager layer against the simulated managers (issue 4 acceptance): discovery on every
simulated version, the restore body per target version, pagination on 4.2 with thousands of
executions, retries on real 5xx answers, and waits across a REST outage.

What the simulator *received* (``.requests``) is asserted, and negative controls with the
stock 7.0.5 client show that the simulator really enforces the rules the layer works around.
"""
import socket

import pytest
from cloudify_rest_client.exceptions import CloudifyClientError

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import (
    Manager, RetryPolicy, wait_for_execution, wait_for_rest)
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.versions import Version
from tests.simulator import VERSIONS
from tests.simulator.fixtures import simulated_manager  # noqa: F401  (pytest fixture)

FAST_RETRY = RetryPolicy(base_delay=0.05, max_delay=0.2)
QUICK = {'poll_start': 0.05, 'poll_cap': 0.2}

# behaviour §1.2 / §2.1, written out independently of versions.api_prefix
EXPECTED_PREFIX = {'3.4.2': '/api/v2.1', '4.0.0': '/api/v3', '4.0.1': '/api/v3'}


def connect(sim, with_credentials=True):
    return Manager.connect(
        '127.0.0.1', sim.rest_port, 'http',
        username=sim.admin_username if with_credentials else None,
        password=sim.admin_password if with_credentials else None,
        retry_policy=FAST_RETRY)


CASES = [(v, 'premium') for v in VERSIONS] + [('4.0.0', 'community'), ('4.1', 'community')]


@pytest.mark.parametrize('version, edition', CASES)
def test_discovery_on_every_simulated_version(simulated_manager, version, edition):  # noqa: F811
    sim = simulated_manager(version, edition=edition)
    manager = connect(sim, with_credentials=not version.startswith('3.'))
    reported = sim.version
    if edition == 'community' and version in ('4.0.0', '4.1'):
        assert reported.startswith('17.')          # a calendar build (behaviour §2.2)
        assert manager.version.is_calendar
        assert str(manager.version) == {'4.0.0': '4.0.0', '4.1': '4.1.0'}[version]
    else:
        assert str(manager.version) == reported
    assert manager.version.raw == reported
    assert manager.api_prefix == EXPECTED_PREFIX.get(version, '/api/v3.1')
    assert manager.edition == (None if version.startswith('3.') else edition)
    paths = [entry['path'] for entry in sim.requests]
    assert paths[0] == '/api/v3.1/ok'
    # everything after discovery goes through the chosen prefix and is answered
    sim.requests.clear()
    assert manager.version_data()['version'] == reported
    status = manager.status()
    assert status['healthy'] is True
    assert status['shape'] == ('services' if manager.version >= '5.0.5' else 'units')
    for entry in sim.requests:
        assert entry['path'].startswith(manager.api_prefix + '/')
        assert entry['status'] == 200
        assert entry['tenant'] == 'default_tenant'


@pytest.mark.parametrize('version', VERSIONS)
def test_restore_body_accepted_per_version(simulated_manager, version):  # noqa: F811
    sim = simulated_manager(version)
    manager = connect(sim)
    create_id = manager.create_snapshot('upg_snap')
    assert wait_for_execution(manager, create_id, 60, **QUICK)['status'] == 'terminated'
    assert manager.get_snapshot('upg_snap')['status'] == 'created'

    restore_id = manager.restore_snapshot('upg_snap')
    restores = sim.requests.matching('POST', '/snapshots/upg_snap/restore')
    assert [entry['status'] for entry in restores] == [200]
    assert restores[0]['path'] == manager.api_prefix + '/snapshots/upg_snap/restore'
    result = wait_for_execution(manager, restore_id, 60, **QUICK)
    assert result['status'] == 'terminated'
    assert result['workflow_id'] == 'restore_snapshot'
    assert wait_for_rest(manager, 60, **QUICK)['auth_ok'] is True


@pytest.mark.parametrize('version', ['4.2', '4.5.0', '5.2.7'])
def test_stock_client_restore_is_refused(simulated_manager, version):  # noqa: F811
    """Negative control: rc705's restore body lacks recreate_deployments_envs (behaviour §1.1)."""
    sim = simulated_manager(version)
    manager = connect(sim)
    wait_for_execution(manager, manager.create_snapshot('upg_snap'), 60, **QUICK)
    with pytest.raises(CloudifyClientError) as info:
        sim.client().snapshots.restore('upg_snap')
    assert info.value.status_code == 400
    assert 'recreate_deployments_envs' in str(info.value)


def test_pagination_on_42_with_thousands_of_executions(simulated_manager):  # noqa: F811
    sim = simulated_manager('4.2', data='large')
    manager = connect(sim)
    expected = {e['id'] for e in sim.state.all('executions')}
    assert len(expected) >= 2500
    # negative control: one unpaged listing is refused by a 4.2 server (behaviour §4)
    with pytest.raises(CloudifyClientError):
        sim.client().executions.list(_all_tenants=True, include_system_workflows=True)
    sim.requests.clear()

    listed = [e['id'] for e in manager.list_all('executions', all_tenants=True,
                                                include=['id', 'status'], sort='created_at')]
    assert len(listed) == len(expected)
    assert set(listed) == expected
    pages = sim.requests.matching('GET', '/executions')
    assert len(pages) == -(-len(expected) // 1000)
    for entry in pages:
        assert entry['status'] == 200
        assert 0 < int(entry['query']['_size']) <= 1000
        assert '_offset' in entry['query']
        assert entry['query']['_include_system_workflows'] == 'true'
        assert entry['query']['_all_tenants'] == 'true'


def test_listing_per_tenant_on_a_premium_manager(simulated_manager):  # noqa: F811
    sim = simulated_manager('4.2', data='large')
    manager = connect(sim)
    tenants = manager.list_tenants()
    assert len(tenants) == 50 and 'default_tenant' in tenants
    by_tenant = {}
    for item in manager.list_all('deployments', all_tenants=True, per_tenant=True,
                                 include=['id']):
        by_tenant.setdefault(item['tenant_name'], []).append(item['id'])
    assert len(by_tenant['default_tenant']) == 1050
    assert all(len(by_tenant[t]) == 2 for t in tenants if t != 'default_tenant')
    tenant_headers = {e['tenant'] for e in sim.requests.matching('GET', '/deployments')}
    assert tenant_headers == set(tenants)


def test_get_retries_real_5xx_answers_but_restore_is_sent_once(simulated_manager):  # noqa: F811
    sim = simulated_manager('5.0.5')
    manager = connect(sim)
    wait_for_execution(manager, manager.create_snapshot('upg_snap'), 60, **QUICK)
    sim.requests.clear()
    sim.faults.fail_requests('/snapshots/upg_snap$', count=2, status=503)
    assert manager.get_snapshot('upg_snap')['status'] == 'created'
    assert [e['status'] for e in sim.requests.matching('GET', '/snapshots/upg_snap')] == [
        503, 503, 200]

    sim.faults.fail_requests('/restore$', count=1, status=502, method='POST')
    with pytest.raises(UpgradeError) as info:
        manager.restore_snapshot('upg_snap')
    assert info.value.error_id == 'manager-request-failed'
    assert len(sim.requests.matching('POST', '/restore')) == 1


def test_auth_errors_name_the_manager(simulated_manager):  # noqa: F811
    sim = simulated_manager('7.0')
    with pytest.raises(UpgradeError) as info:
        Manager.connect('127.0.0.1', sim.rest_port, 'http', username='admin',
                        password='wrong-password')
    assert info.value.error_id == 'manager-auth-failed'
    assert str(sim.rest_port) in info.value.message
    manager = connect(sim).for_tenant('no_such_tenant')
    with pytest.raises(UpgradeError) as info:
        list(manager.list_all('blueprints'))
    assert info.value.error_id == 'manager-forbidden'


def _refused(port):
    try:
        socket.create_connection(('127.0.0.1', port), 1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize('mode, seconds', [('refuse', 10), ('502', 4)])
def test_wait_across_a_rest_outage(simulated_manager, mode, seconds):  # noqa: F811
    sim = simulated_manager('4.2')
    manager = connect(sim)
    outcomes = []
    plain_get = manager.get_execution

    def spy(execution_id, retry=True):
        try:
            execution = plain_get(execution_id, retry=retry)
        except UpgradeError as error:
            outcomes.append(error.error_id)
            raise
        outcomes.append(execution['status'])
        return execution
    manager.get_execution = spy

    execution_id = manager.create_snapshot('upg_snap')
    sim.rest_outage(seconds, mode=mode)
    if mode == 'refuse':
        assert _refused(sim.rest_port)
    result = wait_for_execution(manager, execution_id, timeout=seconds + 30)
    assert result['status'] == 'terminated'
    failure = 'manager-unreachable' if mode == 'refuse' else 'manager-request-failed'
    assert outcomes[0] == failure
    assert outcomes[-1] == 'terminated'
    assert set(outcomes) <= {failure, 'terminated'}
    if mode == '502':
        statuses = [e['status'] for e in sim.requests.matching('GET', '/executions/')]
        assert 502 in statuses and statuses[-1] == 200


@pytest.mark.parametrize('source_version, target_version', [
    ('4.2', '4.3'), ('4.2', '4.6'), ('5.0.5', '7.0')])
def test_restore_follows_the_admin_password(simulated_manager, tmp_path,  # noqa: F811
                                            source_version, target_version):
    """behaviour §3.8: after restoring a 4.2+ snapshot the target's admin has the source's
    password - after the execution on 4.2-4.5 targets, inside it on 4.6+."""
    source = simulated_manager(source_version, data='demo')
    target = simulated_manager(target_version)
    assert source.admin_password != target.admin_password
    old = connect(source)
    wait_for_execution(old, old.create_snapshot('upg_snap'), 60, **QUICK)
    archive = str(tmp_path / 'upg_snap.zip')
    source.client().snapshots.download('upg_snap', archive)
    target.client().snapshots.upload(archive, 'upg_snap')

    new = connect(target)
    source_admin = new.with_credentials(
        Credentials(source.admin_username, source.admin_password))
    switched = []
    execution_id = new.restore_snapshot('upg_snap')
    result = wait_for_execution(new, execution_id, 60, alternatives=[source_admin],
                                on_switch=switched.append, **QUICK)
    assert result['status'] == 'terminated'
    if Version.parse(target_version) >= '4.6':
        # the password changed inside the workflow: the final polls needed the old admin's
        assert switched == [source_admin]
    back = wait_for_rest(new, 60, settle=1.0, alternatives=[source_admin], **QUICK)
    assert back['auth_ok'] is True and back['manager'] is source_admin
    assert [d['id'] for d in back['manager'].list_all('deployments', include=['id'])]
    with pytest.raises(UpgradeError) as info:
        new.version_data()
    assert info.value.error_id == 'manager-auth-failed'
