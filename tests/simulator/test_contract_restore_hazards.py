"""Contract: two restore hazards the plugin must respect.

References:
- behaviour §12.7: 5.0.5-6.1 targets keep the REST service up while the restore downgrades and
  upgrades the database, and REST traffic can deadlock that migration (cloudify-manager PR
  #2937 RD-2110 locks `users` and `maintenance_mode`; PR #3186 RD-2913 "we keep seeing
  deadlocks with concurrent requests" pauses cloudify-restservice from 6.2).  The
  simulator marks every request that reaches the REST service during the swap
  (`during_db_swap`, `mgr.db_swap_traffic()`), and with `deadlock_on_db_swap_traffic`
  fails the restore as the deadlock would.
- behaviour §12.4: up to 5.0.x the restore installs every deployment's plugins; one that does
  not install fails the whole restore unless `ignore_plugin_failure` (4.5.0-5.0.x), per
  version as MGR@4.4, 4.5.1, 4.5.5, 5.0.5 snapshot_restore.py `_restore_deployment_envs`
  do it (log texts included); 5.1+ restores install no plugin.
"""
import pytest

from tests.simulator.helpers import raw, wait_execution_any, wait_until
from tests.simulator.test_contract_route70 import create, upload

RESTORE = '/api/v3.1/snapshots/snap1/restore'


def start_restore(mgr, **body):
    payload = {'force': False, 'restore_certificates': False, 'no_reboot': False,
               'recreate_deployments_envs': True, 'ignore_plugin_failure': False}
    payload.update(body)
    response = raw(mgr, 'POST', RESTORE, json_body=payload)
    assert response.status_code == 200, response.text
    return response.json()['id']


def prepared(simulated_manager, source_version, target_version, **target_kwargs):
    source = simulated_manager(source_version, data='demo')
    target = simulated_manager(target_version, **target_kwargs)
    upload(target, create(source))
    return source, target


def finish(target, source, execution_id, timeout=30):
    """Wait for the end of the restore in process (no request: behaviour §12.7), then read it
    over REST."""
    def ended():
        with target.state.lock:
            found = target.state.find('executions', execution_id)
        return found and found[0]['status'] in ('terminated', 'failed', 'cancelled')
    wait_until(ended, timeout, what='restore execution {0}'.format(execution_id))
    return wait_execution_any(target, execution_id,
                              [target.admin_password, source.admin_password], timeout=timeout)


# -- behaviour §12.7 ---------------------------------------------------------------------------

@pytest.mark.parametrize('version, swaps', [('5.0.5', True), ('5.1', True), ('6.0', True),
                                            ('6.4', False), ('7.0', False), ('4.6', False)])
def test_database_swap_with_the_rest_service_up_on_505_to_61(simulated_manager, version,
                                                             swaps):
    """behaviour §12.7: only 5.0.5-6.1 swap the database while the REST service serves."""
    source, target = prepared(simulated_manager, '4.4', version)
    finish(target, source, start_restore(target))
    assert ('db swap started' in target.events()) is swaps
    if swaps:
        events = target.events()
        assert events.index('db swap started') < events.index('db swap ended') < \
            events.index('db restored')


def test_requests_during_the_swap_are_recorded(simulated_manager):
    """Every request reaching the REST service during the swap is marked, authenticated
    or not; nothing is marked before or after it."""
    source, target = prepared(simulated_manager, '4.4', '5.0.5', db_swap_seconds=1.5)
    before = len(target.requests)
    execution_id = start_restore(target)
    wait_until(lambda: 'db swap started' in target.events(), 10, what='the swap')
    raw(target, 'GET', '/api/v3.1/executions/' + execution_id)
    raw(target, 'GET', '/api/v3.1/snapshot-status', auth=False)
    finish(target, source, execution_id)
    marked = [e for e in list(target.requests)[before:] if e['during_db_swap']]
    assert [e['path'] for e in marked] == ['/api/v3.1/executions/' + execution_id,
                                           '/api/v3.1/snapshot-status']
    assert target.db_swap_traffic() == marked
    raw(target, 'GET', '/api/v3.1/snapshot-status', auth=False)
    assert list(target.requests)[-1]['during_db_swap'] is False


def test_a_quiet_swap_restores(simulated_manager):
    source, target = prepared(simulated_manager, '4.4', '6.0', db_swap_seconds=0.5,
                              deadlock_on_db_swap_traffic=True)
    done = finish(target, source, start_restore(target))
    assert done.status == 'terminated', done.error
    assert target.db_swap_traffic() == []


def test_traffic_during_the_swap_deadlocks_the_restore_when_asked(simulated_manager):
    """deadlock_on_db_swap_traffic: the restore fails as a deadlocked migration would."""
    source, target = prepared(simulated_manager, '4.4', '5.0.5', db_swap_seconds=1.5,
                              deadlock_on_db_swap_traffic=True)
    execution_id = start_restore(target)
    wait_until(lambda: 'db swap started' in target.events(), 10, what='the swap')
    raw(target, 'GET', '/api/v3.1/executions/' + execution_id)
    done = finish(target, source, execution_id)
    assert done.status == 'failed'
    assert 'deadlock detected' in done.error
    assert 'db restored' not in target.events()
    assert target.state.admin()['username'] == 'admin'


# -- behaviour §12.4 ---------------------------------------------------------------------------

def _restore_logs(target, source, execution_id):
    for password in (target.admin_password, source.admin_password):
        response = raw(target, 'GET', '/api/v3.1/events', password=password, params={
            'execution_id': execution_id, 'type': 'cloudify_log',
            'level': ['info', 'warning'], '_size': 100, '_offset': 0})
        if response.status_code == 200:
            return [item['message'] for item in response.json()['items']]
    raise AssertionError('no password reads the logs')


def _deployments(target, source):
    for password in (target.admin_password, source.admin_password):
        response = raw(target, 'GET', '/api/v3.1/deployments?_include=id', password=password)
        if response.status_code == 200:
            return sorted(d['id'] for d in response.json()['items'])
    raise AssertionError('no password lists the deployments')


@pytest.mark.parametrize('version', ['4.4', '4.5.0', '4.5.5', '5.0.5'])
def test_a_plugin_that_does_not_install_fails_the_restore(simulated_manager, version):
    """behaviour §12.4: without ignore_plugin_failure the restore fails; 4.5.5+ first restore
    every other environment and then list the failed ones."""
    source, target = prepared(simulated_manager, '4.2', version)
    target.faults.fail_plugin_install('hw-1')
    done = finish(target, source, start_restore(target))
    assert done.status == 'failed'
    if version in ('4.5.5', '5.0.5'):
        assert "deployment environments were not restored: [(u'hw-1', u'default_tenant')]" \
            in done.error
    else:
        assert "'cloudify_agent.operations.install_plugins'" in done.error


@pytest.mark.parametrize('version', ['4.5.5', '5.0.5'])
def test_ignore_plugin_failure_keeps_the_deployment_without_its_plugins(simulated_manager,
                                                                        version):
    source, target = prepared(simulated_manager, '4.2', version)
    target.faults.fail_plugin_install('hw-1')
    execution_id = start_restore(target, ignore_plugin_failure=True)
    assert finish(target, source, execution_id).status == 'terminated'
    logs = _restore_logs(target, source, execution_id)
    assert 'Failed to install plugins for deployment `hw-1` under tenant `default_tenant`.  ' \
        'Proceeding since `ignore_plugin_failure` flag was used.' in logs
    assert any('need to be installed manually' in line and "(u'hw-1', u'default_tenant')"
               in line for line in logs)
    assert 'hw-1' in _deployments(target, source)


def test_ignore_plugin_failure_on_450_removes_the_deployment(simulated_manager):
    """MGR@4.5, 4.5.1 `__remove_failed_deployments_footprints`."""
    source, target = prepared(simulated_manager, '4.2', '4.5.0')
    target.faults.fail_plugin_install('hw-1')
    execution_id = start_restore(target, ignore_plugin_failure=True)
    assert finish(target, source, execution_id).status == 'terminated'
    logs = _restore_logs(target, source, execution_id)
    assert 'Restoring deployment environments for default_tenant' in logs
    assert 'Failed to create deployment: hw-1,ignore_plugin_failureflag used, ' \
        'proceeding...' in logs
    deployments = _deployments(target, source)
    assert 'hw-1' not in deployments and 'web-1' in deployments


@pytest.mark.parametrize('version', ['5.1', '7.0'])
def test_no_plugin_is_installed_by_a_51_restore(simulated_manager, version):
    source, target = prepared(simulated_manager, '4.4', version)
    target.faults.fail_plugin_install('hw-1')
    assert finish(target, source, start_restore(target)).status == 'terminated'
    assert 'hw-1' in _deployments(target, source)


def test_ignore_plugin_failure_is_not_read_before_45(simulated_manager):
    """MGR@4.4 has no such parameter: the flag changes nothing."""
    source, target = prepared(simulated_manager, '4.2', '4.4')
    target.faults.fail_plugin_install('hw-1')
    done = finish(target, source, start_restore(target, ignore_plugin_failure=True))
    assert done.status == 'failed'


@pytest.mark.parametrize('version, installed', [('4.5.0', False), ('4.5.5', True),
                                                ('5.0.5', True)])
def test_a_restore_failing_after_its_db_step_still_runs_the_post_restore_commands(
        simulated_manager, version, installed):
    """MGR@4.5.5..7.0.4 `restore` runs `_trigger_post_restore_commands` in `finally`: the
    admin's UPDATE queued after `_restore_db` still installs the source admin (and the
    restore flag goes); 4.5.0-4.5.1 run them only on success."""
    source, target = prepared(simulated_manager, '4.2', version)
    target.faults.fail_plugin_install('hw-1')
    done = finish(target, source, start_restore(target))
    assert done.status == 'failed'
    if installed:
        wait_until(lambda: 'admin updated' in target.events(), 10, what='the admin UPDATE')
    assert ('admin updated' in target.events()) is installed
    assert target.snapshot_flag() is False
