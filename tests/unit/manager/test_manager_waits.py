"""Unit tests of manager/waits.py: a real Manager over a fake transport and a fake clock."""
import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.waits import (
    wait_for_execution, wait_for_rest, wait_for_restore_flag)


def execution(fakes, status, error='', workflow='restore_snapshot'):
    return fakes.Response(200, {'id': 'ex1', 'status': status, 'workflow_id': workflow,
                                'error': error})


def scripted(fakes, clock, timeline, events=None):
    """Answer /executions/ex1 by elapsed fake time: timeline = [(until, answer), ...]."""
    start = clock.now

    def handler(call):
        if call.path.endswith('/events'):
            offset = int(call.q('_offset'))
            size = int(call.q('_size'))
            items = (events or [])[offset:offset + size]
            return fakes.Response(200, {'items': items, 'metadata': {'pagination': {
                'total': len(events or []), 'offset': offset, 'size': size}}})
        elapsed = clock.now - start
        for until, answer in timeline:
            if elapsed < until:
                return answer() if callable(answer) else answer
        last = timeline[-1][1]
        return last() if callable(last) else last
    return handler


def test_polls_fast_then_backs_off_to_the_cap(make_manager, fakes, clock):
    handler = scripted(fakes, clock, [(20, execution(fakes, 'started')),
                                      (1e9, execution(fakes, 'terminated'))])
    manager, session = make_manager('4.2', handler)
    result = wait_for_execution(manager, 'ex1', timeout=600, clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    assert clock.sleeps[:4] == [0.25, 0.375, 0.5625, 0.84375]
    assert max(clock.sleeps) == 2.0
    # the end was noticed within one capped interval
    assert clock.now - 1000.0 - 20 <= 2.0
    assert all(call.path == '/api/v3.1/executions/ex1' for call in session.calls)


def test_waits_across_a_10s_rest_outage(make_manager, fakes, clock, sleeps):
    timeline = [
        (1, execution(fakes, 'started')),
        (4, lambda: fakes.refused()),
        (7, fakes.Response(502, content_type='text/html', text='<html>Bad Gateway</html>')),
        (9, fakes.error(503, 'internal_server_error')),
        (11, fakes.error(404, 'not_found_error', 'Requested Execution was not found')),
        (13, execution(fakes, 'started')),
        (1e9, execution(fakes, 'terminated')),
    ]
    manager, session = make_manager('4.2', scripted(fakes, clock, timeline))
    result = wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    assert clock.now - 1000.0 >= 13
    # the wait drives its own polling: no hidden retries inside each poll
    assert sleeps == []
    assert len(session.calls) > 10


def test_failed_execution_raises_with_the_manager_error(make_manager, fakes, clock):
    error = ('Traceback (most recent call last):\n  File "x"\nNonRecoverableError: Cannot '
             'restore a newer manager\'s snapshot on this manager [5.0.5 > 4.6.0]\n')
    manager, _ = make_manager('4.6', scripted(fakes, clock, [
        (1e9, execution(fakes, 'failed', error=error))]))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'execution-failed'
    assert "Cannot restore a newer manager's snapshot" in info.value.message
    assert 'ex1' in info.value.message and 'restore_snapshot' in info.value.message
    assert 'Traceback' in info.value.details['error']


def test_cancelled_execution(make_manager, fakes, clock):
    manager, _ = make_manager('7.0.4', scripted(fakes, clock, [
        (1e9, execution(fakes, 'cancelled'))]))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'execution-cancelled'


def test_timeout_names_the_execution_and_how_to_check(make_manager, fakes, clock):
    manager, session = make_manager('4.2', scripted(fakes, clock, [
        (1e9, execution(fakes, 'started'))]))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=30, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'execution-timeout'
    assert 'ex1' in info.value.message and 'started' in info.value.message
    assert any('cfy executions get ex1' in hint for hint in info.value.hints)
    assert clock.now - 1000.0 == pytest.approx(30)


def test_timeout_during_an_outage_says_so(make_manager, fakes, clock):
    manager, _ = make_manager('4.2', lambda call: fakes.refused(call.url))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=5, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'execution-timeout'
    assert 'not answering' in info.value.message


def test_persistent_auth_failure_is_not_waited_out_forever(make_manager, fakes, clock):
    """A wrong password is not polled for the grace any more: after 3 refusals in a row
    the failed-login budget stops it (issue 14; a hardened manager locks at the 5th)."""
    manager, session = make_manager('4.2', lambda call: fakes.error(401, 'unauthorized_error'))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=3600, clock=clock, sleep=clock.sleep,
                           client_error_grace=20)
    assert info.value.error_id == 'failed-logins-limit'
    assert len(session.calls) == 3


def test_brief_auth_failure_while_rest_restarts_is_tolerated(make_manager, fakes, clock):
    manager, _ = make_manager('4.2', scripted(fakes, clock, [
        (5, fakes.error(401, 'unauthorized_error')),
        (1e9, execution(fakes, 'terminated'))]))
    result = wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep,
                                client_error_grace=20)
    assert result['status'] == 'terminated'


def test_bad_request_is_raised_at_once(make_manager, fakes, clock):
    manager, _ = make_manager('4.2', lambda call: fakes.error(400, 'bad_parameters_error'))
    with pytest.raises(UpgradeError) as info:
        wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep)
    assert info.value.error_id == 'manager-request-failed'
    assert clock.sleeps == []


def test_events_are_streamed_in_order_and_once(make_manager, fakes, clock):
    events = [{'message': 'event {0}'.format(i)} for i in range(250)]
    manager, session = make_manager('4.2', scripted(fakes, clock, [
        (3, execution(fakes, 'started')), (1e9, execution(fakes, 'terminated'))],
        events=events))
    seen = []
    wait_for_execution(manager, 'ex1', timeout=60, on_event=seen.append, clock=clock,
                       sleep=clock.sleep)
    assert seen == events
    event_calls = [c for c in session.calls if c.path.endswith('/events')]
    assert all(c.q('execution_id') == 'ex1' and c.q('_size') for c in event_calls)
    assert all(c.q('_offset') is not None for c in event_calls)


def test_a_broken_event_callback_does_not_end_the_wait(make_manager, fakes, clock):
    manager, _ = make_manager('4.2', scripted(fakes, clock, [
        (2, execution(fakes, 'started')), (1e9, execution(fakes, 'terminated'))],
        events=[{'message': 'x'}]))

    def explode(event):
        raise RuntimeError('callback bug')
    result = wait_for_execution(manager, 'ex1', timeout=60, on_event=explode, clock=clock,
                                sleep=clock.sleep)
    assert result['status'] == 'terminated'


def test_wait_for_rest_on_old_managers_uses_the_version_call(make_manager, fakes, clock):
    manager, session = make_manager('4.2', scripted(fakes, clock, [
        (6, lambda: fakes.refused()),
        (1e9, fakes.Response(200, {'version': '4.2'}))]))
    result = wait_for_rest(manager, timeout=60, clock=clock, sleep=clock.sleep)
    assert result['up'] is True and result['auth_ok'] is True
    assert result['waited'] >= 6
    assert {c.path for c in session.calls} == {'/api/v3.1/version'}


def test_wait_for_rest_reports_changed_credentials(make_manager, fakes, clock):
    manager, _ = make_manager('4.4', lambda call: fakes.error(401, 'unauthorized_error'))
    result = wait_for_rest(manager, timeout=60, clock=clock, sleep=clock.sleep)
    assert result == {'up': True, 'auth_ok': False, 'healthy': None, 'waited': 0.0,
                      'manager': None}


def test_wait_for_rest_finds_the_credentials_that_work(make_manager, fakes, clock):
    def handler(call):
        if call.headers.get('Authorization') == old_auth:
            return fakes.Response(200, {'version': '4.6.0'})
        return fakes.error(401, 'unauthorized_error')
    manager, session = make_manager('4.6', handler, password='target-pw')
    source_admin = manager.with_credentials(Credentials('admin', 'source-pw'))
    old_auth = source_admin.client._client.headers['Authorization']
    result = wait_for_rest(manager, timeout=60, clock=clock, sleep=clock.sleep,
                           alternatives=[source_admin])
    assert result['auth_ok'] is True and result['manager'] is source_admin


def test_wait_for_execution_switches_to_credentials_that_work(make_manager, fakes, clock):
    state = {'changed': False}

    def handler(call):
        if clock.now - 1000.0 >= 2:
            state['changed'] = True     # the restore put the source admin's password in
        wanted = old_auth if state['changed'] else new_auth
        if call.headers.get('Authorization') != wanted:
            return fakes.error(401, 'unauthorized_error')
        status = 'terminated' if clock.now - 1000.0 >= 5 else 'started'
        return execution(fakes, status)
    manager, session = make_manager('4.6', handler, password='target-pw')
    source_admin = manager.with_credentials(Credentials('admin', 'source-pw'))
    new_auth = manager.client._client.headers['Authorization']
    old_auth = source_admin.client._client.headers['Authorization']
    switched = []
    result = wait_for_execution(manager, 'ex1', timeout=60, clock=clock, sleep=clock.sleep,
                                alternatives=[source_admin], on_switch=switched.append,
                                client_error_grace=1)
    assert result['status'] == 'terminated'
    assert switched == [source_admin]
    assert session.calls[-1].headers['Authorization'] == old_auth


def test_wait_for_rest_on_6x_waits_for_ok(make_manager, fakes, clock):
    def handler(call):
        if call.path == '/api/v3.1/ok':
            if clock.now - 1000.0 < 4:
                return fakes.refused()
            if clock.now - 1000.0 < 8:
                return fakes.Response(500, 'FAIL')
            return fakes.Response(200, 'OK')
        return fakes.Response(200, {'version': '7.0.4'})
    manager, session = make_manager('7.0.4', handler)
    result = wait_for_rest(manager, timeout=60, clock=clock, sleep=clock.sleep,
                           session=session)
    assert result['healthy'] is True and result['auth_ok'] is True
    assert clock.now - 1000.0 >= 8
    ok_calls = [c for c in session.calls if c.path == '/api/v3.1/ok']
    assert all('Authorization' not in c.headers for c in ok_calls)


def test_wait_for_rest_timeout(make_manager, fakes, clock):
    manager, session = make_manager('7.0.4', lambda call: fakes.refused(call.url))
    with pytest.raises(UpgradeError) as info:
        wait_for_rest(manager, timeout=10, clock=clock, sleep=clock.sleep, session=session)
    assert info.value.error_id == 'rest-timeout'


def test_wait_for_restore_flag(make_manager, fakes, clock):
    def handler(call):
        running = clock.now - 1000.0 < 5
        return fakes.Response(200, {'status': 'running' if running else 'not-running'})
    manager, session = make_manager('5.0.5', handler)
    assert wait_for_restore_flag(manager, 60, clock=clock, sleep=clock.sleep,
                                 session=session) is True
    assert clock.now - 1000.0 >= 5
    old, old_session = make_manager('4.6', handler)
    assert wait_for_restore_flag(old, 60, clock=clock, sleep=clock.sleep,
                                 session=old_session) is False
    assert old_session.calls == []


def test_log_event_formats_both_message_shapes():
    import logging
    from cloudify_upgrade_plugin.log import get_logger
    from cloudify_upgrade_plugin.manager.waits import log_event

    class Collect(logging.Handler):
        def __init__(self):
            super(Collect, self).__init__(logging.INFO)
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())
    logger = get_logger()
    handler, level, disabled = Collect(), logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    try:
        log_event({'reported_timestamp': 't1', 'node_instance_id': 'vm_1',
                   'message': 'Restoring snapshot'})
        log_event({'timestamp': 't2', 'message': {'text': 'old shape'}})
        log_event('not an event')
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
    assert handler.lines == ['  t1 [vm_1] Restoring snapshot', '  t2 old shape']


def test_wait_for_rest_settles_first(make_manager, fakes, clock):
    manager, session = make_manager('4.2', lambda call: fakes.Response(200, {'v': 1}))
    result = wait_for_rest(manager, timeout=60, clock=clock, sleep=clock.sleep, settle=10)
    assert clock.sleeps == [10.0]
    assert result['waited'] == pytest.approx(10.0)
    assert len(session.calls) == 1


def test_manager_methods_delegate_to_the_waits(make_manager, fakes, clock):
    manager, _ = make_manager('4.2', scripted(fakes, clock, [
        (1, execution(fakes, 'started')), (1e9, execution(fakes, 'terminated'))]))
    result = manager.wait_for_execution('ex1', 60, clock=clock, sleep=clock.sleep)
    assert result['status'] == 'terminated'
    assert manager.wait_for_rest(60, clock=clock, sleep=clock.sleep)['manager'] is manager
