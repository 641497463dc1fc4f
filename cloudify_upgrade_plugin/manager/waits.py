"""Waiting on a manager: executions to end, the REST service to go away and come back,
restores to finish, services to be healthy, maintenance mode to be active.

Owns: the adaptive poll (fast at first, backing off to a cap so the end of an execution is
noticed within about ``poll_cap`` seconds), tolerance of the REST outages a restore causes
(connection refused/reset, 502/503, the errors polled while the DB is swapped, behaviour §3.8 /
§9.16), the end states of behaviour §4, the timeout with a message naming the execution, and
best-effort printing of the execution's events while waiting; after a restore, watching
for the announced outage (never sleeping through it: it must begin within a grace counted
by the manager's own clock) and for healthy services.  ``clock`` and ``sleep`` are
injectable so tests never really wait.
"""
import time
from typing import Callable, Optional

import requests

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.clock import parse as parse_time
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import discovery
from cloudify_upgrade_plugin.manager.events import EventFollower, log_event  # noqa: F401
from cloudify_upgrade_plugin.manager.logins import LEDGER, FailedLoginsLimit
from cloudify_upgrade_plugin.manager.polling import (  # noqa: F401  (the waits' API)
    POLL_CAP, POLL_FACTOR, POLL_START, PROGRESS_EVERY, Poll, Progress)
from cloudify_upgrade_plugin.manager.restore_wait import (  # noqa: F401  (the waits' API)
    DB_SWAP_QUIET, QUIET_POLL, LoginGate, quiet_left, stay_quiet, wait_for_restore_flag)
from cloudify_upgrade_plugin.manager.retry import cause_of

END_STATES = ('terminated', 'failed', 'cancelled')   # behaviour §4: the same on every version
# 401/403/404 while a restore swaps the DB and restarts the REST service are tolerated
# for this long in a row before they count as real (a wrong password must not hang).
CLIENT_ERROR_GRACE = 60.0
_MAX_ERROR_TEXT = 4000


def _is_tolerable(exc):
    details = getattr(exc, 'details', None) or {}
    return bool(details.get('transient')) or exc.error_id in (
        'manager-unreachable', 'manager-bad-answer')


def _last_line(text):
    lines = [line.strip() for line in str(text or '').splitlines() if line.strip()]
    return lines[-1] if lines else ''


def wait_for_execution(manager, execution_id, timeout, on_event=None, clock=None, sleep=None,
                       poll_start=POLL_START, poll_cap=POLL_CAP, poll_factor=POLL_FACTOR,
                       tolerate_outage=True, client_error_grace=CLIENT_ERROR_GRACE,
                       alternatives=(), on_switch=None, relogin=None) -> dict:
    """Poll ``execution_id`` on ``manager`` until it ends; return the final execution dict.

    ``timeout`` in seconds (None: no limit).  ``on_event(event_dict)`` gets the execution's
    events as they appear (4.0+, best effort).  ``alternatives``: the same manager with
    other credentials (``Manager.with_credentials``), tried in turn when the credentials in
    use are refused: a restore of a 4.2+ snapshot makes the *source* admin's password the
    target's (behaviour §3.8).  The first one that works is used from then on and passed to
    ``on_switch(manager)``.  Every password sent stays within the failed-login budget
    (``manager/logins.py``): when every candidate is refused or out of budget,
    ``relogin(refused_manager, round)`` (if given) waits without sending a password until
    logging in again is worth it and returns the candidates to try next, in order; without
    it, refusals are polled on for ``client_error_grace`` seconds.  Progress is logged at
    least every ``PROGRESS_EVERY`` seconds.  Raises ``UpgradeError`` with ids
    ``execution-failed``, ``execution-cancelled``, ``execution-timeout``,
    ``failed-logins-limit``, or the manager's error when it persists (auth, not found)
    beyond ``client_error_grace``.
    """
    logger = get_logger()
    poll = Poll(timeout, clock, sleep, poll_start, poll_cap, poll_factor)
    events = EventFollower(manager, execution_id, on_event)
    order = [manager] + [m for m in alternatives or () if m is not None and m is not manager]
    if relogin is None and len(order) > 1:
        relogin = _switch_relogin(order, poll)
    refused = []          # candidates refused (or out of budget) since the last success
    rounds = 0
    progress = Progress(poll, PROGRESS_EVERY)
    pause = None
    last_status = None
    workflow = None
    outage_since = None
    client_error_since = None
    last_error = None
    while True:
        current = order[0]
        execution = None
        try:
            execution = current.get_execution(execution_id, retry=False)
        except UpgradeError as exc:
            if not tolerate_outage:
                raise
            status = (exc.details or {}).get('status_code')
            limited = exc.error_id == FailedLoginsLimit.default_id
            if status == 401 or limited:
                if current not in refused:
                    refused.append(current)
                untried = [m for m in order if m not in refused]
                if untried:          # the next candidate, at once
                    order = untried + refused
                    continue
                if all(_out_of_budget(m) for m in order):
                    raise exc if limited else _limit_error(current)
                if relogin is not None:
                    order = list(relogin(current, rounds) or order)
                    rounds += 1
                    refused = []
                    continue
                # no relogin: the refusal is polled on for the grace, spaced so that the
                # budget lasts it (a REST restart can refuse a right password briefly)
                pause = float(client_error_grace) / LEDGER.limit
                refused = []
            last_error = exc
            if _is_tolerable(exc):
                client_error_since = None
            else:
                if status not in (401, 403, 404) and not limited:
                    raise
                if client_error_since is None:
                    client_error_since = poll.clock()
                if poll.clock() - client_error_since >= client_error_grace:
                    raise
            if outage_since is None:
                outage_since = poll.clock()
                logger.info('%s: %s; still waiting for execution %s.', current.label,
                            cause_of(exc), execution_id)
        if execution is not None:
            if current is not manager:
                logger.info('%s accepts the %s credentials; continuing with them.',
                            current.label, current.credentials.label or 'other')
                manager = current
                events.manager = current
                if on_switch is not None:
                    on_switch(current)
            refused = []
            if outage_since is not None:
                logger.info('%s answers again after %.0fs.', manager.label,
                            poll.clock() - outage_since)
            outage_since = None
            client_error_since = None
            status = execution.get('status')
            workflow = execution.get('workflow_id') or workflow
            if status != last_status:
                logger.info('Execution %s (%s): %s', execution_id, workflow, status)
                last_status = status
                progress.reset()
            events.follow()
            if status in END_STATES:
                events.follow(final=True)
                return _ended(manager, execution, execution_id, workflow)
        progress.tick('Execution %s (%s) still %s after %s.', execution_id,
                      workflow or 'workflow unknown', last_status or 'unread', None)
        if poll.expired():
            raise _timeout_error(manager, execution_id, workflow, last_status, timeout,
                                 last_error if outage_since is not None else None)
        if pause:
            poll.pause(pause)
            pause = None
        else:
            poll.sleep()


def restore_pace(target) -> dict:
    """The poll of a restore on ``target``: at least every ``RESTORE_POLL_CAP`` seconds;
    every ``restore_wait.QUIET_POLL`` seconds on 5.0.5-6.1 (behaviour §12.7)."""
    if versions.restore_traffic_can_deadlock(target.version):
        return {'poll_start': QUIET_POLL, 'poll_cap': QUIET_POLL}
    return {'poll_cap': RESTORE_POLL_CAP}


def wait_for_restore(target, execution_id, timeout, started_at=None, logins=None,
                     on_switch=None, clock=None, sleep=None, now=None, on_event=None) -> dict:
    """Wait for restore execution ``execution_id`` on ``target`` as the target allows it.

    5.0.5-6.1: nothing is sent until ``DB_SWAP_QUIET`` seconds after ``started_at`` (the
    restore's start, ISO 8601; ``now`` for tests), then slow polls (``restore_pace``).
    When every password is refused, a ``LoginGate`` decides when to try again and
    ``logins(how)`` ('flag' or 'delay') the managers to try, in order (default: the one
    refused).  ``on_event`` gets the execution's events only where reading them cannot
    harm the restore (not on 5.0.5-6.1).  Returns the final execution.
    """
    clock = clock or time.monotonic
    pace = restore_pace(target)
    if versions.restore_traffic_can_deadlock(target.version):
        stay_quiet(target.label, quiet_left(target.version, started_at, now=now), sleep=sleep)
    gate = LoginGate(target, clock() + float(timeout), clock=clock, sleep=sleep, **pace)

    def relogin(refused, round_):
        how = gate.wait(round_)
        return list(logins(how)) if logins is not None else [refused]
    if versions.restore_traffic_can_deadlock(target.version):
        on_event = None
    return wait_for_execution(target, execution_id, timeout, clock=clock, sleep=sleep,
                              relogin=relogin, on_switch=on_switch, on_event=on_event, **pace)


def _switch_relogin(order, poll):
    """The default ``relogin`` when there are alternatives: wait for a ``LoginGate``, then
    try the alternatives first (the password a restore installs, behaviour §3.8)."""
    gate = LoginGate(order[0], poll.deadline if poll.deadline is not None else float('inf'),
                     clock=poll.clock, sleep=poll._sleep)

    def relogin(refused, round_):
        gate.wait(round_)
        return order[1:] + order[:1]
    return relogin


def _out_of_budget(manager):
    return manager.credentials.basic and not LEDGER.allows(manager.address, manager.username)


def _limit_error(manager):
    try:
        LEDGER.check(manager.address, manager.username, label=manager.label)
    except FailedLoginsLimit as error:
        return error
    return FailedLoginsLimit('{0} refused every known password.'.format(manager.label))


def _ended(manager, execution, execution_id, workflow):
    status = execution.get('status')
    if status == 'terminated':
        return execution
    error_text = str(execution.get('error') or '')
    details = {'execution_id': execution_id, 'workflow_id': workflow, 'status': status,
               'manager': manager.label, 'error': error_text[-_MAX_ERROR_TEXT:]}
    hints = ['See what happened: `cfy executions get {0}` and `cfy events list {0}` on the '
             'profile of {1}.'.format(execution_id, manager.label)]
    if status == 'cancelled':
        raise UpgradeError('Execution {0} ({1}) on {2} was cancelled.'.format(
            execution_id, workflow, manager.label),
            error_id='execution-cancelled', hints=hints, details=details)
    reason = _last_line(error_text) or 'no error text'
    raise UpgradeError('Execution {0} ({1}) failed on {2}: {3}'.format(
        execution_id, workflow, manager.label, reason),
        error_id='execution-failed', hints=hints, details=details)


def _timeout_error(manager, execution_id, workflow, status, timeout, outage):
    message = 'Execution {0} ({1}) on {2} did not end within {3}s (last status: {4}).'.format(
        execution_id, workflow or 'workflow unknown', manager.label, timeout,
        status or 'never read')
    if outage is not None:
        message += ' The manager was not answering at the end: {0}'.format(cause_of(outage))
    return UpgradeError(
        message, error_id='execution-timeout',
        details={'execution_id': execution_id, 'workflow_id': workflow, 'status': status,
                 'manager': manager.label},
        hints=['Check it: `cfy executions get {0}` on the profile of {1}.'.format(
                   execution_id, manager.label),
               'Run the same command again (with a larger --timeout if needed) to keep '
               'waiting: the step is resumed, the execution is not started twice.'])


def wait_for_rest(manager, timeout, clock=None, sleep=None, poll_start=POLL_START,
                  poll_cap=POLL_CAP, poll_factor=POLL_FACTOR, unhealthy_grace=60.0,
                  session=None, settle=0.0, alternatives=()) -> dict:
    """Wait until the manager's REST service answers again (after a restart or reboot).

    6.0+: unauthenticated ``/api/v3.1/ok`` (behaviour §2.3) must say "OK" ("FAIL" is accepted
    with a warning after ``unhealthy_grace`` seconds); then, on every version, an
    authenticated ``<prefix>/version``.  Connection refused, 5xx and non-JSON answers are
    waited out.  Returns ``{'up': True, 'auth_ok': bool, 'healthy': bool|None,
    'waited': seconds, 'manager': Manager|None}``: ``manager`` is the one whose credentials
    work (``manager`` itself, or the first of ``alternatives`` that does); ``auth_ok`` False
    means every one was refused (after a restore the admin password is the source's, behaviour
    §3.8).  ``settle`` seconds are slept
    first: on 4.2-4.5 targets the REST service restarts a few seconds *after* the restore
    execution ended (behaviour §3.8: "wait at least 10 seconds").
    """
    logger = get_logger()
    poll = Poll(timeout, clock, sleep, poll_start, poll_cap, poll_factor)
    if settle:
        poll._sleep(float(settle))
    session = session or requests.Session()
    use_ok = versions.has_ok_endpoint(manager.version)
    fail_since = None
    healthy = None
    last = 'no answer yet'
    while True:
        ready = True
        if use_ok:
            result = discovery.probe(session, manager.address, '/api/v3.1/ok',
                                     verify=manager.verify)
            if result.is_json and result.body == 'OK':
                healthy = True
            elif result.is_json and result.body == 'FAIL':
                fail_since = fail_since if fail_since is not None else poll.clock()
                ready = poll.clock() - fail_since >= unhealthy_grace
                healthy = False
                last = '/api/v3.1/ok says FAIL'
                if ready:
                    logger.warning('%s says FAIL at /api/v3.1/ok for %.0fs; continuing.',
                                   manager.label, poll.clock() - fail_since)
            else:
                ready = False
                last = str(result.error) if result.error else '{0} {1}'.format(
                    result.status, 'JSON' if result.is_json else 'not JSON')
        if ready:
            try:
                manager.request('get', '/version', retry=False, what='reading the version')
                return {'up': True, 'auth_ok': True, 'healthy': healthy,
                        'waited': poll.elapsed(), 'manager': manager}
            except UpgradeError as exc:
                status = (exc.details or {}).get('status_code')
                if status == 401:
                    working = _first_accepted(alternatives, manager)
                    return {'up': True, 'auth_ok': working is not None, 'healthy': healthy,
                            'waited': poll.elapsed(), 'manager': working}
                if not _is_tolerable(exc) and status not in (403, 404):
                    raise
                last = cause_of(exc)
        if poll.expired():
            raise UpgradeError(
                'The REST service of {0} did not come back within {1}s ({2}).'.format(
                    manager.label, timeout, last),
                error_id='rest-timeout', details={'manager': manager.label},
                hints=['Check the manager host: `sudo systemctl status nginx '
                       'cloudify-restservice` (a reboot after restoring certificates can '
                       'take several minutes).',
                       'Run the same command again to keep waiting.'])
        poll.sleep()


def _first_accepted(alternatives, manager):
    for other in alternatives or ():
        if other is None or other is manager:
            continue
        try:
            other.request('get', '/version', retry=False, what='reading the version')
        except UpgradeError:
            continue
        return other
    return None


# -- after a restore ------------------------------------------------------------------------

# Poll a restore at least every second: its end must be seen before the post-restore
# shell's `sleep 3` is over and it restarts / reboots the manager (behaviour §3.8).
RESTORE_POLL_CAP = 1.0
# How long after a restore ends an announced REST outage (the 4.2-4.5 restart, the reboot
# after restoring certificates: behaviour §3.8 "a few seconds", docs "at least 10 seconds") may
# take to begin before it is considered missed.
OUTAGE_GRACE = 60.0
# ... and once the restored certificates are seen on the host (the reboot follows them).
REBOOT_SOON = 10.0
POST_RESTORE_SLEEP = 3.0   # behaviour §3.8: the detached post-restore shell's `sleep 3`
# How long the services of a restored manager may take to all report active.
HEALTH_GRACE = 60.0


def ended_ago(manager, execution: Optional[dict], session=None) -> Optional[float]:
    """Seconds since the execution ended, by the manager's own clock: its ``ended_at``
    (4.4+) against the ``Date`` header of an answer now.  None when either is unknown."""
    ended = parse_time((execution or {}).get('ended_at'))
    if ended is None:
        return None
    now = manager.server_time(session)
    if now is None:
        return None
    return max(0.0, (now - ended).total_seconds())


def outage_grace(timeout: float, since_end: float, by_manager_clock: bool,
                 reboot_imminent: Optional[Callable[[], bool]] = None) -> float:
    """Seconds left to watch for the outage a restore announced (<= 0: it is too late).

    ``since_end``: seconds since the restore ended, by the manager's clock when
    ``by_manager_clock``, else since this process saw it end (a resumed run may come long
    after the outage, while no process was watching).  ``reboot_imminent()`` (asked only
    while some grace is left) is True when the restored certificates are already on the
    host: `shutdown -r now` comes right after them in the post-restore shell (`sleep 3`
    after the end, behaviour §3.8), or came already.
    """
    grace = min(float(timeout), OUTAGE_GRACE) - since_end
    if grace > 0 and reboot_imminent is not None and reboot_imminent():
        grace = min(grace, POST_RESTORE_SLEEP + REBOOT_SOON - since_end
                    if by_manager_clock else REBOOT_SOON)
    return grace


def wait_for_outage(manager, grace: float, clock=None, sleep=None, session=None) -> bool:
    """Poll the REST port until it stops answering (True), or ``grace`` seconds pass (False).

    Unauthenticated ``<prefix>/version`` answers JSON (200 or 401) while the service is up;
    refused connections, 5xx pages and non-JSON answers mean it went down.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    session = session or requests.Session()
    deadline = clock() + grace
    interval = 0.05
    while True:
        up, result = manager.rest_answers(session)
        if not up:
            get_logger().info('%s stopped answering (%s); waiting for it to come back.',
                              manager.label, result.error or result.status)
            return True
        if clock() >= deadline:
            get_logger().warning('No restart or reboot of %s was seen within %.0fs after the '
                                 'restore ended; going on.', manager.label, grace)
            return False
        sleep(interval)
        interval = min(interval * 1.5, 0.5)


def wait_until_healthy(manager, grace: float, clock=None, sleep=None) -> str:
    """'ok', or 'degraded: <services>' (a warning) when they are not all active in time."""
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + grace
    interval = 0.1
    while True:
        try:
            state, failing = manager.health()
        except UpgradeError as error:
            state, failing = 'fail', [error.message]
        if state == 'ok':
            return 'ok'
        if clock() >= deadline:
            get_logger().warning('%s reports services that are not running after the '
                                 'restore: %s. Check them before the agents move.',
                                 manager.label, ', '.join(failing) or state)
            return '{0}: {1}'.format(state, ', '.join(failing))
        sleep(interval)
        interval = min(interval * 1.5, 2.0)


# -- maintenance mode -------------------------------------------------------------------

def wait_for_maintenance(manager, timeout: float, clock=None, sleep=None) -> str:
    """Wait until maintenance mode is 'activated' (it stays 'activating' while executions
    run); raise ``maintenance-not-activated`` after ``timeout`` seconds."""
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    logger = get_logger()
    deadline = clock() + timeout
    interval = 0.2
    reported = None
    while True:
        answer = manager.maintenance()
        state = answer.get('status')
        if state == 'activated':
            logger.info('Maintenance mode is active on %s.', manager.label)
            return state
        remaining = answer.get('remaining_executions') or []
        if remaining and remaining != reported:
            reported = remaining
            logger.info('Maintenance mode is %s: waiting for %d execution(s) to end.',
                        state, len(remaining))
        if clock() >= deadline:
            raise UpgradeError(
                'Maintenance mode on {0} is still "{1}" after {2} s.'.format(
                    manager.label, state, timeout), error_id='maintenance-not-activated',
                hints=['Executions still running keep it "activating": see `cfy '
                       'maintenance-mode status`, then run prepare again.',
                       'The snapshot is safe locally; `cfy maintenance-mode deactivate` '
                       'undoes the freeze.'])
        sleep(interval)
        interval = min(interval * 2, 5.0)
