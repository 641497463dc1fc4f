"""Issue 14 items 3, 8 and 9 through the real `cfy` against simulated managers.

- Credentials after a restore (behaviour §3.8, §12.1, §12.10): the old manager's admin password
  reaches the target only after this upgrade started there a restore whose route installs
  it, never over http when the old manager was reached over https; a refused target profile
  is an error naming it; never more than 3 failed logins in a row against one account, so
  a 7.0.4 configured to lock after 4 failures is never locked.  Asserted on the simulators'
  per-request records (auth_user, auth_ok, password_fingerprint).
- behaviour §12.7: no REST request reaches a 5.0.5-6.1 target while its restore swaps the
  database (the simulator fails the restore as a deadlock would).
- behaviour §12.4: --ignore-plugin-failure on 4.5.0-5.0.x targets, the skipped deployments in
  the output and the report; refused (exit 2) elsewhere.
"""
import json
import os

import pytest

from tests import flows
from tests.simulator.helpers import raw, wait_execution

LOCK = {'failed_logins_before_account_lock': 4, 'account_lock_period': 10}


@pytest.fixture
def write_profile(flow):
    """write_profile(name, sim, password=None, protocol='http', certificate=None, ssh=True):
    what `cfy profiles use` stores (https with a CA file too), not activated."""

    def write(name, sim, password=None, protocol='http', certificate=None, ssh=True):
        return flow.profile(name, sim, ssh=ssh, password=password, activate=False,
                            protocol=protocol, certificate=certificate)
    return write


@pytest.fixture
def managers(flow, simulated_manager, write_profile, run_cfy):
    """managers(old_version, new_version, new_password=None, **new_kwargs): a prepared
    old `demo` manager (profile old) and a clean new one (profile new)."""

    def make(old_version, new_version, new_password=None, old_kwargs=None, prepare=(),
             **new_kwargs):
        old = simulated_manager(old_version, data='demo', ssh=True, **(old_kwargs or {}))
        new = simulated_manager(new_version, data='empty', ssh=True, **new_kwargs)
        write_profile('new', new, password=new_password)
        write_profile('old', old)
        assert run_cfy('profiles', 'use', 'old').returncode == 0
        flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json', *prepare)
        return old, new
    return make


def failures_in_a_row(sim, username='admin'):
    """The longest run of refused Basic logins of `username` the manager received."""
    worst = run = 0
    for entry in sim.requests.logins(username):
        run = 0 if entry['auth_ok'] else run + 1
        worst = max(worst, run)
    return worst


def fingerprints(sim):
    return {e['password_fingerprint'] for e in sim.requests if e['password_fingerprint']}


def assert_never_locked(new):
    assert failures_in_a_row(new) <= 3, failures_in_a_row(new)
    assert not new.is_locked('admin')
    assert new.failed_logins('admin') <= 3


# -- item 3: credentials ---------------------------------------------------------------------

def test_wrong_target_password_is_refused_and_the_old_one_never_sent(
        flow, managers, write_profile):
    old, new = managers('4.4', '7.0', new_password='not-the-password', **LOCK)
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new')
    assert result.returncode == 3, result
    error = result.json['error']
    assert error['id'] == 'target-credentials-refused', error
    assert 'profile new' in error['message']
    assert flows.upload_requests(new) == [] and flows.restore_requests(new) == []
    # the old manager's admin password never reached the target
    assert new.password_fingerprint(old.admin_password) not in fingerprints(new)
    assert {e['auth_user'] for e in new.requests.logins()} == {'admin'}
    # running it again and again never makes more than 3 failures in a row
    for _ in range(3):
        again = flow.upgrade('new-host', '--yes', '--to-profile', 'new')
        assert again.returncode == 3, again
    assert again.json['error']['id'] == 'failed-logins-limit'
    assert any('--reset-failed-logins' in hint for hint in again.json['error']['hints'])
    assert len(new.requests.logins('admin', ok=False)) == 3
    assert_never_locked(new)
    assert flow.meta()['failed_logins'][0]['failures'] == 3
    # the operator corrects the profile and says the count is stale
    write_profile('new', new)
    done = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--reset-failed-logins')
    assert done.returncode == 0, done
    assert_never_locked(new)
    assert flows.can_login(new, 'admin', old.admin_password)
    assert flow.meta()['failed_logins'] == []


def test_44_to_704_locking_after_4_failures_is_never_locked(flow, managers):
    """behaviour §3.8, §12.1: a 4.4 premium snapshot takes 7.0's legacy route, which gives the
    admin the old password inside the workflow; the plugin follows it with at most 3
    failed logins in a row (in fact one: none is sent while the restore flag is up)."""
    old, new = managers('4.4', '7.0', **LOCK)
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new')
    assert result.returncode == 0, result
    assert_never_locked(new)
    assert failures_in_a_row(new) <= 1
    assert flows.can_login(new, 'admin', old.admin_password)
    assert flow.read_profile('new')['manager_password'] == old.admin_password
    assert flow.meta()['restore_installs_source_admin'] is True
    assert 'restore route legacy' in new.events()


def test_new_route_restore_keeps_the_admin_and_never_sees_the_old_password(
        flow, simulated_manager, write_profile, run_cfy):
    """behaviour §12.1: a 7.0 per-entity snapshot restores on 7.0's new route, which leaves the
    admin as it was: the old admin's password is never sent to the target."""
    old = simulated_manager('7.0', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True, **LOCK)
    created = raw(old, 'PUT', '/api/v3.1/snapshots/newfmt', json_body={'legacy': False})
    assert created.status_code == 201, created.text
    assert wait_execution(old.client(), created.json()['id']).status == 'terminated'
    write_profile('new', new)
    write_profile('old', old)
    assert run_cfy('profiles', 'use', 'old').returncode == 0
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json', '--snapshot-id',
                 'newfmt')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new')
    assert result.returncode == 0, result
    assert 'restore route new' in new.events()
    assert flow.meta()['restore_installs_source_admin'] is False
    assert new.password_fingerprint(old.admin_password) not in fingerprints(new)
    assert flows.can_login(new, 'admin', new.admin_password)
    assert flow.read_profile('new')['manager_password'] == new.admin_password
    assert_never_locked(new)
    assert new.requests.logins('admin', ok=False) == []


def test_old_password_never_goes_over_http_when_the_old_manager_was_https(
        flow, simulated_manager, write_profile, run_cfy):
    old = simulated_manager('6.4', data='demo', ssh=True, ssl=True)
    new = simulated_manager('7.0', data='empty', ssh=True, **LOCK)
    write_profile('new', new)
    write_profile('old', old, protocol='https', certificate=old.ca_path)
    assert run_cfy('profiles', 'use', 'old').returncode == 0
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--timeout', '30')
    assert result.returncode == 1, result
    assert result.json['error']['id'] == 'credentials-changed-by-restore', result.json
    # the restore did give the admin the old password; the plugin did not send it
    assert flows.can_login(new, 'admin', old.admin_password)
    old_fingerprint = new.password_fingerprint(old.admin_password)
    assert old_fingerprint not in {e['password_fingerprint'] for e in list(new.requests)[:-1]}
    assert_never_locked(new)
    assert old.admin_password not in result.stdout + result.stderr


# -- item 8: the quiet database swap of 5.0.5-6.1 (also item 9 on 5.0.x) ---------------------

def test_505_target_gets_no_request_during_its_database_swap(flow, managers):
    """behaviour §12.7: the first request after the restore comes 60 s after it started; the
    simulated 5.0.5 swaps its database for 20 s and would fail the restore (deadlock) on
    any request meanwhile.  The plugin of hw-1 does not install there
    (--ignore-plugin-failure, behaviour §12.4)."""
    old, new = managers('4.4', '5.0.5', db_swap_seconds=20, deadlock_on_db_swap_traffic=True)
    new.faults.fail_plugin_install('hw-1')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--ignore-plugin-failure')
    assert result.returncode == 0, result
    assert 'db swap started' in new.events() and 'db swap ended' in new.events()
    assert new.db_swap_traffic() == []
    assert result.json['skipped_deployments'] == [
        {'deployment': 'hw-1', 'tenant': 'default_tenant', 'removed': False}]
    assert_never_locked(new)


# -- item 9: --ignore-plugin-failure ---------------------------------------------------------

def test_ignore_plugin_failure_on_455_reports_the_skipped_deployment(flow, managers):
    old, new = managers('4.2', '4.5.5')
    new.faults.fail_plugin_install('hw-1')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--ignore-plugin-failure')
    assert result.returncode == 0, result
    doc = result.json
    assert doc['skipped_deployments'] == [
        {'deployment': 'hw-1', 'tenant': 'default_tenant', 'removed': False}]
    assert any('hw-1' in line and 'plugins' in line for line in doc['left_to_do'])
    assert doc['reconciliation']['ok'] is True
    restores = flows.restore_executions(new)
    assert [r['parameters']['ignore_plugin_failure'] for r in restores] == [True]
    with open(os.path.join(flow.workspace(), 'report.json')) as stream:
        assert json.load(stream)['skipped_deployments'] == doc['skipped_deployments']
    with open(os.path.join(flow.workspace(), 'report.md')) as stream:
        assert 'hw-1' in stream.read()
    waited = flow.last_entry('wait-restore', 'succeeded')
    assert waited['details']['skipped_deployments'] == doc['skipped_deployments']


def test_ignore_plugin_failure_on_450_removes_the_deployment(flow, managers):
    """4.5.0-4.5.1 delete the deployment whose plugins failed: the skipped deployment is
    recorded as removed, and reconcile stops on it (nothing moved: no cut-over yet).  The
    operator who accepts the loss waives reconcile-differences on the same command: the
    waiver is accepted up front (issue 14 item 7: it never fails a later step) and the
    upgrade goes on from reconcile to the end, the removal still reported."""
    old, new = managers('4.2', '4.5.0')
    new.faults.fail_plugin_install('prod-db', tenant='t_prod')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--ignore-plugin-failure')
    assert result.returncode == 1, result
    doc = result.json
    assert doc['error']['step'] == 'reconcile', doc['error']
    assert doc['skipped_deployments'] == [
        {'deployment': 'prod-db', 'tenant': 't_prod', 'removed': True}]
    assert any('Recreate deployment prod-db' in line for line in doc['left_to_do'])
    diffs = flow.meta()['reconciliation']['differences']
    assert any(d['tenant'] == 't_prod' and d['kind'] == 'deployments' for d in diffs), diffs
    assert doc['cutover_at'] is None
    assert any('--waive reconcile-differences' in hint for hint in doc['error']['hints'])
    # the operator accepts the loss
    waived = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--ignore-plugin-failure',
                          '--waive', 'reconcile-differences', '--reason',
                          'prod-db is recreated by hand')
    assert waived.returncode == 0, waived
    done = waived.json
    assert done['cutover_at'] is not None
    assert done['reconciliation']['ok'] is False
    assert done['skipped_deployments'] == doc['skipped_deployments']
    assert any('Recreate deployment prod-db' in line for line in done['left_to_do'])
    waivers = [e for e in flow.journal() if e['event'] == 'waived']
    assert [w['details']['check'] for w in waivers] == ['reconcile-differences'], waivers
    assert waivers[0]['step'] == 'reconcile'
    assert len(flows.restore_executions(new)) == 1          # the restore was not repeated


def test_a_plugin_failure_without_the_option_names_it(flow, managers):
    old, new = managers('4.2', '4.5.5')
    new.faults.fail_plugin_install('hw-1')
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new')
    assert result.returncode == 1, result
    error = result.json['error']
    assert error['id'] == 'restore-failed'
    assert any('--ignore-plugin-failure' in hint for hint in error['hints'])


@pytest.mark.parametrize('version', ['4.4', '5.1', '7.0'])
def test_ignore_plugin_failure_is_refused_on_other_targets(flow, managers, version):
    old, new = managers('4.2', version)
    result = flow.upgrade('new-host', '--yes', '--to-profile', 'new', '--ignore-plugin-failure')
    assert result.returncode == 2, result
    error = result.json['error']
    assert error['id'] == 'ignore-plugin-failure-unsupported'
    assert '4.5.0 - 5.0.x' in error['message']
    assert flows.upload_requests(new) == [] and flows.restore_requests(new) == []
