"""Failed logins per account: the budget that keeps the plugin from locking an account.

A manager counts the failed password logins of each user and locks him once the count is
greater than ``failed_logins_before_account_lock`` (4 by default, so at the fifth failure
in a row) for ``account_lock_period`` minutes; only HTTP Basic logins count, and a right
password resets the count (behaviour §12.10; ``cloudify-manager@7.0.4``
``rest-service/manager_rest/storage/management_models.py`` ``User.is_locked``,
``security/user_handler.py``; from 4.4).  On 4.4-6.3 a locked user is refused even with
the right password.

Owns ``Ledger``, the plugin's mirror of that count per account (the manager's address and
the username), kept for the whole process (``LEDGER``) and, through ``on_change``, in the
upgrade's workspace for a later run: every Basic request the plugin sends is recorded (a
401 adds one failure, a 2xx answer resets the count; anything else - no answer, 5xx, 403 -
leaves it), and no Basic request is sent once ``MAX_FAILED_LOGINS`` failures in a row are
recorded for its account: ``check`` raises ``FailedLoginsLimit`` before anything leaves.
Counting a failure the manager did not count (or missing a reset) only makes the plugin
stricter, never looser.  The request paths that send passwords call ``check`` before and
``record`` after: ``Manager.request`` (``send_counted``), discovery's authenticated version
call, and the raw snapshot transfers (``check_headers`` / ``observe``).
"""
import base64
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from cloudify_upgrade_plugin import clock
from cloudify_upgrade_plugin.errors import UpgradeError

# Never more than this many failed logins in a row against one account: one below the
# default lock threshold of 4 (which locks at the 5th), whatever was sent before.
MAX_FAILED_LOGINS = 3


class FailedLoginsLimit(UpgradeError):
    """Another wrong password could lock the account: nothing was sent."""

    default_id = 'failed-logins-limit'


def account_of(url: str) -> str:
    """The address part of an account key: ``scheme://host:port`` of ``url``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    host = parts.hostname or ''
    if ':' in host:
        host = '[{0}]'.format(host)
    return '{0}://{1}:{2}'.format(parts.scheme, host.lower(), port)


def basic_username(headers: Optional[Mapping[str, str]]) -> Optional[str]:
    """The username of a Basic ``Authorization`` header (None without one)."""
    value = None
    for key, item in (headers or {}).items():
        if key.lower() == 'authorization':
            value = item
    if not value or not str(value).startswith('Basic '):
        return None
    try:
        return base64.b64decode(str(value)[6:]).decode('utf-8').partition(':')[0]
    except (ValueError, UnicodeDecodeError):
        return None


class Ledger:
    """Failed Basic logins in a row per account (``address``, ``username``)."""

    def __init__(self, limit: int = MAX_FAILED_LOGINS):
        self.limit = limit
        self._lock = threading.RLock()
        self._failures: Dict[Tuple[str, str], dict] = {}
        self._listeners: Dict[Any, Callable[[list], None]] = {}

    @staticmethod
    def _key(address: str, username: str) -> Tuple[str, str]:
        return account_of(address), username or ''

    def failures(self, address: str, username: str) -> int:
        with self._lock:
            return self._failures.get(self._key(address, username), {}).get('failures', 0)

    def allows(self, address: str, username: str) -> bool:
        """True while one more failure stays within the budget."""
        return self.failures(address, username) < self.limit

    def check(self, address: str, username: str, label: Optional[str] = None) -> None:
        """Raise ``FailedLoginsLimit`` when this account has no failure left to spend."""
        with self._lock:
            entry = self._failures.get(self._key(address, username))
            if entry is None or entry['failures'] < self.limit:
                return
            entry = dict(entry)
        raise FailedLoginsLimit(
            '{0} refused the password of user {1} {2} times in a row (the last at {3}); '
            'the plugin sends no further password for that user: one more failure could '
            'lock the account (a manager locks a user after failed_logins_before_account_'
            'lock failures in a row, 4 by default).'.format(
                label or 'The manager at {0}'.format(account_of(address)), username,
                entry['failures'], entry.get('last_failure_at') or 'unknown time'),
            details={'manager': account_of(address), 'username': username,
                     'failures': entry['failures']},
            hints=['Check the password of that user by hand (`cfy profiles use PROFILE` '
                   'then `cfy status`): one successful login resets the manager\'s count; '
                   'if the account is locked, wait for account_lock_period to pass.',
                   'Correct the profile (`cfy profiles set --manager-password ...`), then '
                   'run the same command again with --reset-failed-logins.'])

    def record(self, address: str, username: str, ok: bool) -> None:
        """A Basic login was accepted (``ok``) or refused with 401."""
        key = self._key(address, username)
        with self._lock:
            if ok:
                if key not in self._failures:
                    return
                del self._failures[key]
            else:
                entry = self._failures.setdefault(key, {'failures': 0})
                entry['failures'] += 1
                entry['last_failure_at'] = clock.isoformat()
            entries = self.entries()
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener(entries)

    def entries(self) -> List[dict]:
        """The recorded failures (no secret): ``[{address, username, failures,
        last_failure_at}]``."""
        with self._lock:
            return [dict(entry, address=address, username=username)
                    for (address, username), entry in sorted(self._failures.items())]

    def load(self, entries: Optional[List[dict]]) -> None:
        """Take failures recorded by an earlier run (``entries()`` of it)."""
        with self._lock:
            for entry in entries or []:
                try:
                    key = self._key(entry['address'], entry['username'])
                    failures = int(entry['failures'])
                except (KeyError, TypeError, ValueError):
                    continue
                if failures > self._failures.get(key, {}).get('failures', 0):
                    self._failures[key] = {'failures': failures,
                                           'last_failure_at': entry.get('last_failure_at')}

    def forget(self) -> None:
        """Drop every recorded failure (the operator checked the passwords by hand)."""
        with self._lock:
            self._failures.clear()
            listeners = list(self._listeners.values())
        for listener in listeners:
            listener([])

    def on_change(self, listener: Optional[Callable[[list], None]], key: Any = None) -> None:
        """Call ``listener(entries())`` after every change.  Without ``key`` it replaces
        every listener (None: stop calling any); with one it is the listener of that key
        (a process running several upgrades at once, the fleet, keeps one per workspace)."""
        with self._lock:
            if key is None:
                self._listeners = {None: listener} if listener is not None else {}
            elif listener is None:
                self._listeners.pop(key, None)
            else:
                self._listeners[key] = listener


LEDGER = Ledger()


def send_counted(address: str, username: str, label: Optional[str],
                 send: Callable[[], Any]) -> Any:
    """``send()`` carries this account's password (``Manager.request``): ``LEDGER.check``
    before (nothing leaves once the budget is spent), then a 401 it raises counts one
    failure and an answer resets the count."""
    LEDGER.check(address, username, label=label)
    try:
        answer = send()
    except Exception as exc:
        if getattr(exc, 'status_code', None) == 401:
            LEDGER.record(address, username, ok=False)
        raise
    LEDGER.record(address, username, ok=True)
    return answer


def check_headers(url: str, headers: Optional[Mapping[str, str]]) -> None:
    """``LEDGER.check`` for a raw request about to carry these headers."""
    username = basic_username(headers)
    if username is not None:
        LEDGER.check(url, username)


def observe(url: str, headers: Optional[Mapping[str, str]], status: Optional[int]) -> None:
    """Record the answer (HTTP ``status``) to a raw request that carried these headers."""
    username = basic_username(headers)
    if username is None or status is None:
        return
    if status == 401:
        LEDGER.record(url, username, ok=False)
    elif 200 <= status < 300:
        LEDGER.record(url, username, ok=True)
