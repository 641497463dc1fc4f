"""Contract: failed logins, the account lock, and what the request log says about the
credentials each manager received.

References: behaviour §12.10: 7.0 counts failed logins per user;
`failed_logins_before_account_lock` (default 4) and `account_lock_period` (MGR@7.0.4
manager_rest/config.py; the installer's default period -1 = no lockout, MI@7.0.4
config.yaml).  From the source (rules.py 'account lock'): the counter exists from 4.4; a
user is locked while counter > failed_logins_before_account_lock and the last failure is
younger than the period (MGR@4.4..7.0.4 User.is_locked); 4.4-6.3 refuse a locked user
before checking the password, 6.4+ check the password first and a right password resets
the counter, so there the lock refuses token logins only.
"""
import pytest

from cloudify_rest_client.exceptions import UserUnauthorizedError

from tests.simulator.helpers import raw, wait_until

BLUEPRINTS = '/api/v3.1/blueprints'


def fail_logins(mgr, count, username='admin'):
    for _ in range(count):
        assert raw(mgr, 'GET', BLUEPRINTS, username=username,
                   password='wrong-password').status_code == 401


def test_counts_failed_logins_per_user(simulated_manager):
    """behaviour §12.10: failures are counted per user; a right password resets the counter
    (MGR@7.0.4 user_handler.py `_reset_failed_logins_counter`)."""
    mgr = simulated_manager('7.0', data='demo')
    fail_logins(mgr, 3)
    fail_logins(mgr, 1, 'alice')
    assert mgr.failed_logins('admin') == 3 and mgr.failed_logins('alice') == 1
    assert raw(mgr, 'GET', BLUEPRINTS).status_code == 200
    assert mgr.failed_logins('admin') == 0 and mgr.failed_logins('alice') == 1


def test_default_period_never_locks(simulated_manager):
    """MI@7.0.4 config.yaml: account_lock_period -1, "no account lockout"."""
    mgr = simulated_manager('7.0')
    fail_logins(mgr, 6)
    assert mgr.failed_logins('admin') == 6
    assert not mgr.is_locked('admin')
    token = mgr.client().tokens.create(description='x').value
    assert raw(mgr, 'GET', BLUEPRINTS, auth=False,
               headers={'Authentication-Token': token}).status_code == 200


def test_lock_after_more_than_n_failures_70(simulated_manager):
    """MGR@7.0.4 User.is_locked: counter > 4 locks (the fifth failure), for the period;
    GET /user shows is_locked.  From 6.4 the right password still logs in (and resets the
    counter); a token of the locked user is refused until then."""
    mgr = simulated_manager('7.0', account_lock_period=10)
    token = mgr.client().tokens.create(description='x').value
    by_token = {'Authentication-Token': token}
    fail_logins(mgr, 4)
    assert not mgr.is_locked('admin')
    fail_logins(mgr, 1)
    assert mgr.is_locked('admin')
    refused = raw(mgr, 'GET', BLUEPRINTS, auth=False, headers=by_token)
    assert refused.status_code == 401
    assert 'Wrong credentials or locked account' in refused.json()['message']
    assert raw(mgr, 'GET', BLUEPRINTS).status_code == 200          # right password
    assert not mgr.is_locked('admin')
    assert raw(mgr, 'GET', BLUEPRINTS, auth=False, headers=by_token).status_code == 200
    assert raw(mgr, 'GET', '/api/v3.1/user').json()['is_locked'] is False


@pytest.mark.parametrize('version', ['4.4', '6.0'])
def test_locked_before_password_check_up_to_63(simulated_manager, version):
    """MGR@4.4..6.3 authentication.py `_check_if_user_is_locked`: a locked user is refused
    even with the right password until the period has passed."""
    mgr = simulated_manager(version, failed_logins_before_account_lock=2,
                            account_lock_period=0.1)
    fail_logins(mgr, 3)
    assert mgr.is_locked('admin')
    refused = raw(mgr, 'GET', BLUEPRINTS)
    assert refused.status_code == 401
    assert 'locked account' in refused.json()['message']
    with pytest.raises(UserUnauthorizedError):
        mgr.client().blueprints.list()
    wait_until(lambda: raw(mgr, 'GET', BLUEPRINTS).status_code == 200, 10,
               what='the lock period to pass')
    assert mgr.failed_logins('admin') == 0


def test_no_counter_before_44(simulated_manager):
    """The counter and the lock settings appear in 4.4 (MGR@4.4 management_models.py)."""
    mgr = simulated_manager('4.3', account_lock_period=10)
    fail_logins(mgr, 6)
    assert mgr.failed_logins('admin') == 0
    assert raw(mgr, 'GET', BLUEPRINTS).status_code == 200


def test_request_log_records_credentials_not_passwords(simulated_manager):
    """The log says which user's credentials reached the manager, whether they were
    accepted, and a fingerprint of the password (never the password itself), so a test can
    assert which password reached which manager."""
    old = simulated_manager('5.1')
    new = simulated_manager('7.0')
    raw(new, 'GET', BLUEPRINTS, password=old.admin_password)        # the wrong manager's
    raw(new, 'GET', BLUEPRINTS)
    token = new.client().tokens.create(description='x').value
    raw(new, 'GET', BLUEPRINTS, auth=False, headers={'Authentication-Token': token})
    logins = new.requests.logins('admin')
    assert [e['auth_ok'] for e in logins][:2] == [False, True]
    assert logins[0]['password_fingerprint'] == new.password_fingerprint(old.admin_password)
    assert new.password_fingerprint(old.admin_password) != \
        new.password_fingerprint(new.admin_password)
    assert new.requests.logins('admin', ok=False) == logins[:1]
    by_token = [e for e in new.requests if e['auth_method'] == 'token']
    assert by_token and by_token[-1]['auth_user'] == 'admin' and by_token[-1]['auth_ok']
    assert by_token[-1]['password_fingerprint'] is None
    text = repr(list(new.requests))
    assert old.admin_password not in text and new.admin_password not in text
    assert token not in text
    assert old.requests.logins() == []
