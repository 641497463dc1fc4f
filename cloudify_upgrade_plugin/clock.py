"""Time: the one home for "now", and for writing and reading timestamps.

Owns the plugin's timestamp formats and the parsing of every time a manager or an operator
gives.  Workspace files, the journal and the report use :func:`isoformat` (UTC, ``Z``,
microseconds); documents that quote a manager's times use :func:`iso_millis` (the managers'
own ``2017-06-01T12:34:56.123Z`` shape).  Tests replace :func:`utcnow` (this module's
attribute) for a fixed clock.
"""
import datetime
import email.utils
from typing import Optional

from cloudify_upgrade_plugin.errors import InputError

UTC = datetime.timezone.utc


def utcnow() -> datetime.datetime:
    """The current time, aware, in UTC."""
    return datetime.datetime.now(UTC)


def isoformat(moment: Optional[datetime.datetime] = None) -> str:
    """UTC ISO 8601 with a ``Z`` suffix and microseconds: ``2026-01-02T03:04:05.000006Z``."""
    moment = moment or utcnow()
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec='microseconds') + 'Z'


def iso_millis(moment: Optional[datetime.datetime]) -> Optional[str]:
    """Aware datetime -> ``2024-05-01T13:45:00.000Z`` (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.') + \
        '{0:03d}Z'.format(moment.microsecond // 1000)


def parse(text) -> Optional[datetime.datetime]:
    """A timestamp of ours or of a manager -> aware UTC datetime; None when not a time.

    Accepts ``2017-06-01T12:34:56.123Z`` (4.x and later), ``2016-08-01 12:34:56.123456``
    (3.4.2 sends ``str(datetime.now())``, the host's local time, taken as UTC), offsets
    (``+02:00``) and naive values (taken as UTC).
    """
    if not text or not isinstance(text, str):
        return None
    value = text.strip().replace(' ', 'T', 1)
    if value.endswith('Z'):
        value = value[:-1] + '+00:00'
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_http_date(value) -> Optional[datetime.datetime]:
    """An HTTP ``Date`` header -> aware UTC datetime; None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def seconds_since(text, now: Optional[datetime.datetime] = None) -> Optional[float]:
    """Seconds from the timestamp ``text`` until ``now`` (default: this moment)."""
    then = parse(text)
    if then is None:
        return None
    return ((now or utcnow()) - then).total_seconds()


def parse_option(text, option: str) -> datetime.datetime:
    """An ISO 8601 option value -> aware UTC datetime; a date alone means midnight UTC.

    Naive values are taken as UTC; anything else is ``bad-time`` (exit 2).
    """
    value = (text or '').strip()
    try:
        if len(value) == 10:
            parsed = datetime.datetime.strptime(value, '%Y-%m-%d')
        else:
            parsed = datetime.datetime.fromisoformat(value.replace(' ', 'T', 1))
    except ValueError:
        raise InputError(
            '{0} {1!r} is not an ISO 8601 time.'.format(option, text),
            error_id='bad-time',
            hints=['Give a UTC time such as 2024-05-01T13:45:00Z or '
                   '2024-05-01T15:45:00+02:00 (a date alone means midnight UTC).'])
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
