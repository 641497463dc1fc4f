"""Waiting on a restore without harming it: a quiet database swap and few logins.

The database swap (behaviour §12.7): 5.0.5-6.1 targets keep their REST service up while the
restore downgrades and upgrades the database, and REST traffic can deadlock that
migration (cloudify-manager PR #2937 RD-2110, PR #3186 RD-2913; the service is paused
from 6.2).  On those targets nothing is sent for ``DB_SWAP_QUIET`` seconds after the
restore started - the vendor's own tests wait 60 s before their first poll
(cloudify-system-tests ``cosmo_tester/test_suites/snapshots/__init__.py``
``restore_snapshot``) - then the execution is polled every ``QUIET_POLL`` seconds, and
its events are not read until the restore flag drops (``stay_quiet``, ``quiet_left``).

Logging in again (``LoginGate``): a restore that installs the source admin (behaviour §3.8)
leaves a while in which neither the target's nor the source's admin password works, and
every refused password counts towards the account lock (``manager/logins.py``).  When
every known password was refused, the gate sends no password until it is worth trying
again: on 5.0.5+ targets until ``snapshot-status`` says the restore is over (its flag is
removed by the last post-restore command, after the admin's ``UPDATE``:
cloudify-manager@5.0.5 ``snapshot_restore.py`` ``_trigger_post_restore_commands``);
without that flag, after ``RELOGIN_DELAYS``.  Once the flag is down, nothing will change
any more: a password still refused then is wrong, and the gate says so
(``credentials-refused``).  Every wait logs where it stands at least every
``PROGRESS_EVERY`` seconds; ``clock`` and ``sleep`` are injectable.
"""
import time
from typing import Callable, Optional

import requests

from cloudify_upgrade_plugin import clock as clocks
from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import discovery
from cloudify_upgrade_plugin.manager.polling import (
    POLL_CAP, POLL_FACTOR, POLL_START, PROGRESS_EVERY, Poll, Progress, duration)

# behaviour §12.7: no request to a 5.0.5-6.1 target this long after its restore started ...
DB_SWAP_QUIET = 60.0
# ... then the restore is polled this slowly until its flag drops.
QUIET_POLL = 5.0
# Targets without a restore flag (before 5.0.5): when every password was refused, the
# next attempts come after these delays (the budget allows 3 failures in a row).
RELOGIN_DELAYS = (15.0, 60.0, 300.0)


def quiet_left(target, restore_started_at: Optional[str], quiet: float = DB_SWAP_QUIET,
               now=None) -> float:
    """Seconds of the quiet period still to keep on a ``target`` version whose restore
    started at ``restore_started_at`` (0 when that version needs none)."""
    if not versions.restore_traffic_can_deadlock(target):
        return 0.0
    since = clocks.seconds_since(restore_started_at, now=now) if restore_started_at else None
    if since is None:
        return float(quiet)
    return max(0.0, min(float(quiet), float(quiet) - since))


def stay_quiet(label: str, seconds: float, sleep: Optional[Callable[[float], None]] = None,
               every: float = PROGRESS_EVERY) -> None:
    """Send nothing to the manager ``label`` for ``seconds``, saying so at least every
    ``every`` seconds."""
    sleep = sleep or time.sleep
    left = float(seconds)
    if left <= 0:
        return
    get_logger().info('%s swaps its database while restoring, and requests could deadlock '
                      'it (5.0.5-6.1): nothing is sent for %s.', label, duration(left))
    while left > 0:
        chunk = min(left, every)
        sleep(chunk)
        left -= chunk
        if left > 0:
            get_logger().info('Letting %s restore its database: %s more before the first '
                              'poll.', label, duration(left))


class LoginGate:
    """When may the plugin send a password again?  ``wait(round)`` blocks until then.

    ``manager``: the target (only its unauthenticated endpoints are used); ``deadline``:
    a ``clock()`` value past which it gives up (``rest-timeout``).
    """

    def __init__(self, manager, deadline: float, clock: Optional[Callable[[], float]] = None,
                 sleep: Optional[Callable[[float], None]] = None,
                 poll_start: float = POLL_START, poll_cap: float = POLL_CAP, session=None):
        self.manager = manager
        self.session = session or getattr(manager, 'session', None)
        self.deadline = deadline
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.poll_start = poll_start
        self.poll_cap = poll_cap

    def left(self) -> float:
        return max(0.0, self.deadline - self.clock())

    def wait(self, round_: int) -> str:
        """'flag' (the restore flag dropped) or 'delay' (a delay passed); raises
        ``credentials-refused`` when nothing will change any more."""
        manager = self.manager
        if versions.reports_restore_flag(manager.version):
            if round_ > 0:
                raise UpgradeError(
                    '{0} refuses every known password, and its restore is over: nothing '
                    'will change them any more.'.format(manager.label),
                    error_id='credentials-refused', details={'manager': manager.label})
            get_logger().info('%s refuses the password in use (a restore changes the admin '
                              'password): no password is sent until its restore is over.',
                              manager.label)
            wait_for_restore_flag(manager, self.left(), clock=self.clock, sleep=self.sleep,
                                  poll_start=self.poll_start, poll_cap=self.poll_cap,
                                  session=self.session)
            return 'flag'
        delay = RELOGIN_DELAYS[min(round_, len(RELOGIN_DELAYS) - 1)]
        if delay > self.left():
            raise UpgradeError(
                '{0} still refused every known password when the time allowed ran out.'.format(
                    manager.label), error_id='credentials-refused',
                details={'manager': manager.label})
        get_logger().info('%s refuses every known password (a restore changes the admin '
                          'password): trying again in %s; no password is sent meanwhile.',
                          manager.label, duration(delay))
        stay_quiet_probing(manager, delay, clock=self.clock, sleep=self.sleep)
        return 'delay'


def stay_quiet_probing(manager, seconds: float, clock=None, sleep=None) -> None:
    """Wait ``seconds`` with unauthenticated probes only (is the REST service up?),
    saying where it stands at least every ``PROGRESS_EVERY`` seconds."""
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    started = clock()
    end = started + float(seconds)
    said = started
    while clock() < end:
        sleep(min(2.0, end - clock()))
        if clock() - said >= PROGRESS_EVERY and clock() < end:
            said = clock()
            up = manager.rest_answers()[0]
            get_logger().info('%s %s; %s before trying a password again.', manager.label,
                              'answers' if up else 'does not answer',
                              duration(end - clock()))


def restore_flag(manager) -> Optional[str]:
    """5.0.5+: what ``/api/v3.1/snapshot-status`` says now ("running", "not-running");
    None on older managers or without a JSON answer (behaviour §2.3)."""
    if not versions.reports_restore_flag(manager.version):
        return None
    result = discovery.probe(manager.session, manager.address, '/api/v3.1/snapshot-status',
                             verify=manager.verify)
    if result.is_json and isinstance(result.body, dict):
        return result.body.get('status')
    return None


def wait_for_restore_flag(manager, timeout, clock=None, sleep=None, poll_start=POLL_START,
                          poll_cap=POLL_CAP, poll_factor=POLL_FACTOR, session=None) -> bool:
    """5.0.5+: wait until ``/api/v3.1/snapshot-status`` says "not-running".

    behaviour §2.3: the flag is removed by the detached post-restore shell, so this is the
    "restore fully done" signal on 5.0.5+.  Older managers return at once (False).
    """
    if not versions.reports_restore_flag(manager.version):
        return False
    poll = Poll(timeout, clock, sleep, poll_start, poll_cap, poll_factor)
    progress = Progress(poll, PROGRESS_EVERY)
    session = session or requests.Session()
    last = 'no answer yet'
    while True:
        result = discovery.probe(session, manager.address, '/api/v3.1/snapshot-status',
                                 verify=manager.verify)
        if result.is_json and isinstance(result.body, dict):
            if result.body.get('status') == 'not-running':
                return True
            last = 'status {0}'.format(result.body.get('status'))
        elif result.error is not None:
            last = str(result.error)
        progress.tick('%s still reports a snapshot restore running (%s) after %s.',
                      manager.label, last, None)
        if poll.expired():
            raise UpgradeError(
                '{0} still reports a snapshot restore running after {1}s ({2}).'.format(
                    manager.label, timeout, last),
                error_id='restore-still-running', details={'manager': manager.label},
                hints=['Check the restore on the manager host, then run the same command '
                       'again.'])
        poll.sleep()
