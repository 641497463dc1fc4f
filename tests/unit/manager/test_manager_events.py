"""manager/events.py: execution events as cfy prints them, rate-limited, secrets masked
(issue 17 item 20)."""
from cloudify_upgrade_plugin.engine import redact
from cloudify_upgrade_plugin.manager.events import EventPrinter, format_event


def _event(message, event_type='task_succeeded', **extra):
    event = {'reported_timestamp': '2026-12-03T10:00:00.123Z', 'deployment_id': 'hw-1',
             'message': message, 'event_type': event_type, 'type': 'cloudify_event',
             'node_instance_id': None, 'operation': None}
    event.update(extra)
    return event


def test_format_flat_and_nested_shapes():
    flat = _event('started', node_instance_id='vm_x1',
                  operation='cloudify.interfaces.lifecycle.start')
    assert format_event(flat) == \
        '2026-12-03 10:00:00.123 CFY <hw-1> [vm_x1.start] started'
    nested = {'@timestamp': '2026-12-03T10:00:01.000Z', 'type': 'cloudify_event',
              'message': {'text': 'old shape', 'arguments': None},
              'context': {'deployment_id': 'd1', 'node_id': 'n1', 'operation': None}}
    assert format_event(nested) == '2026-12-03 10:00:01.000 CFY <d1> [n1] old shape'
    log = dict(_event('a log'), type='cloudify_log', level='warning')
    assert format_event(log).endswith('LOG <hw-1> WARNING: a log')
    assert format_event('not an event') is None


def test_only_the_first_line_and_at_most_300_characters():
    line = format_event(_event('first line\nTraceback (most recent call last): ...'))
    assert line.endswith('first line ...') and 'Traceback' not in line
    assert len(format_event(_event('x' * 1000))) < 400


def test_secrets_are_masked():
    redact.register_secret('S3cret-Pw-1234')
    try:
        line = format_event(_event('login with S3cret-Pw-1234 and '
                                   'Authorization: Basic YWRtaW46YWRtaW4='))
    finally:
        redact.clear_registered_secrets()
    assert 'S3cret-Pw-1234' not in line and 'YWRtaW46YWRtaW4=' not in line
    assert '***' in line


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_rate_limited_with_a_summary_line():
    clock, lines = _Clock(), []
    printer = EventPrinter('ex1', lines=3, interval=10, emit=lines.append, clock=clock)
    for index in range(8):
        printer(_event('event {0}'.format(index)))
    assert [line.split('> ')[1] for line in lines] == ['event 0', 'event 1', 'event 2']
    printer.tick()                          # the interval is not over: nothing yet
    assert len(lines) == 3
    clock.now += 10
    printer.tick()
    assert lines[-1] == '... 5 more event(s) of execution ex1 (`cfy events list ex1`)'
    printer(_event('event 8'))              # a new interval: shown again
    assert lines[-1].endswith('event 8')


def test_the_end_of_a_workflow_is_always_shown_after_the_summary():
    clock, lines = _Clock(), []
    printer = EventPrinter('ex1', lines=1, interval=10, emit=lines.append, clock=clock)
    printer(_event('event 0'))
    printer(_event('event 1'))
    printer(_event("'x' workflow execution failed: boom", event_type='workflow_failed'))
    assert lines[1].startswith('... 1 more event(s)')
    assert lines[2].endswith("'x' workflow execution failed: boom")
    printer(_event('event 2'))
    printer.tick(final=True)
    assert lines[-1].startswith('... 1 more event(s)')
