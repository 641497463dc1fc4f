"""Retries and error translation for REST calls to a manager.

Owns: which failures are transient (connection errors, timeouts, HTTP 5xx), the exponential
backoff used for idempotent calls only (a POST/PUT is never repeated behind the caller's
back), and the translation of client errors into ``UpgradeError`` with stable ids that name
the manager: ``manager-auth-failed`` (401), ``manager-forbidden`` (403), ``not-found``
(404), ``manager-unlicensed`` (the licence gate of a premium 4.6+ manager, behaviour §12.2),
``manager-unreachable``, ``manager-tls-failed``, ``manager-answer-too-large``,
``manager-too-slow`` (``manager/session.py``; never retried) and
``manager-request-failed``.

An error answer is summarized, never shown raw (issue 17 item 14): the status with its reason,
Cloudify's ``error_code`` and ``message`` when the body is the REST service's JSON error
(``{"message", "error_code", "server_traceback"}``; the traceback is left out), else what the
body is (an HTML page and its title: nginx or a proxy answered, not the REST service).  The
error's ``details['cause']`` is the same text without the manager's name, for messages that
already name the manager (``cause_of``).
"""
import html
import re
import time
from http import HTTPStatus
from typing import Any, List, Optional

import requests
from cloudify_rest_client.exceptions import CloudifyClientError

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager.session import (
    AnswerTooLarge, AnswerTooSlow, answer_error)

_MAX_MESSAGE = 400
# behaviour §12.2: what an unlicensed (or expired-trial) premium manager answers outside its
# allow-list (cloudify-common@7.0.4 cloudify_rest_client/exceptions.py)
LICENCE_ERROR_CODES = ('missing_cloudify_license', 'expired_cloudify_license')
# What a call to a manager may raise before ``translate``: transport and client errors.
TRANSPORT_ERRORS = (requests.exceptions.RequestException, CloudifyClientError)


class RetryPolicy:
    """How often and how patiently an idempotent call is retried.

    ``delay(n)`` = min(max_delay, base_delay * factor ** n); ``sleep`` is injectable so that
    tests never wait.
    """

    def __init__(self, attempts=4, base_delay=0.5, factor=2.0, max_delay=5.0, sleep=None):
        if attempts < 1:
            raise ValueError('attempts must be >= 1')
        self.attempts = attempts
        self.base_delay = base_delay
        self.factor = factor
        self.max_delay = max_delay
        self.sleep = sleep or time.sleep

    def delay(self, attempt) -> float:
        return min(self.max_delay, self.base_delay * (self.factor ** attempt))


NO_RETRY = RetryPolicy(attempts=1)


def status_of(exc) -> Optional[int]:
    """The HTTP status of a client error, or None (connection errors and the like)."""
    status = getattr(exc, 'status_code', None)
    if isinstance(status, int) and status > 0:
        return status
    return None


def is_connection_error(exc) -> bool:
    """True for a connection that failed or timed out (TLS failures included), as opposed
    to an answer the manager gave."""
    return isinstance(exc, (requests.exceptions.ConnectionError,
                            requests.exceptions.Timeout))


def is_transient(exc) -> bool:
    """Whether ``exc`` is worth retrying: no connection, a timeout, or an HTTP 5xx.

    TLS failures are not transient (a wrong certificate stays wrong).
    """
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, CloudifyClientError):
        status = status_of(exc)
        return status is not None and status >= 500
    return False


def call_with_retries(func, idempotent, policy=None, what='request') -> Any:
    """Run ``func()``; retry transient failures with backoff when ``idempotent``.

    Raises the last exception unchanged (translation is the caller's job).
    """
    policy = policy or RetryPolicy()
    attempts = policy.attempts if idempotent else 1
    attempt = 0
    while True:
        try:
            return func()
        except Exception as exc:
            attempt += 1
            if attempt >= attempts or not is_transient(exc):
                raise
            delay = policy.delay(attempt - 1)
            get_logger().debug('%s failed (%s); retry %d/%d in %.1fs', what,
                               short_message(exc), attempt, attempts - 1, delay)
            policy.sleep(delay)


def short_message(exc) -> str:
    """The server's message without traceback or HTML noise, bounded in length."""
    if isinstance(exc, CloudifyClientError):
        body = _body_summary(exc)
        if body is not None:
            return body
        message = getattr(exc, '_message', None) or (exc.args[0] if exc.args else '')
    else:
        message = str(exc)
    return _bounded(message)


def _bounded(message) -> str:
    if isinstance(message, bytes):
        message = message.decode('utf-8', 'replace')
    message = ' '.join(str(message).split())
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + '...'
    return message


_TITLE = re.compile(r'<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>', re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r'<[^>]*>')
# cloudify_rest_client's message for a body that is not JSON: "502: b'<html>...' [url]"
_RAW_BODY = re.compile(r'^\d{3}: (?:b[\'"])?\s*<', re.IGNORECASE)


def _body_summary(exc) -> Optional[str]:
    """What a non-JSON error body was (an HTML page and its title, or its first words), or
    None when the REST service answered its own JSON error (its message is used)."""
    response = getattr(exc, 'response', None)
    text = None
    if response is not None:
        kind = (response.headers.get('Content-Type') or '').split(';')[0].strip().lower()
        if kind.endswith('json'):
            return None
        text = response.text or ''
    else:
        message = getattr(exc, '_message', None) or (exc.args[0] if exc.args else '')
        if not isinstance(message, str) or not _RAW_BODY.match(message):
            return None
        text = message
    if not text.strip():
        return 'an empty answer'
    if '<' in text and re.search(r'<(html|head|body|title|h1|!doctype)\b', text, re.IGNORECASE):
        match = _TITLE.search(text)
        title = ' '.join(html.unescape(_TAG.sub('', next(g for g in match.groups() if g is not
                                                         None))).split()) if match else ''
        title = ''.join(c for c in title if c.isprintable())[:120]
        page = 'an HTML page "{0}"'.format(title) if title else 'an HTML page'
        return page + ' (a web server or proxy answered, not the REST service)'
    return 'a non-JSON answer: "{0}"'.format(_bounded(
        ''.join(c if c.isprintable() else ' ' for c in text[:_MAX_MESSAGE])))


def _status_text(status) -> str:
    try:
        return '{0} {1}'.format(status, HTTPStatus(status).phrase)
    except ValueError:
        return str(status)


def cause_of(error) -> str:
    """What went wrong in a failed call, without the manager's name (for a message that
    already names it); any other error's message."""
    return (getattr(error, 'details', None) or {}).get('cause') or getattr(
        error, 'message', None) or str(error)


def credentials_hints() -> List[str]:
    return [
        "Check the profile's credentials (`cfy profiles set --manager-username ... "
        "--manager-password ...`) or the CLOUDIFY_USERNAME / CLOUDIFY_PASSWORD environment "
        "variables (one or the other, not both).",
        "After restoring a snapshot from a 4.2+ manager, the admin password is the old "
        "manager's admin password.",
    ]


def translate(exc, manager_label, what=None) -> UpgradeError:
    """An ``UpgradeError`` for a failed REST call to ``manager_label``.

    ``details`` carries ``status_code``, ``error_code`` and ``transient`` so that waits can
    decide whether to keep polling, and ``cause``: the message without the manager's name.
    """
    if isinstance(exc, UpgradeError):
        return exc
    if isinstance(exc, (AnswerTooLarge, AnswerTooSlow)):
        return answer_error(exc, manager_label, what)
    status = status_of(exc)
    error_code = getattr(exc, 'error_code', None)
    message = short_message(exc)
    doing = ' ({0})'.format(what) if what else ''
    details = {'status_code': status, 'error_code': error_code,
               'transient': is_transient(exc), 'manager': manager_label}

    def error(text, cause, **kwargs):
        details['cause'] = cause
        return UpgradeError(text, details=details, **kwargs)

    if isinstance(exc, requests.exceptions.SSLError):
        return error(
            'TLS connection to {0} failed{1}: {2}'.format(manager_label, doing, message),
            'TLS connection failed{0}: {1}'.format(doing, message),
            error_id='manager-tls-failed',
            hints=["Give the manager's CA certificate to the profile: `cfy profiles set "
                   "--rest-certificate PATH` (TLS verification stays on).",
                   'If the manager serves plain HTTP (the 4.x-5.x default), set '
                   '`cfy profiles set --ssl off` (port 80).'])
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        requests.exceptions.ChunkedEncodingError)):
        return error(
            'Cannot reach {0}{1}: {2}'.format(manager_label, doing, message),
            'not reachable{0}: {1}'.format(doing, message),
            error_id='manager-unreachable',
            hints=['Check that the manager is up and that its REST port is reachable from '
                   'here (`cfy profiles show-current`).'])
    code = ', error {0}'.format(error_code) if error_code else ''
    answered = 'answered HTTP {0}{1}{2}: {3}'.format(
        _status_text(status) if status else 'with an error', code, doing, message)
    if error_code in LICENCE_ERROR_CODES:
        return error(
            '{0} has no usable licence{1}: {2}'.format(manager_label, doing, message), answered,
            error_id='manager-unlicensed',
            hints=['Upload a licence to it: `cfy license upload LICENCE_FILE` (an unlicensed '
                   'premium manager answers only a few read requests).'])
    if status == 401:
        return error('{0} refused the credentials{1}{2}: {3}'.format(
            manager_label, code, doing, message), answered,
            error_id='manager-auth-failed', hints=credentials_hints())
    if status == 403:
        return error(
            '{0} forbids this{1}{2}: {3}'.format(manager_label, code, doing, message), answered,
            error_id='manager-forbidden',
            hints=["Check the tenant (`cfy profiles set --manager-tenant`, CLOUDIFY_TENANT) "
                   "and that the user is an admin; snapshot restores need the manager's "
                   "bootstrap admin."])
    if status == 404:
        return error(
            'Not found on {0}{1}{2}: {3}'.format(manager_label, code, doing, message), answered,
            error_id='not-found',
            hints=['Check the id and the tenant: snapshots and executions are visible in '
                   'the tenant they were created in.'])
    return error(
        '{0} {1}'.format(manager_label, answered), answered,
        error_id='manager-request-failed',
        hints=['Check the manager\'s state (`cfy status`) and retry.'])
