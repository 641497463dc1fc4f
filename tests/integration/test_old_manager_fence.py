"""The old manager after the cut-over (issue 15 items 2 and 3), through the real `cfy`.

new-host from a 5.x+ old manager fences it after the point of no return: on 5.2.x the enabled
execution schedules of every tenant are disabled (its scheduler ignores maintenance mode,
behaviour §12.5), then maintenance mode is activated (6.0+: the scheduler skips while it is);
``--no-fence-old-manager`` records a waiver instead.  verify-heals then reads the old manager
through maintenance mode where an admin may (X-BYPASS-MAINTENANCE, 5.2+), and exits 5 where it
cannot (5.1: the bypass is for the manager host only; a stopped manager).

Asserted on the simulators: the schedule rows and the maintenance state of the old manager,
every execution it started (``started_executions``) once its scheduler's clock is moved past
the schedule's due time, the journal, the JSON documents, `status`, and the undo commands
run as printed through the real `cfy`.
"""
import pytest

from cloudify_upgrade_plugin import clock
from tests import flows
from tests.simulator import schedules as simschedules

NEW_HOST = ('--to-profile', 'new', '--yes')


@pytest.fixture
def upgraded(flow, simulated_manager, make_profile):
    """upgraded(old_version, *new_host_options) -> (old, new, new-host result): a demo old
    manager upgraded to an empty 7.0 with new-host (which must succeed)."""

    def make(old_version, *extra):
        old = simulated_manager(old_version, data='demo', ssh=True)
        new = simulated_manager('7.0', data='empty', ssh=True)
        make_profile('new', new)
        make_profile('old', old)
        flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
        result = flow.upgrade('new-host', *(NEW_HOST + tuple(extra)))
        assert result.returncode == 0, result
        return old, new, result
    return make


def _schedule(sim, sid, tenant='default_tenant'):
    with sim.state.lock:
        return dict(next(s for s in sim.state.all('execution_schedules')
                         if s['id'] == sid and s['tenant_name'] == tenant))


def _past_due(sim, sid, tenant='default_tenant'):
    """Move the old manager's scheduler clock 30 s past the schedule's next due time (inside
    its slip window: an enabled schedule fires then); the ids it started."""
    due = simschedules.parse_time(_schedule(sim, sid, tenant)['next_occurrence'])
    return sim.scheduler.advance((due - sim.scheduler.now()).total_seconds() + 30)


def _cutover_epoch(flow):
    return clock.parse(flow.meta()['cutover_at']).timestamp()


def _verify_heals_row(flow):
    status = flow.run('upgrade', 'status', '--upgrade-id', flow.upgrade_id, '--json')
    assert status.returncode == 0, status
    [row] = [s for s in status.json['steps'] if s['id'] == 'verify-heals']
    return row['status'], row.get('error_id'), status.json['next']


def test_52_old_manager_fires_nothing_and_its_schedule_comes_back_from_the_journal(
        flow, upgraded):
    old, _, result = upgraded('5.2.7')
    assert _schedule(old, 'nightly-check')['enabled'] is False
    assert old.maintenance_state()['status'] == 'activated'
    # the scheduler's clock past the due time: nothing starts (it would, enabled: below)
    assert _past_due(old, 'nightly-check') == []
    assert old.started_executions(since=_cutover_epoch(flow)) == []

    entry = flow.last_entry('fence-old-manager', 'succeeded')
    assert entry['details']['maintenance'] == 'activated'
    assert entry['details']['schedules_disabled'] == [
        {'tenant': 'default_tenant', 'id': 'nightly-check', 'deployment_id': 'hw-1',
         'workflow_id': 'execute_operation'}]       # weekly-backup was disabled already
    fence = result.json['old_manager_fence']
    assert fence['undo'] == ['cfy profiles use old', 'cfy maintenance-mode deactivate',
                             'cfy deployments schedule enable hw-1 nightly-check -t '
                             'default_tenant']
    # the human output and the report say what was done and how to undo it
    human = flow.run('upgrade', 'new-host', '--upgrade-id', flow.upgrade_id, *NEW_HOST)
    assert human.returncode == 0, human
    output = human.stdout + human.stderr
    assert 'Old manager fenced: maintenance mode activated; execution schedules disabled: ' \
        'default_tenant/hw-1/nightly-check.' in output
    assert '`cfy deployments schedule enable hw-1 nightly-check -t default_tenant`' in output
    report = flows.read_json(flow.workspace() + '/report.json')
    assert report['old_manager_fence']['undo'] == fence['undo']
    # verify-heals reads the 5.2 old manager through maintenance mode (an admin's bypass)
    heals = flow.upgrade('verify-heals')
    assert heals.returncode == 0, heals
    assert heals.json['complete'] is True and heals.json['not_checked'] == []
    assert heals.json['acted_after_cutover'] == []
    assert _verify_heals_row(flow) == ('succeeded', None, None)

    # a rollback: the printed commands, run as they are, give the schedule back
    for command in fence['undo']:
        ran = flow.run(*command.split()[1:])
        assert ran.returncode == 0, ran
    assert old.maintenance_state()['status'] == 'deactivated'
    assert _schedule(old, 'nightly-check')['enabled'] is True
    assert _schedule(old, 'weekly-backup', 't_prod')['enabled'] is False
    assert len(_past_due(old, 'nightly-check')) == 1


def test_52_waiver_leaves_the_schedules_running_and_verify_heals_says_so(flow, upgraded):
    old, _, result = upgraded('5.2.7', '--no-fence-old-manager')
    assert old.maintenance_state()['status'] == 'deactivated'
    assert _schedule(old, 'nightly-check')['enabled'] is True
    waivers = [e for e in flow.journal() if e['event'] == 'waived'
               and e['details'].get('check') == 'fence-old-manager']
    assert [w['details']['reason'] for w in waivers] == ['--no-fence-old-manager']
    assert result.json['old_manager_fence']['waived'] is True
    fired = _past_due(old, 'nightly-check')
    assert len(fired) == 1
    heals = flow.upgrade('verify-heals')
    assert heals.returncode == 4, heals
    [acted] = heals.json['acted_after_cutover']
    assert acted['id'] == fired[0] and acted['workflow_id'] == 'execute_operation'
    assert acted['reason'] == 'the old manager acted after the cut-over'
    assert _verify_heals_row(flow)[:2] == ('failed', 'heals-suspicious')


def test_6x_old_manager_is_in_maintenance_and_its_scheduler_skips(flow, upgraded):
    old, _, result = upgraded('6.4')
    assert old.maintenance_state()['status'] == 'activated'
    # 6.0+ schedulers skip in maintenance mode: the schedules stay as they were
    assert _schedule(old, 'nightly-check')['enabled'] is True
    assert flow.last_entry('fence-old-manager', 'succeeded')['details'] == {
        'maintenance': 'activated', 'schedules_disabled': []}
    assert _past_due(old, 'nightly-check') == []
    assert old.started_executions(since=_cutover_epoch(flow)) == []
    assert result.json['old_manager_fence']['undo'] == ['cfy profiles use old',
                                                        'cfy maintenance-mode deactivate']
    heals = flow.upgrade('verify-heals')
    assert heals.returncode == 0, heals
    assert heals.json['old_manager']['error'] is None


def test_6x_fence_waived(flow, upgraded):
    old, _, result = upgraded('6.4', '--no-fence-old-manager')
    assert old.maintenance_state()['status'] == 'deactivated'
    assert [e['details'] for e in flow.journal() if e['event'] == 'waived'] == [
        {'check': 'fence-old-manager', 'reason': '--no-fence-old-manager'}]
    assert result.json['old_manager_fence'] == {'waived': True, 'maintenance': None}


def test_51_old_manager_in_maintenance_cannot_be_checked_exit_5(flow, upgraded):
    old, _, _ = upgraded('5.1')
    assert old.maintenance_state()['status'] == 'activated'
    before = len(old.requests)
    heals = flow.upgrade('verify-heals')
    assert heals.returncode == 5, heals
    doc = heals.json
    assert doc['complete'] is False and doc['ok'] is True
    [item] = doc['not_checked']
    assert item['manager'] == 'old' and item['tenant'] is None
    assert 'maintenance mode' in item['reason'] and 'before 5.2' in item['reason']
    listings = flows.requests_matching(old, 'GET', r'/executions$', start=before)
    assert listings and {r['status'] for r in listings} == {503}
    assert _verify_heals_row(flow) == ('failed', 'heals-incomplete',
                                       'cfy upgrade verify-heals --upgrade-id ' +
                                       flow.upgrade_id)
    # and with the old manager stopped: still exit 5, still not succeeded
    old.stop()
    stopped = flow.upgrade('verify-heals')
    assert stopped.returncode == 5, stopped
    assert stopped.json['old_manager']['reachable'] is False
    assert _verify_heals_row(flow)[:2] == ('failed', 'heals-incomplete')
    with open(flow.workspace() + '/report.md') as stream:
        report = stream.read()
    assert 'heals-incomplete' in report
