"""Showing an execution's events while the plugin waits for it (issue 17 item 20).

``EventPrinter(execution_id)`` is the ``on_event`` callback of ``waits.wait_for_execution``
(which pages through ``GET /events?execution_id=...`` with ``_offset`` / ``_size``:
``Manager.events``) for the snapshot create, the restore and each agent install.  One line per
event, the way cfy prints them (`cfy executions start`, `cfy events list`: cloudify-cli
7.0.5 ``logger.get_events_logger``, cloudify-common 7.0.5 ``cloudify/event.py``
``Event.__str__``)::

    2026-12-03 11:14:58.115 CFY <hw-1> [vm_x1.start] 'heal' workflow execution succeeded

``format_event`` reads both shapes a manager answers: flat (API v3.1) and nested
(``message.text``, ``context``: API v3 and older).  Only the message's first line is shown,
at most ``MAX_TEXT`` characters.

Rate-limited: at most ``lines`` lines per ``interval`` seconds for one execution; the events
beyond that are counted and summed up in one line, ``... N more event(s) of execution X (cfy
events list X)``, when the interval is over (``tick``), before an event that is always shown,
and when the wait ends (``tick(final=True)``).  The events that end a workflow or report a
failure (``ALWAYS``) are always shown.

Secrets are never shown: events can hold operation inputs, so every line goes through
``redact_text`` (the secrets the plugin registered: passwords, tokens) and
``mask_credentials`` (credential headers, token secrets, secret JSON fields) before it is
logged (and the plugin logger redacts once more).  The lines go to the plugin logger at INFO:
with ``--json``, cfy keeps that logger quiet and stdout carries only the document.
"""
import time
from typing import Callable, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.redact import mask_credentials, redact_text
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger

EVENT_LINES = 10          # lines shown per interval and execution
EVENT_INTERVAL = 10.0     # seconds
MAX_TEXT = 300
ALWAYS = frozenset(['workflow_succeeded', 'workflow_failed', 'workflow_cancelled',
                    'task_failed'])


def format_event(event) -> Optional[str]:
    """The line cfy would print for ``event`` (None for something that is not an event),
    secrets masked."""
    if not isinstance(event, dict):
        return None
    context = event.get('context') if isinstance(event.get('context'), dict) else event
    message = event.get('message')
    if isinstance(message, dict):       # API v3 and older: {"text": ..., "arguments": ...}
        message = message.get('text')
    text = str(message if message is not None else '').strip()
    first = text.splitlines()[0] if text else ''
    if len(first) > MAX_TEXT or first != text:
        first = first[:MAX_TEXT] + ' ...'
    timestamp = str(event.get('reported_timestamp') or event.get('@timestamp')
                    or event.get('timestamp') or '').replace('T', ' ').replace('Z', '')
    is_log = 'cloudify_log' in str(event.get('type') or '')
    if is_log:
        first = '{0}: {1}'.format(str(event.get('level') or 'info').upper(), first)
    node = context.get('node_instance_id') or context.get('node_id')
    operation = context.get('operation')
    operation = str(operation).split('.')[-1] if operation else None
    info = '.'.join(str(part) for part in (node, operation) if part)
    line = '{0} {1} <{2}> {3}{4}'.format(timestamp, 'LOG' if is_log else 'CFY',
                                         context.get('deployment_id'),
                                         '[{0}] '.format(info) if info else '', first)
    return mask_credentials(redact_text(line))


class EventPrinter:
    """``on_event`` for ``wait_for_execution``: events as lines, rate-limited (see the module
    docstring).  ``emit`` (default: the plugin logger at INFO) and ``clock`` are injectable."""

    def __init__(self, execution_id: str, lines: int = EVENT_LINES,
                 interval: float = EVENT_INTERVAL, emit: Optional[Callable[[str], None]] = None,
                 clock: Optional[Callable[[], float]] = None):
        self.execution_id = execution_id
        self.lines = max(1, int(lines))
        self.interval = float(interval)
        self.emit = emit or (lambda line: get_logger().info('%s', line))
        self.clock = clock or time.monotonic
        self.window_start = None
        self.shown = 0
        self.held = 0

    def __call__(self, event) -> None:
        line = format_event(event)
        if line is None:
            return
        self._roll()
        if isinstance(event, dict) and event.get('event_type') in ALWAYS:
            self._flush()
            self.emit(line)
        elif self.shown < self.lines:
            self.shown += 1
            self.emit(line)
        else:
            self.held += 1

    def tick(self, final: bool = False) -> None:
        """After each page of events: say how many were held back once the interval is over
        (or the wait ends)."""
        if final:
            self._flush()
        else:
            self._roll()

    def _roll(self):
        now = self.clock()
        if self.window_start is None or now - self.window_start >= self.interval:
            self._flush()
            self.window_start = now
            self.shown = 0

    def _flush(self):
        if self.held:
            self.emit('... {0} more event(s) of execution {1} (`cfy events list {1}`)'.format(
                self.held, self.execution_id))
            self.held = 0


_MAX_EVENT_PAGES = 10


class EventFollower:
    """Pages through an execution's events with _offset/_size for ``waits``; never fails
    the wait."""

    def __init__(self, manager, execution_id, on_event):
        self.manager = manager
        self.execution_id = execution_id
        self.on_event = on_event
        self.offset = 0
        self.enabled = on_event is not None and versions.has_events_api(manager.version)

    def follow(self, final=False):
        if not self.enabled:
            return
        try:
            for _ in range(_MAX_EVENT_PAGES * (5 if final else 1)):
                items, total = self.manager.events(self.execution_id, offset=self.offset)
                for item in items:
                    self.on_event(item)
                self.offset += len(items)
                if not items or total is None or self.offset >= int(total):
                    break
        except UpgradeError as exc:
            get_logger().debug('events of %s unavailable: %s', self.execution_id,
                               exc.message)
        except Exception as exc:   # a bad event or callback must not end the wait
            get_logger().debug('event streaming stopped: %s', exc)
            self.enabled = False
        tick = getattr(self.on_event, 'tick', None)     # events.EventPrinter
        if tick is not None:
            try:
                tick(final=final)
            except Exception as exc:
                get_logger().debug('event streaming stopped: %s', exc)


def log_event(event) -> None:
    """An ``on_event`` callback that logs one manager event like ``cfy events list``."""
    if not isinstance(event, dict):
        return
    message = event.get('message')
    if isinstance(message, dict):     # 3.x/4.0 shape: {"text": ...}
        message = message.get('text')
    where = event.get('node_instance_id') or event.get('operation') or ''
    get_logger().info('  %s %s%s', event.get('reported_timestamp') or event.get('timestamp')
                      or '', '[{0}] '.format(where) if where else '', message or '')
