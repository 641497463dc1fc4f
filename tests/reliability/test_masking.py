"""Secrets are masked as whole values, ordinary words never (issue 17 item 12), through the real
`cfy -vvv` against a simulated 4.1 manager whose admin password is ``admin``, ``x`` or a long
random one.

- m01: `plan -vvv`: the words that hold the password (execution, 3.x/4.x, Next, the admin)
  are printed as they are, in the output and in cfy's cli.log; nothing is masked because no
  secret is shown; the long password appears nowhere.
- m02: the old manager's execution list fails with a JSON error whose message carries the
  password as the userinfo of a URL and as a quoted value: both are masked, the sentence around
  them is not.
"""
import os
import secrets

import pytest

from tests import flows
from tests.reliability import harness

LONG = 'Lr-' + secrets.token_urlsafe(18)
PASSWORDS = ['admin', 'x', LONG]
WORDS = ['No execution is running on any tenant.', '(3.x/4.x new-host)',
         'Next: cfy upgrade prepare', '(licence, version, route, clean, admin, networks, checksum)',
         'every user but the admin needs a password reset']


def _plan(sc, *extra):
    return sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION, '-vvv',
                  '--waive', 'ssh-access', '--reason', 'no SSH in this test', *extra)


def _source(flow, simulated_manager, password):
    old = simulated_manager('4.1', data='demo', ssh=False, admin_password=password)
    flow.profile('old', old, ssh=False)
    return old


def _cli_log(sc):
    with open(os.path.join(sc.dot, 'logs', 'cli.log'), encoding='utf-8') as stream:
        return stream.read()


@pytest.mark.parametrize('password', PASSWORDS, ids=['admin', 'x', 'long'])
def test_m01_words_are_not_mangled(flow, simulated_manager, password):
    _source(flow, simulated_manager, password)
    result = _plan(flow)
    assert result.returncode == 0, harness.show(result)
    for text in (result.stdout + result.stderr, _cli_log(flow)):
        for words in WORDS:
            assert words in text, (words, text[-4000:])
        assert '***' not in text, text[-4000:]
        assert LONG not in text


@pytest.mark.parametrize('password', PASSWORDS, ids=['admin', 'x', 'long'])
def test_m02_a_password_standing_as_a_value_is_masked(flow, simulated_manager,
                                                      password):
    old = _source(flow, simulated_manager, password)
    old.faults.replace_answer(
        r'/executions$', {'message': "broker amqp://admin:{0}@10.0.0.5:5672// refused the "
                                     "login; its password is '{0}' (max retries exceeded)"
                                     .format(password),
                          'error_code': 'broker_error', 'server_traceback': None},
        status=500)
    result = _plan(flow)
    assert result.returncode == 3, harness.show(result)
    for text in (result.stdout + result.stderr, _cli_log(flow)):
        line = [line for line in text.splitlines() if 'no-active-executions:' in line][-1]
        assert "broker amqp://admin:***@10.0.0.5:5672// refused the login; its password " \
               "is '***' (max retries exceeded)" in line, line
        assert ':{0}@'.format(password) not in text
        assert "'{0}'".format(password) not in text
        assert LONG not in text
