"""Unit tests of the restore wait's schedule and of its failed-login budget (issue 14),
with a fake clock: waits.wait_for_restore, restore_wait (quiet period, LoginGate).

behaviour §12.7: no request to a 5.0.5-6.1 target for 60 s after its restore started, then slow
polls and no event reading; behaviour §3.8 / §12.10: around the admin password switch never
more than 3 failed logins in a row, and no password at all while the restore flag is up.
"""
import datetime

import pytest

from cloudify_upgrade_plugin import clock as clocks
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import restore_wait, waits
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.logins import LEDGER

START = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)


def execution(fakes, status):
    return fakes.Response(200, {'id': 'ex1', 'status': status,
                                'workflow_id': 'restore_snapshot', 'error': ''})


class Timeline:
    """A fake target: which password works and what the restore says, by fake time."""

    def __init__(self, fakes, clock, target_until=1e9, source_from=1e9, flag_until=0.0,
                 ends_at=10.0):
        self.fakes = fakes
        self.clock = clock
        self.start = clock.now
        self.target_until = target_until
        self.source_from = source_from
        self.flag_until = flag_until
        self.ends_at = ends_at
        self.auth = {}
        self.seen = []          # (elapsed, path, who)

    def elapsed(self):
        return self.clock.now - self.start

    def __call__(self, call):
        t = self.elapsed()
        who = self.auth.get(call.headers.get('Authorization'))
        self.seen.append((t, call.path, who))
        if call.path.endswith('/snapshot-status'):
            return self.fakes.Response(200, {'status': 'running' if t < self.flag_until
                                             else 'not-running'})
        if call.path.endswith('/ok'):
            return self.fakes.Response(200, 'OK')
        if who is None:
            return self.fakes.error(401, 'unauthorized_error')
        works = (who == 'target' and t < self.target_until) or \
            (who == 'source' and t >= self.source_from)
        if not works:
            return self.fakes.error(401, 'unauthorized_error')
        return execution(self.fakes, 'terminated' if t >= self.ends_at else 'started')

    def logins(self):
        return [(t, who) for t, path, who in self.seen if who is not None]

    def failures_in_a_row(self):
        worst = run = 0
        for t, who in self.logins():
            works = (who == 'target' and t < self.target_until) or \
                (who == 'source' and t >= self.source_from)
            run = 0 if works else run + 1
            worst = max(worst, run)
        return worst


def target_and_source(make_manager, version, timeline):
    target, session = make_manager(version, timeline, password='target-pw')
    source = target.with_credentials(Credentials('admin', 'source-pw', label='source'))
    timeline.auth[target.client._client.headers['Authorization']] = 'target'
    timeline.auth[source.client._client.headers['Authorization']] = 'source'
    return target, source, session


# -- behaviour §12.7: the quiet database swap --------------------------------------------------

@pytest.mark.parametrize('version', ['5.0.5', '5.1', '6.0', '6.1'])
def test_no_request_for_60s_then_slow_polls_on_505_to_61(make_manager, fakes, clock,
                                                         version):
    timeline = Timeline(fakes, clock, ends_at=90.0)
    target, _, session = target_and_source(make_manager, version, timeline)
    result = waits.wait_for_restore(target, 'ex1', 3600, started_at=clocks.isoformat(START),
                                    now=START, clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    times = [t for t, _, _ in timeline.seen]
    assert times[0] >= restore_wait.DB_SWAP_QUIET == 60.0
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:])]
    assert gaps and all(gap == restore_wait.QUIET_POLL == 5.0 for gap in gaps)
    assert not any(path.endswith('/events') for _, path, _ in timeline.seen)
    # the quiet minute was slept in steps of at most 30 s (a progress line each)
    assert clock.sleeps[:2] == [30.0, 30.0]


def test_a_resumed_wait_keeps_only_what_is_left_of_the_quiet_minute(make_manager, fakes,
                                                                    clock):
    timeline = Timeline(fakes, clock, ends_at=30.0)
    target, _, _ = target_and_source(make_manager, '5.0.5', timeline)
    started = clocks.isoformat(START)
    later = START + datetime.timedelta(seconds=45)
    assert restore_wait.quiet_left('5.0.5', started, now=later) == 15.0
    assert restore_wait.quiet_left('5.0.5', started,
                                   now=START + datetime.timedelta(minutes=5)) == 0.0
    assert restore_wait.quiet_left('5.0.5', None) == 60.0
    waits.wait_for_restore(target, 'ex1', 3600, started_at=started, now=later, clock=clock,
                           sleep=clock.sleep)
    assert timeline.seen[0][0] == 15.0


@pytest.mark.parametrize('version', ['4.6', '5.0.0', '6.2', '6.4', '7.0'])
def test_other_targets_are_polled_at_once_and_often(make_manager, fakes, clock, version):
    assert restore_wait.quiet_left(version, clocks.isoformat(START), now=START) == 0.0
    timeline = Timeline(fakes, clock, ends_at=10.0)
    target, _, _ = target_and_source(make_manager, version, timeline)
    waits.wait_for_restore(target, 'ex1', 3600, started_at=clocks.isoformat(START),
                           now=START, clock=clock, sleep=clock.sleep)
    times = [t for t, _, _ in timeline.seen]
    assert times[0] == 0.0
    assert max(b - a for a, b in zip(times, times[1:])) <= waits.RESTORE_POLL_CAP


# -- behaviour §3.8 / §12.10: the password switch within the budget ---------------------------

def test_7x_switch_sends_no_password_while_the_flag_is_up(make_manager, fakes, clock):
    """7.0 legacy route: the target's password stops at the REST restart (t=5), the source
    admin is installed by the post-restore commands, then the flag drops (t=12)."""
    timeline = Timeline(fakes, clock, target_until=5.0, source_from=11.0, flag_until=12.0,
                        ends_at=9.0)
    target, source, _ = target_and_source(make_manager, '7.0', timeline)
    switched = []
    result = waits.wait_for_restore(
        target, 'ex1', 3600, logins=lambda how: [source, target], on_switch=switched.append,
        clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    assert switched == [source]
    assert timeline.failures_in_a_row() == 1
    refused_at = min(t for t, who in timeline.logins() if t >= 5.0)
    assert not [t for t, who in timeline.logins() if refused_at < t < 12.0]
    assert LEDGER.failures(target.address, 'admin') == 0


def test_no_flag_target_tries_one_password_per_delay(make_manager, fakes, clock):
    """4.6-5.0.0: no restore flag; after a refusal one password every RELOGIN_DELAYS."""
    timeline = Timeline(fakes, clock, target_until=5.0, source_from=30.0, ends_at=9.0)
    target, source, _ = target_and_source(make_manager, '4.6', timeline)
    result = waits.wait_for_restore(target, 'ex1', 3600,
                                    logins=lambda how: [source, target][:1 if how == 'delay'
                                                                        else 2],
                                    clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    after = [(round(t, 3), who) for t, who in timeline.logins() if t >= 5.0]
    first = after[0][0]
    assert after[0][1] == 'target'
    assert after[1] == (round(first + restore_wait.RELOGIN_DELAYS[0], 3), 'source')
    assert after[2][0] == round(after[1][0] + restore_wait.RELOGIN_DELAYS[1], 3)
    assert timeline.failures_in_a_row() == 2


def test_passwords_still_refused_after_the_restore_end_in_a_clear_error(
        make_manager, fakes, clock):
    """Neither password works once the flag is down: one try each, then stop (<= 3)."""
    timeline = Timeline(fakes, clock, target_until=2.0, flag_until=6.0, ends_at=9.0)
    target, source, _ = target_and_source(make_manager, '7.0', timeline)
    with pytest.raises(UpgradeError) as info:
        waits.wait_for_restore(target, 'ex1', 3600, logins=lambda how: [source, target],
                               clock=clock, sleep=clock.sleep)
    assert info.value.error_id in ('credentials-refused', 'failed-logins-limit')
    assert timeline.failures_in_a_row() <= 3
    assert clock.now - 1000.0 < 60


def test_the_budget_spans_several_waits_of_one_process(make_manager, fakes, clock):
    """Failures recorded by an earlier wait count: with 2 already, one more at most."""
    timeline = Timeline(fakes, clock, target_until=0.0, flag_until=0.0)
    target, source, _ = target_and_source(make_manager, '7.0', timeline)
    LEDGER.record(target.address, 'admin', ok=False)
    LEDGER.record(target.address, 'admin', ok=False)
    with pytest.raises(UpgradeError) as info:
        waits.wait_for_restore(target, 'ex1', 3600, logins=lambda how: [source, target],
                               clock=clock, sleep=clock.sleep)
    assert info.value.error_id in ('credentials-refused', 'failed-logins-limit')
    assert len(timeline.logins()) == 1


def test_login_gate_waits_for_the_flag_then_says_nothing_will_change(make_manager, fakes,
                                                                     clock):
    timeline = Timeline(fakes, clock, flag_until=40.0)
    target, _, session = target_and_source(make_manager, '7.0', timeline)
    gate = restore_wait.LoginGate(target, clock() + 600, clock=clock, sleep=clock.sleep)
    assert gate.wait(0) == 'flag'
    assert timeline.elapsed() >= 40.0
    assert all(who is None for _, _, who in timeline.seen)
    with pytest.raises(UpgradeError) as info:
        gate.wait(1)
    assert info.value.error_id == 'credentials-refused'


def test_login_gate_without_time_left_gives_up(make_manager, fakes, clock):
    timeline = Timeline(fakes, clock)
    target, _, _ = target_and_source(make_manager, '4.6', timeline)
    gate = restore_wait.LoginGate(target, clock() + 5, clock=clock, sleep=clock.sleep)
    with pytest.raises(UpgradeError) as info:
        gate.wait(0)
    assert info.value.error_id == 'credentials-refused'
    assert timeline.seen == []


def test_stay_quiet_says_where_it_stands(caplog):
    slept = []
    restore_wait.stay_quiet('manager X', 75, sleep=slept.append)
    assert slept == [30.0, 30.0, 15.0]
    restore_wait.stay_quiet('manager X', 0, sleep=slept.append)
    assert slept == [30.0, 30.0, 15.0]
