"""Contract of the 7.0 API tokens (tests/simulator/tokens.py): expiration dates, the purge
of expired tokens, the 401 messages, revocation (cloudify-manager@7.0.4
rest-service/manager_rest/rest/resources_v3_1/tokens.py, storage/management_models.py
``User.create_auth_token``, security/user_handler.py ``get_token_status``; cloudify-common
@7.0.4 cloudify/utils.py ``parse_utc_datetime``)."""
import datetime

import pytest

from tests.simulator import tokens
from tests.simulator.helpers import raw

TOKENS = '/api/v3.1/tokens'


def _new(mgr, **body):
    return raw(mgr, 'POST', TOKENS, json_body=dict({'description': 'x'}, **body))


def _use(mgr, value):
    return raw(mgr, 'GET', '/api/v3.1/blueprints', auth=False,
               headers={'Authentication-Token': value})


def test_relative_expiration_is_from_utcnow_truncated_to_the_minute():
    now = datetime.datetime(2026, 12, 3, 10, 17, 42, 5)
    assert tokens.parse_expiration('+70min', now) == datetime.datetime(2026, 12, 3, 11, 27)
    assert tokens.parse_expiration('+1h+10min', now) == datetime.datetime(2026, 12, 3, 11, 27)
    assert tokens.parse_expiration('2027-01-02 03:04', now) == datetime.datetime(
        2027, 1, 2, 3, 4)
    assert tokens.parse_expiration(None, now) is None
    with pytest.raises(tokens.TokenError) as info:
        tokens.parse_expiration('tomorrow', now)
    assert info.value.status == 500      # NonRecoverableError inside the REST service


def test_a_token_with_an_expiration_date_works_until_it_passes(simulated_manager):
    mgr = simulated_manager('7.0')
    created = _new(mgr, expiration_date='+10min')
    assert created.status_code == 200
    token = created.json()
    assert token['expiration_date'] and token['value'].startswith('ctok-' + token['id'])
    assert _use(mgr, token['value']).status_code == 200
    with mgr.store.lock:
        mgr.store.tokens[token['id']]['expiration_date'] = \
            datetime.datetime.utcnow() - datetime.timedelta(seconds=1)
    expired = _use(mgr, token['value'])
    assert expired.status_code == 401
    assert expired.json()['message'] == 'User unauthorized: Token is expired'
    _new(mgr)                            # creating a token purges the user's expired ones
    assert token['id'] not in mgr.store.tokens


def test_an_expiration_date_in_the_past_is_refused(simulated_manager):
    mgr = simulated_manager('7.0')
    refused = _new(mgr, expiration_date='2020-01-01 00:00')
    assert refused.status_code == 400
    assert refused.json() == {'message': 'Expiration date was in the past.',
                              'error_code': 'bad_parameters_error',
                              'server_traceback': None}


def test_revoking_a_token(simulated_manager):
    mgr = simulated_manager('7.0')
    token = _new(mgr).json()
    assert raw(mgr, 'GET', TOKENS + '/' + token['id']).json()['value'].endswith('-********')
    gone = raw(mgr, 'DELETE', TOKENS + '/' + token['id'])
    assert gone.status_code == 204 and gone.content == b''
    assert _use(mgr, token['value']).json()['message'] == 'User unauthorized: Unauthorized'
    again = raw(mgr, 'DELETE', TOKENS + '/' + token['id'])
    assert again.status_code == 404
    assert again.json()['message'] == 'Could not find token {0}'.format(token['id'])
    assert _use(mgr, 'ctok-nodashes').json()['message'] == \
        'User unauthorized: Invalid token structure'


def test_a_token_may_revoke_itself(simulated_manager):
    mgr = simulated_manager('7.0')
    token = _new(mgr).json()
    gone = raw(mgr, 'DELETE', TOKENS + '/' + token['id'], auth=False,
               headers={'Authentication-Token': token['value']})
    assert gone.status_code == 204
    assert mgr.token_history[-1]['value'] == token['value']
