"""The one home for time: formats written and every timestamp shape read."""
import datetime

from cloudify_upgrade_plugin import clock

UTC = datetime.timezone.utc


def test_isoformat_is_utc_with_microseconds_and_z():
    moment = datetime.datetime(2026, 1, 2, 5, 4, 5, 6, tzinfo=datetime.timezone(
        datetime.timedelta(hours=2)))
    assert clock.isoformat(moment) == '2026-01-02T03:04:05.000006Z'
    assert clock.parse(clock.isoformat(moment)) == moment


def test_iso_millis_and_none():
    moment = datetime.datetime(2024, 5, 1, 13, 45, 0, 123999, tzinfo=UTC)
    assert clock.iso_millis(moment) == '2024-05-01T13:45:00.123Z'
    assert clock.iso_millis(None) is None


def test_http_date_and_seconds_since():
    assert clock.parse_http_date('Wed, 01 May 2024 12:00:10 GMT') == \
        datetime.datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
    assert clock.parse_http_date('not a date') is None
    assert clock.parse_http_date(None) is None
    now = datetime.datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
    assert clock.seconds_since('2024-05-01T12:00:00.000000Z', now=now) == 10.0
    assert clock.seconds_since('garbage', now=now) is None
