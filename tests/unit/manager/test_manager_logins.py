"""Unit tests of manager/logins.py: the failed-login budget, and where it is enforced
(Manager.request, discovery's authenticated version call, raw transfers)."""
import base64

import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import discovery, logins
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.logins import (
    LEDGER, MAX_FAILED_LOGINS, FailedLoginsLimit, Ledger, account_of, basic_username)

ADDRESS = 'http://10.0.0.5:80'


def test_three_failures_in_a_row_then_nothing_is_sent():
    ledger = Ledger()
    for _ in range(MAX_FAILED_LOGINS):
        ledger.check(ADDRESS, 'admin')
        ledger.record(ADDRESS, 'admin', ok=False)
    assert MAX_FAILED_LOGINS == 3
    with pytest.raises(FailedLoginsLimit) as info:
        ledger.check(ADDRESS, 'admin', label='manager X')
    assert info.value.error_id == 'failed-logins-limit'
    assert 'manager X' in info.value.message and '3 times in a row' in info.value.message
    assert any('--reset-failed-logins' in hint for hint in info.value.hints)


def test_a_success_resets_the_count_as_the_manager_does():
    ledger = Ledger()
    ledger.record(ADDRESS, 'admin', ok=False)
    ledger.record(ADDRESS, 'admin', ok=False)
    ledger.record(ADDRESS, 'admin', ok=True)
    assert ledger.failures(ADDRESS, 'admin') == 0
    ledger.record(ADDRESS, 'admin', ok=False)
    assert ledger.allows(ADDRESS, 'admin')


def test_accounts_are_counted_apart():
    """Per manager address and username (behaviour §12.10: the count is per user)."""
    ledger = Ledger()
    for _ in range(3):
        ledger.record(ADDRESS, 'admin', ok=False)
    assert not ledger.allows(ADDRESS, 'admin')
    assert ledger.allows(ADDRESS, 'alice')
    assert ledger.allows('http://10.0.0.6:80', 'admin')
    # the same account however the address is spelt
    assert not ledger.allows('http://10.0.0.5', 'admin')
    assert account_of('https://Manager.Example:443/api/v3.1/x') == 'https://manager.example:443'


def test_entries_persist_and_load_without_any_secret():
    ledger = Ledger()
    changes = []
    ledger.on_change(changes.append)
    ledger.record(ADDRESS, 'admin', ok=False)
    ledger.record(ADDRESS, 'admin', ok=False)
    entries = ledger.entries()
    assert changes[-1] == entries
    assert entries[0]['address'] == ADDRESS and entries[0]['username'] == 'admin'
    assert entries[0]['failures'] == 2 and entries[0]['last_failure_at'].endswith('Z')
    again = Ledger()
    again.load(entries)
    again.record(ADDRESS, 'admin', ok=False)
    assert not again.allows(ADDRESS, 'admin')
    again.forget()
    assert again.allows(ADDRESS, 'admin') and again.entries() == []
    # a success on an account with no failure changes nothing (no write)
    count = len(changes)
    ledger.record('http://other:80', 'admin', ok=True)
    assert len(changes) == count


def test_basic_username_and_observe():
    header = 'Basic ' + base64.b64encode(b'admin:pw').decode('ascii')
    assert basic_username({'authorization': header}) == 'admin'
    assert basic_username({'Authentication-Token': 'x'}) is None
    logins.observe(ADDRESS + '/api/v3.1/snapshots/s/archive', {'Authorization': header}, 401)
    assert LEDGER.failures(ADDRESS, 'admin') == 1
    logins.observe(ADDRESS + '/api/v3.1/x', {'Authorization': header}, 502)
    assert LEDGER.failures(ADDRESS, 'admin') == 1
    logins.observe(ADDRESS + '/api/v3.1/x', {'Authorization': header}, 201)
    assert LEDGER.failures(ADDRESS, 'admin') == 0


def test_manager_request_sends_no_password_beyond_the_budget(make_manager, fakes):
    manager, session = make_manager('7.0', lambda call: fakes.error(401, 'unauthorized_error'))
    for _ in range(3):
        with pytest.raises(UpgradeError) as info:
            manager.version_data()
        assert info.value.error_id == 'manager-auth-failed'
    with pytest.raises(UpgradeError) as info:
        manager.version_data()
    assert info.value.error_id == 'failed-logins-limit'
    assert len(session.calls) == 3
    # a token is no password: it is not counted and still sent
    by_token = manager.with_token('tok')
    with pytest.raises(UpgradeError):
        by_token.version_data()
    assert len(session.calls) == 4


def test_the_other_password_of_the_same_account_shares_the_budget(make_manager, fakes):
    """Both admins are `admin`: the target's and the source's passwords count together."""
    manager, session = make_manager('7.0', lambda call: fakes.error(401, 'unauthorized_error'))
    other = manager.with_credentials(Credentials('admin', 'source-pw'))
    for who in (manager, other, manager):
        assert who.accepts_credentials() is False
    with pytest.raises(UpgradeError) as info:
        other.accepts_credentials()
    assert info.value.error_id == 'failed-logins-limit'
    assert len(session.calls) == 3


def test_a_right_password_resets_the_budget(make_manager, fakes):
    good = {'ok': False}

    def handler(call):
        if good['ok']:
            return fakes.Response(200, {'version': '7.0.4'})
        return fakes.error(401, 'unauthorized_error')
    manager, _ = make_manager('7.0', handler)
    assert manager.accepts_credentials() is False
    assert manager.accepts_credentials() is False
    good['ok'] = True
    assert manager.accepts_credentials() is True
    assert LEDGER.failures(manager.address, 'admin') == 0


def test_discovery_counts_its_authenticated_call(fakes):
    def handler(call):
        if call.path == '/api/v3.1/ok':
            return fakes.Response(200, 'OK')
        return fakes.error(401, 'unauthorized_error')
    session = fakes.Session(handler)
    for _ in range(3):
        with pytest.raises(UpgradeError) as info:
            discovery.discover('10.0.0.9', 80, 'http', username='admin', password='bad',
                               session=session)
        assert info.value.error_id == 'manager-auth-failed'
    sent = len(session.calls)
    with pytest.raises(UpgradeError) as info:
        discovery.discover('10.0.0.9', 80, 'http', username='admin', password='bad',
                           session=session)
    assert info.value.error_id == 'failed-logins-limit'
    # only the unauthenticated probe went out
    assert [c.path for c in session.calls[sent:]] == ['/api/v3.1/ok']
    assert all('Authorization' not in c.headers for c in session.calls[sent:])


def test_keyed_listeners_let_several_upgrades_share_a_process():
    """The fleet runs several restores in one process: each workspace keeps its listener."""
    ledger = Ledger()
    first, second = [], []
    ledger.on_change(first.append, key='/ws/a')
    ledger.on_change(second.append, key='/ws/b')
    ledger.record(ADDRESS, 'admin', ok=False)
    assert len(first) == len(second) == 1
    ledger.on_change(None, key='/ws/a')
    ledger.record(ADDRESS, 'admin', ok=False)
    assert len(first) == 1 and len(second) == 2
    ledger.on_change(None)                      # no key: every listener goes
    ledger.record(ADDRESS, 'admin', ok=False)
    assert len(second) == 2
