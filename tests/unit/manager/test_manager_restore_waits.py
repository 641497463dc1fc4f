"""The waits after a restore (outage, grace, health) and for maintenance mode: fake time."""
import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import waits


def _up(fakes):
    return fakes.error(401, 'unauthorized_error')


def test_outage_is_seen_when_the_rest_service_goes_away(make_manager, fakes, clock):
    start = clock.now
    manager, session = make_manager('4.2', lambda call: _up(fakes) if clock.now - start < 3
                                    else fakes.refused())
    assert waits.wait_for_outage(manager, 10, clock=clock, sleep=clock.sleep,
                                 session=session) is True
    assert 3 <= clock.now - start < 4
    assert all(c.path == '/api/v3.1/version' and 'Authorization' not in c.headers
               for c in session.calls)


def test_no_outage_within_the_grace_goes_on(make_manager, fakes, clock):
    manager, session = make_manager('4.2', lambda call: _up(fakes))
    assert waits.wait_for_outage(manager, 5, clock=clock, sleep=clock.sleep,
                                 session=session) is False
    assert 5 <= clock.now - 1000.0 < 6
    assert max(clock.sleeps) == 0.5


def test_a_5xx_page_counts_as_down(make_manager, fakes, clock):
    manager, session = make_manager('6.4', lambda call: fakes.Response(
        503, content_type='text/html', text='<html>Service Unavailable</html>'))
    assert waits.wait_for_outage(manager, 5, clock=clock, sleep=clock.sleep,
                                 session=session) is True
    assert clock.sleeps == []


@pytest.mark.parametrize('timeout, since_end, by_manager_clock, reboot, expected', [
    (3600, 0, True, None, 60.0),          # the full grace right after the end
    (3600, 20, True, None, 40.0),         # counted from the end, by the manager's clock
    (30, 5, False, None, 25.0),           # never more than --timeout
    (3600, 70, True, None, -10.0),        # too late: the outage came while nobody watched
    (3600, 2, True, True, 11.0),          # certificates in place: sleep 3 + 10 from the end
    (3600, 2, False, True, 10.0),         # ... counted from now without the manager's clock
    (3600, 2, True, False, 58.0),         # certificates not in place yet: the full grace
])
def test_outage_grace(timeout, since_end, by_manager_clock, reboot, expected):
    asked = []

    def imminent():
        asked.append(True)
        return reboot
    grace = waits.outage_grace(timeout, since_end, by_manager_clock,
                               imminent if reboot is not None else None)
    assert grace == pytest.approx(expected)
    assert len(asked) == (1 if reboot is not None else 0)


def test_outage_grace_does_not_look_at_the_host_when_it_is_too_late():
    def imminent():
        raise AssertionError('no SSH once the grace is over')
    assert waits.outage_grace(3600, 90, True, imminent) < 0


def test_ended_ago_by_the_manager_clock(make_manager, fakes):
    manager, _ = make_manager('4.4', lambda call: fakes.Response(
        401, {}, headers={'Date': 'Wed, 01 May 2024 12:00:30 GMT'}))
    assert waits.ended_ago(manager, {'ended_at': '2024-05-01T12:00:05.000Z'}) == 25.0
    assert waits.ended_ago(manager, {'ended_at': None}) is None
    assert waits.ended_ago(manager, None) is None
    ahead = {'ended_at': '2024-05-01T12:01:00.000Z'}
    assert waits.ended_ago(manager, ahead) == 0.0


def test_ended_ago_without_a_date_header(make_manager, fakes):
    manager, _ = make_manager('4.4', lambda call: fakes.refused())
    assert waits.ended_ago(manager, {'ended_at': '2024-05-01T12:00:05.000Z'}) is None


def _status(fakes, state, failing=()):
    services = {'rest': {'status': 'Active'}}
    services.update({name: {'status': 'Inactive'} for name in failing})
    return fakes.Response(200, {'status': state, 'services': services})


def test_healthy_at_once(make_manager, fakes, clock):
    manager, _ = make_manager('6.4', lambda call: _status(fakes, 'OK'))
    assert waits.wait_until_healthy(manager, 60, clock=clock, sleep=clock.sleep) == 'ok'
    assert clock.sleeps == []


def test_health_waits_for_the_services_then_warns(make_manager, fakes, clock):
    start = clock.now
    manager, _ = make_manager('6.4', lambda call: _status(fakes, 'OK') if clock.now - start > 4
                              else _status(fakes, 'Degraded', ['mgmtworker']))
    assert waits.wait_until_healthy(manager, 60, clock=clock, sleep=clock.sleep) == 'ok'
    stuck, _ = make_manager('6.4', lambda call: _status(fakes, 'Fail', ['nginx']))
    assert waits.wait_until_healthy(stuck, 10, clock=clock, sleep=clock.sleep) == \
        'fail: nginx'


def test_health_that_cannot_be_read_is_a_failure_after_the_grace(make_manager, fakes, clock):
    manager, _ = make_manager(
        '6.4', lambda call: fakes.error(400, 'bad_request_error', 'no status'))
    result = waits.wait_until_healthy(manager, 5, clock=clock, sleep=clock.sleep)
    assert result.startswith('fail: ') and 'no status' in result


def test_maintenance_wait_until_activated(make_manager, fakes, clock):
    start = clock.now
    manager, _ = make_manager('4.5', lambda call: fakes.Response(200, {
        'status': 'activated'} if clock.now - start > 3 else {
        'status': 'activating', 'remaining_executions': [{'id': 'e1'}]}))
    assert waits.wait_for_maintenance(manager, 60, clock=clock, sleep=clock.sleep) == \
        'activated'
    assert max(clock.sleeps) <= 5.0


def test_maintenance_wait_times_out_with_what_to_do(make_manager, fakes, clock):
    manager, _ = make_manager('4.5', lambda call: fakes.Response(200, {
        'status': 'activating', 'remaining_executions': [{'id': 'e1'}]}))
    with pytest.raises(UpgradeError) as info:
        waits.wait_for_maintenance(manager, 30, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'maintenance-not-activated'
    assert 30 <= clock.now - 1000.0 < 36
