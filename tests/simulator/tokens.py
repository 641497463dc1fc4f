"""API tokens kept in the 7.0 manager's database: creation with an expiration date, the
check of every ``Authentication-Token``, revocation.

Sources (cloudify-manager@7.0.4):
- ``rest-service/manager_rest/rest/resources_v3_1/tokens.py``: ``POST /tokens`` takes
  ``description`` and ``expiration_date`` (parsed by ``parse_utc_datetime(value,
  timezone="UTC")``) and first purges the user's expired tokens
  (``_purge_expired_user_tokens``); ``DELETE /tokens/<id>`` answers 204 for the owner or a
  user who may manage others' tokens (sys_admin), else 404 ``Could not find token <id>``;
  ``GET /tokens/<id>`` likewise.
- ``rest-service/manager_rest/storage/management_models.py`` ``User.create_auth_token``: an
  expiration date already past is 400 ``Expiration date was in the past.``; the id is 10 and
  the secret 40 letters and digits; the value is ``ctok-<id>-<secret>`` (the secret only in
  the creation answer).
- ``rest-service/manager_rest/security/user_handler.py`` ``get_token_status``: a value that
  does not split into three parts is 401 ``Invalid token structure``; a wrong secret 401
  ``Unauthorized``; an expired token 401 ``Token is expired`` (``utils.is_expired``:
  expiry <= utcnow).
- cloudify-common@7.0.4 ``cloudify/utils.py`` ``parse_utc_datetime``: ``+<n><unit>`` relative
  to utcnow truncated to the minute (units min, h, d, w, mo, y), or ``YYYY-MM-DD HH:MM``;
  anything else raises ``NonRecoverableError`` (a 500 from the REST service).

The simulated store keeps ``{'id', 'secret', 'username', 'role', 'expiration_date' (a naive
UTC datetime or None), 'last_used', 'description'}`` in ``Store.tokens``; ``history`` (on the
manager, surviving restores) keeps every value issued, for tests that search for leaks.
"""
import datetime
import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_DELTA = re.compile(r'(\+\d+\ ?[a-z]+\ ?)')
_UNIT = re.compile(r'^(\d+)\ ?(min(ute)?|h(our)?|d(ay)?|w(eek)?|mo(nth)?|y(ear)?)s?$')


class TokenError(Exception):
    """(status, error_code, message) of a refused token operation."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def utcnow():
    return datetime.datetime.utcnow()


def _random(length):
    return ''.join(secrets.choice(_ALPHABET) for _ in range(length))


def parse_expiration(value, now=None):
    """``parse_utc_datetime(value, timezone="UTC")`` -> a naive UTC datetime (or None)."""
    if not value:
        return None
    now = now or utcnow()
    text = str(value)
    if text.startswith('+'):
        deltas = _DELTA.findall(text)
        if not deltas:
            raise TokenError(500, 'internal_server_error',
                             '{0} is not a legal time delta'.format(text))
        moment = now.replace(second=0, microsecond=0)
        for delta in deltas:
            match = _UNIT.match(delta.strip().lstrip('+'))
            if not match:
                raise TokenError(500, 'internal_server_error',
                                 '{0} is not a legal time delta'.format(delta))
            number, unit = int(match.group(1)), match.group(2)
            if unit in ('y', 'year'):
                moment = moment.replace(year=moment.year + number)
            elif unit in ('mo', 'month'):
                months = moment.month - 1 + number
                moment = moment.replace(year=moment.year + months // 12,
                                        month=months % 12 + 1)
            else:
                minutes = {'min': 1, 'minute': 1, 'h': 60, 'hour': 60, 'd': 1440,
                           'day': 1440, 'w': 10080, 'week': 10080}[unit]
                moment += datetime.timedelta(minutes=number * minutes)
        return moment
    try:
        return datetime.datetime.strptime(text, '%Y-%m-%d %H:%M')
    except ValueError:
        raise TokenError(500, 'internal_server_error',
                         '{0} is not a legal time format. accepted formats are '
                         'YYYY-MM-DD HH:MM | HH:MM'.format(text))


def expired(record, now=None):
    expiry = record.get('expiration_date')
    return expiry is not None and expiry <= (now or utcnow())


def create(store, user, description=None, expiration=None, history=None):
    """A new token of ``user`` (purging its expired ones first); the creation answer."""
    now = utcnow()
    with store.lock:
        for tid in [tid for tid, rec in store.tokens.items()
                    if rec['username'] == user['username'] and expired(rec, now)]:
            del store.tokens[tid]
    expiry = parse_expiration(expiration, now)
    if expiry is not None and expiry <= now:
        raise TokenError(400, 'bad_parameters_error', 'Expiration date was in the past.')
    record = {'id': _random(10), 'secret': _random(40), 'username': user['username'],
              'role': user['role'], 'expiration_date': expiry, 'last_used': None,
              'description': description}
    with store.lock:
        store.tokens[record['id']] = record
    answer = present(record)
    answer['value'] = 'ctok-{0}-{1}'.format(record['id'], record['secret'])
    if history is not None:
        history.append({'id': record['id'], 'description': description,
                        'expiration_date': answer['expiration_date'],
                        'value': answer['value']})
    return answer


def present(record):
    """A token as the REST service shows it (the secret masked)."""
    expiry = record.get('expiration_date')
    return {'id': record['id'], 'value': 'ctok-{0}-********'.format(record['id']),
            'username': record['username'], 'role': record['role'],
            'expiration_date': expiry.strftime('%Y-%m-%dT%H:%M:%S.%fZ')[:-4] + 'Z'
            if expiry else None,
            'last_used': record.get('last_used'), 'description': record.get('description')}


def user_of(store, value):
    """The username a token value logs in as; ``TokenError`` 401 otherwise."""
    parts = value.split('-', 2)
    if len(parts) != 3:
        raise TokenError(401, 'unauthorized_error', 'User unauthorized: Invalid token '
                                                    'structure')
    _, tid, secret = parts
    with store.lock:
        record = store.tokens.get(tid)
        error = 'Unauthorized'
        username = None
        if record is not None:
            if secrets.compare_digest(record['secret'], secret):
                username, error = record['username'], None
            if expired(record):
                error = 'Token is expired'
        if error is None:
            record['last_used'] = utcnow().strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'
    if error:
        raise TokenError(401, 'unauthorized_error', 'User unauthorized: ' + error)
    return username


def _manageable(store, tid, user):
    with store.lock:
        record = store.tokens.get(tid)
    if record is None or not (record['username'] == user['username']
                              or user['role'] in ('sys_admin', 'admin')):
        raise TokenError(404, 'not_found_error', 'Could not find token {0}'.format(tid))
    return record


def get(store, tid, user):
    return present(_manageable(store, tid, user))


def delete(store, tid, user):
    _manageable(store, tid, user)
    with store.lock:
        store.tokens.pop(tid, None)
