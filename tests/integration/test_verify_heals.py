"""`cfy upgrade verify-heals` through the real `cfy` against simulated managers (issue 8).

The old manager is a simulated 4.1 (premium, two tenants with auto-heal deployments) whose
riemann really fires `heal` executions (tests.simulator AutoHeal) unless cloudify-riemann was
stopped; 3,000 other executions (older heals included) surround them. The new manager is a
simulated 7.0. A workspace records the cut-over, as new-host does.

Asserted: exit codes, the JSON document, the human table, what the old simulator received
(one executions listing per tenant, every workflow since issue 15: 4.1 ignores
`_all_tenants` on executions), and the journal/report in the workspace.  Issue 15: anything
else the old manager ran after the cut-over is reported (exit 4); a manager or tenant that
could not be checked makes the run incomplete (exit 5), and `status` never shows such a run,
nor one after an exit 4, as succeeded.
"""
import datetime

import pytest

from cloudify_upgrade_plugin.engine.workspace import Workspace
from tests.simulator import data as simdata
from tests.waiting import wait_until

OTHER_EXECUTIONS = 3000
UPGRADE_ID = 'upg-heals'


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '{0:03d}Z'.format(moment.microsecond // 1000)


def _add_executions(sim, count, cutover, after_every=0):
    """`count` executions spread over both tenants: before the cut-over (heals included),
    and with ``after_every`` N every Nth an ordinary workflow after it (the old manager
    acting after the cut-over)."""
    workflows = ('install', 'uninstall', 'scale', 'execute_operation', 'heal')
    deployments = {'default_tenant': 'web-1', 't_prod': 'prod-web'}
    with sim.state.lock:
        for n in range(count):
            tenant = 'default_tenant' if n % 2 else 't_prod'
            after = bool(after_every) and n % after_every == 0
            workflow = workflows[n % 4] if after else workflows[n % len(workflows)]
            offset = datetime.timedelta(seconds=n % 50 + 1)
            created = cutover + offset if after else cutover - datetime.timedelta(
                minutes=5) - datetime.timedelta(seconds=n)
            parameters = {'node_instance_id': 'old_{0}'.format(n)} \
                if workflow == 'heal' else {}
            record = simdata.new_execution(
                'other-{0:05d}'.format(n), workflow, tenant, 'admin', deployments[tenant],
                'web-app', parameters, _iso(created), is_system=False)
            record['status'] = 'terminated'
            sim.state.put('executions', record)


@pytest.fixture
def upgrade(simulated_manager, make_profile, cfy_workdir):
    """An old 4.1 and a new 7.0 manager, their profiles, and a workspace with a cut-over."""
    old = simulated_manager('4.1', data='demo', ssh=True)
    new = simulated_manager('7.0', data='demo')
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    cutover = now - datetime.timedelta(minutes=2)
    _add_executions(old, OTHER_EXECUTIONS, cutover)
    make_profile('old', old, ssh=True)
    make_profile('new', new, ssh=False)

    def workspace(healing_fenced):
        return Workspace.create(
            UPGRADE_ID, mode='new-host',
            source={'profile': 'old', 'version': '4.1.0', 'address': '127.0.0.1'},
            target={'profile': 'new', 'version': '7.0.4', 'address': '127.0.0.1'},
            cutover_at=_iso(cutover), healing_fenced=healing_fenced)

    return {'old': old, 'new': new, 'cutover': cutover, 'workspace': workspace}


def _fire_heals(old):
    """Let the old manager's riemann heal every auto-heal host now; wait for the heals."""
    expected = old.auto_heal.schedule_all(after=0.0)
    assert expected >= 2

    def done():
        return len(old.auto_heal.fired) + len(old.auto_heal.suppressed) >= expected
    wait_until(done, 30, 'the auto-heal triggers')
    return expected


def _heal_listings(sim):
    return [e for e in sim.requests.matching('GET', '/executions')
            if e['path'].endswith('/executions')]


def test_auto_heal_left_on_reports_exactly_the_heals_after_cutover(upgrade, run_cfy):
    old, new = upgrade['old'], upgrade['new']
    workspace = upgrade['workspace'](healing_fenced=False)
    _fire_heals(old)
    fired = set(old.auto_heal.fired)
    fired_records = {e['id']: e for e in old.state.all('executions') if e['id'] in fired}
    assert {r['tenant_name'] for r in fired_records.values()} == {'default_tenant', 't_prod'}
    # the new manager healed one of the same node instances: a likely duplicate
    twin = next(r for r in fired_records.values() if r['tenant_name'] == 't_prod')
    with new.state.lock:
        record = simdata.new_execution(
            'new-heal-1', 'heal', 't_prod', 'admin', twin['deployment_id'], 'web-app',
            dict(twin['parameters']), _iso(upgrade['cutover'] + datetime.timedelta(
                seconds=30)), is_system=False)
        record['status'] = 'terminated'
        new.state.put('executions', record)
    old.requests.clear()

    result = run_cfy('upgrade', 'verify-heals', '--json')
    assert result.returncode == 4, result
    doc = result.json
    assert doc['ok'] is False
    found = {f['old_execution_id']: f for f in doc['suspected_duplicates']}
    assert set(found) == fired
    for exec_id, finding in found.items():
        record = fired_records[exec_id]
        assert finding['tenant'] == record['tenant_name']
        assert finding['deployment_id'] == record['deployment_id']
        assert finding['node_instance_id'] == record['parameters']['node_instance_id']
        assert finding['new_execution_id'] == ('new-heal-1' if exec_id == twin['id']
                                               else None)
        assert any('cfy node-instances get ' + finding['node_instance_id'] in c
                   for c in finding['check'])
    assert {h['id'] for h in doc['old_manager']['heals']} == fired
    assert [h['id'] for h in doc['new_manager']['heals']] == ['new-heal-1']
    assert doc['old_manager']['healing']['state'] == 'active'
    assert doc['healing_active'] is True
    assert doc['complete'] is True and doc['gaps'] == [] and doc['not_checked'] == []
    assert doc['acted_after_cutover'] == []

    # requests proportional to tenants: one listing of every workflow per tenant, newest
    # first, that stops at the cut-over (3,000 older executions are not read)
    listings = _heal_listings(old)
    assert len(listings) == 2
    assert sorted(e['tenant'] for e in listings) == ['default_tenant', 't_prod']
    for entry in listings:
        assert 'workflow_id' not in entry['query']
        assert entry['query']['_sort'] == '-created_at'
        assert int(entry['query']['_size']) <= 1000
        assert entry['status'] == 200

    entries = workspace.journal.entries()
    assert [(e['step'], e['event']) for e in entries] == [
        ('verify-heals', 'started'), ('verify-heals', 'failed')]
    assert entries[-1]['details']['suspected_duplicates'] == len(fired)
    assert entries[-1]['details']['error_id'] == 'heals-suspicious'
    report = workspace.read_json('report.json')
    assert {f['old_execution_id'] for f in report['verify_heals']['suspected_duplicates']} \
        == fired


def test_human_output_is_a_table_with_the_node_instances(upgrade, run_cfy):
    old = upgrade['old']
    upgrade['workspace'](healing_fenced=False)
    _fire_heals(old)
    result = run_cfy('upgrade', 'verify-heals')
    assert result.returncode == 4, result
    output = result.stdout + result.stderr
    assert 'Suspected duplicate VMs' in output
    for exec_id in old.auto_heal.fired:
        assert exec_id in output
    record = next(e for e in old.state.all('executions') if e['id'] in old.auto_heal.fired)
    assert record['parameters']['node_instance_id'] in output
    assert 'STILL ACTIVE' in output


def test_riemann_stopped_before_cutover_means_no_heal(upgrade, run_cfy):
    old = upgrade['old']
    upgrade['workspace'](healing_fenced=True)
    old.systemctl('stop', 'cloudify-riemann')      # new-host's fencing, before the cut-over
    expected = _fire_heals(old)
    assert old.auto_heal.fired == [] and len(old.auto_heal.suppressed) == expected

    result = run_cfy('upgrade', 'verify-heals', '--json')
    assert result.returncode == 0, result
    doc = result.json
    assert doc['ok'] is True and doc['suspected_duplicates'] == []
    assert doc['old_manager']['heals'] == []
    assert doc['old_manager']['reachable'] is True
    assert doc['old_manager']['healing']['state'] == 'inactive'
    assert doc['healing_active'] is False


def test_old_manager_unreachable_new_manager_still_analysed(upgrade, run_cfy):
    old, new = upgrade['old'], upgrade['new']
    upgrade['workspace'](healing_fenced=False)
    with new.state.lock:
        record = simdata.new_execution(
            'new-heal-2', 'heal', 'default_tenant', 'admin', 'web-1', 'web-app',
            {'node_instance_id': 'web_host_x'}, _iso(upgrade['cutover'] + datetime.timedelta(
                seconds=10)), is_system=False)
        new.state.put('executions', record)
    old.stop()

    result = run_cfy('upgrade', 'verify-heals', '--json')
    assert result.returncode == 5, result       # incomplete, never 0
    doc = result.json
    assert doc['old_manager']['reachable'] is False
    assert doc['old_manager']['error']
    assert [h['id'] for h in doc['new_manager']['heals']] == ['new-heal-2']
    assert doc['suspected_duplicates'] == [] and doc['ok'] is True
    assert doc['complete'] is False
    [item] = doc['not_checked']
    assert item['manager'] == 'old' and item['tenant'] is None and item['reason']
    assert any('old manager' in gap for gap in doc['gaps'])
    assert doc['old_manager']['healing']['state'] == 'unknown'   # its host is gone too
    assert doc['old_manager']['healing']['reason']

    human = run_cfy('upgrade', 'verify-heals')
    assert human.returncode == 5, human
    assert 'not checked' in human.stderr + human.stdout
    assert 'Not verified' in human.stderr + human.stdout
    assert 'INCOMPLETE' in human.stderr + human.stdout
    status = run_cfy('upgrade', 'status', '--json')
    [row] = [s for s in status.json['steps'] if s['id'] == 'verify-heals']
    assert (row['status'], row['error_id']) == ('failed', 'heals-incomplete')


def test_exit_4_is_not_hidden_by_a_later_run_that_could_not_check(upgrade, run_cfy):
    old = upgrade['old']
    workspace = upgrade['workspace'](healing_fenced=False)
    _fire_heals(old)
    first = run_cfy('upgrade', 'verify-heals', '--json')
    assert first.returncode == 4, first
    old.stop()
    second = run_cfy('upgrade', 'verify-heals', '--json')
    assert second.returncode == 5, second
    assert second.json['earlier_result']['error_id'] == 'heals-suspicious'
    status = run_cfy('upgrade', 'status', '--json')
    [row] = [s for s in status.json['steps'] if s['id'] == 'verify-heals']
    assert (row['status'], row['error_id']) == ('failed', 'heals-suspicious')
    # the report was rewritten by the second run and still says so
    report = workspace.read_json('report.json')
    assert report['verify_heals']['complete'] is False
    assert report['verify_heals']['earlier_result']['error_id'] == 'heals-suspicious'
    with open(workspace.path('report.md')) as stream:
        assert 'heals-suspicious' in stream.read()


def test_old_manager_acting_after_the_cutover_is_reported(upgrade, run_cfy):
    old = upgrade['old']
    upgrade['workspace'](healing_fenced=True)
    old.systemctl('stop', 'cloudify-riemann')
    _add_executions(old, 12, upgrade['cutover'], after_every=6)
    acted = sorted(e['id'] for e in old.state.all('executions')
                   if e['id'] in ('other-00000', 'other-00006'))
    result = run_cfy('upgrade', 'verify-heals', '--json')
    assert result.returncode == 4, result
    doc = result.json
    assert doc['suspected_duplicates'] == []
    assert sorted(e['id'] for e in doc['acted_after_cutover']) == acted
    for execution in doc['acted_after_cutover']:
        assert execution['reason'] == 'the old manager acted after the cut-over'
        assert execution['workflow_id'] != 'heal'
    human = run_cfy('upgrade', 'verify-heals')
    assert human.returncode == 4, human
    assert 'The old manager acted after the cut-over: 2 execution(s)' in \
        human.stdout + human.stderr


def test_explicit_window_without_workspace(upgrade, run_cfy):
    old = upgrade['old']
    _fire_heals(old)
    since = _iso(upgrade['cutover'])
    result = run_cfy('upgrade', 'verify-heals', '--json', '--old-profile', 'old',
                     '--new-profile', 'new', '--since', since)
    assert result.returncode == 4, result
    assert {f['old_execution_id'] for f in result.json['suspected_duplicates']} == \
        set(old.auto_heal.fired)
    assert result.json['upgrade_id'] is None


def test_bad_since_is_a_usage_error(run_cfy):
    result = run_cfy('upgrade', 'verify-heals', '--json', '--old-profile', 'a',
                     '--new-profile', 'b', '--since', 'last tuesday')
    assert result.returncode == 2, result
    assert result.json['error']['id'] == 'bad-time'


@pytest.mark.parametrize('version, listings', [('3.4.2', 1), ('4.2', 1), ('5.0.5', 1)])
def test_other_old_versions(simulated_manager, make_profile, run_cfy, version, listings):
    """3.4.2 (no tenants) and 4.2+ (one `_all_tenants` listing) list heals in one request;
    5.0+ has no riemann, so its healing is not applicable."""
    old = simulated_manager(version, data='demo', ssh=True)
    new = simulated_manager('7.0', data='demo')
    make_profile('old', old, ssh=True)
    make_profile('new', new, ssh=False)
    cutover = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - \
        datetime.timedelta(minutes=1)
    expected = old.auto_heal.schedule_all(after=0.0) if version != '5.0.5' else 0
    wait_until(lambda: len(old.auto_heal.fired) + len(old.auto_heal.suppressed) >= expected,
               30, 'the auto-heal triggers')
    assert bool(old.auto_heal.fired) is (version != '5.0.5')
    old.requests.clear()
    result = run_cfy('upgrade', 'verify-heals', '--json', '--old-profile', 'old',
                     '--new-profile', 'new', '--since', _iso(cutover))
    doc = result.json
    assert {f['old_execution_id'] for f in doc['suspected_duplicates']} == \
        set(old.auto_heal.fired)
    assert result.returncode == (4 if old.auto_heal.fired else 0), result
    entries = _heal_listings(old)
    assert len(entries) == listings
    assert 'workflow_id' not in entries[0]['query']      # every workflow of the old one
    assert ('_all_tenants' in entries[0]['query']) is (version != '3.4.2')
    state = doc['old_manager']['healing']['state']
    assert state == ('not-applicable' if version == '5.0.5' else 'active')
