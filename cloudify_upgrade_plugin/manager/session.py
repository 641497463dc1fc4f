"""The HTTP session every request to a manager goes through (issue 17 items 3 and 4).

``ManagerSession`` is a ``requests.Session`` that the REST client, the discovery probes and
the unauthenticated probes all use:

- **Bounded answers.** An answer read whole (every REST call; not a streamed download)
  may hold at most ``max_answer`` bytes (``CFY_UPGRADE_MAX_ANSWER_MB``, 16 MiB by
  default): a larger ``Content-Length`` is refused before a byte is read, a body that keeps
  coming is cut at the limit (``AnswerTooLarge``).  Every such request has an overall
  ``deadline`` (``CFY_UPGRADE_REQUEST_DEADLINE``, 120 s by default) from the moment it is
  sent: the body is read as it arrives and the request is abandoned once the deadline
  passes (``AnswerTooSlow``), so a manager that sends a byte a second cannot hang a
  command (the per-read timeout alone never fires then); the read timeout is never longer
  than the deadline either.  ``answer_error`` turns both into the ``UpgradeError`` ids
  ``manager-answer-too-large`` and ``manager-too-slow`` naming the manager.
- **Streaming transfers keep their own rules**: a request made with ``stream=True`` (the
  snapshot download) is not touched, and a request whose body is streamed (the snapshot
  upload) keeps its own timeouts and gets its deadline from the moment its answer starts,
  not from the start of the upload.
- **Credentials stay with their origin.** On a redirect to another origin (a change of
  scheme, host or port) the ``Authorization``, ``Authentication-Token`` and ``Tenant``
  headers are dropped (requests itself only drops ``Authorization``, and keeps it from
  http:80 to https:443).
"""
import os
import time
from typing import Optional
from urllib.parse import urlsplit

import requests

from cloudify_upgrade_plugin.errors import InputError, UpgradeError

MAX_ANSWER_SETTING = 'CFY_UPGRADE_MAX_ANSWER_MB'
DEADLINE_SETTING = 'CFY_UPGRADE_REQUEST_DEADLINE'
DEFAULT_MAX_ANSWER_MB = 16
DEFAULT_DEADLINE = 120.0
# Headers that carry who we are or where we act; never sent to another origin.
ORIGIN_BOUND_HEADERS = ('Authorization', 'Authentication-Token', 'Tenant')
_BLOCK = 64 * 1024
_MIB = 1 << 20


class AnswerTooLarge(requests.exceptions.RequestException):
    """The answer is larger than the limit (``limit``: bytes)."""

    def __init__(self, message, limit, **kwargs):
        super().__init__(message, **kwargs)
        self.limit = limit


class AnswerTooSlow(requests.exceptions.RequestException):
    """The answer did not arrive whole within the deadline (``deadline``: seconds)."""

    def __init__(self, message, deadline, **kwargs):
        super().__init__(message, **kwargs)
        self.deadline = deadline


def _setting(name, default, kind):
    text = os.environ.get(name)
    if text in (None, ''):
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise InputError('{0}={1!r} is not a positive number.'.format(name, text),
                         error_id='bad-setting',
                         hints=['Unset {0} for the default ({1}), or give a positive '
                                'number.'.format(name, default)])
    return value


def max_answer_bytes() -> int:
    """The answer size limit in bytes (``CFY_UPGRADE_MAX_ANSWER_MB`` MiB)."""
    return int(_setting(MAX_ANSWER_SETTING, DEFAULT_MAX_ANSWER_MB, float) * _MIB)


def request_deadline() -> float:
    """The overall deadline of one request in seconds (``CFY_UPGRADE_REQUEST_DEADLINE``)."""
    return _setting(DEADLINE_SETTING, DEFAULT_DEADLINE, float)


def _streamed_body(body) -> bool:
    return body is not None and not isinstance(body, (bytes, str))


def _origin(url):
    parts = urlsplit(url)
    scheme = (parts.scheme or '').lower()
    port = parts.port or {'http': 80, 'https': 443}.get(scheme)
    return scheme, (parts.hostname or '').lower(), port


def same_origin(first: str, second: str) -> bool:
    """Same scheme, host and port (a default port counts as given)."""
    return _origin(first) == _origin(second)


def _clamp(timeout, deadline):
    """The request's timeout with its read part no longer than the deadline."""
    if timeout is None:
        return (min(10.0, deadline), deadline)
    if isinstance(timeout, tuple):
        connect, read = timeout
        return (connect, deadline if read is None else min(read, deadline))
    return (timeout, min(timeout, deadline))


class ManagerSession(requests.Session):
    """A session with bounded answers and origin-bound credentials (module docstring)."""

    def __init__(self, max_answer: Optional[int] = None, deadline: Optional[float] = None):
        super().__init__()
        self.max_answer = max_answer_bytes() if max_answer is None else int(max_answer)
        self.deadline = request_deadline() if deadline is None else float(deadline)
        self.hooks['response'].append(self._read_bounded)

    def send(self, request, **kwargs):
        if not kwargs.get('stream') and not _streamed_body(request.body):
            kwargs['timeout'] = _clamp(kwargs.get('timeout'), self.deadline)
        return super().send(request, **kwargs)

    def _read_bounded(self, response, **kwargs):
        """Response hook (before requests reads the body): read it within the limits."""
        if kwargs.get('stream') or response.raw is None:
            return response
        started = time.monotonic()
        if not _streamed_body(response.request.body):
            started -= response.elapsed.total_seconds()
        url = response.url
        length = response.headers.get('Content-Length')
        if length and length.isdigit() and int(length) > self.max_answer:
            response.close()
            raise AnswerTooLarge('its answer announces {0} bytes, more than the {1} '
                                 'allowed'.format(length, self.max_answer),
                                 self.max_answer, response=response)
        chunks, size = [], 0
        try:
            for block in _blocks(response.raw):
                size += len(block)
                if size > self.max_answer:
                    raise AnswerTooLarge('its answer went past the {0} bytes allowed'.format(
                        self.max_answer), self.max_answer, response=response)
                chunks.append(block)
                if time.monotonic() - started > self.deadline:
                    raise AnswerTooSlow('its answer was still arriving after {0:g}s ({1} '
                                        'bytes of {2})'.format(self.deadline, size, url),
                                        self.deadline, response=response)
        except (AnswerTooLarge, AnswerTooSlow):
            response.close()
            raise
        response._content = b''.join(chunks)
        response._content_consumed = True
        return response

    def rebuild_auth(self, prepared_request, response):
        """Drop every origin-bound header when a redirect leaves the origin."""
        super().rebuild_auth(prepared_request, response)
        if not same_origin(response.request.url, prepared_request.url):
            for name in ORIGIN_BOUND_HEADERS:
                prepared_request.headers.pop(name, None)


def _blocks(raw):
    """The body as it arrives (``read1``: what is there, never waiting for a full block;
    chunked bodies chunk by chunk), so that the limits are checked between reads."""
    if getattr(raw, 'chunked', False) and getattr(raw, 'supports_chunked_reads',
                                                  lambda: False)():
        yield from raw.read_chunked(_BLOCK, decode_content=True)
        return
    while True:
        block = raw.read1(_BLOCK, decode_content=True)
        if not block:
            return
        yield block


def answer_error(exc: Exception, label: str, what: Optional[str] = None) -> UpgradeError:
    """The ``UpgradeError`` of an ``AnswerTooLarge`` / ``AnswerTooSlow`` of ``label``."""
    doing = ' ({0})'.format(what) if what else ''
    details = {'manager': label, 'transient': False, 'status_code': None}
    if isinstance(exc, AnswerTooLarge):
        return UpgradeError(
            '{0} sent too large an answer{1}: {2}.'.format(label, doing, exc),
            error_id='manager-answer-too-large', details=details,
            hints=['No Cloudify Manager answers a REST call with that much: check that the '
                   'profile points at the manager and not at a proxy or another service.',
                   'If it really is the manager, raise the limit with {0}=MIB (now {1:g} '
                   'MiB).'.format(MAX_ANSWER_SETTING, exc.limit / _MIB)])
    return UpgradeError(
        '{0} is too slow{1}: {2}.'.format(label, doing, exc),
        error_id='manager-too-slow', details=details,
        hints=['Check the manager\'s load and the network between here and it, then run the '
               'same command again.',
               'A manager that is only slow can be given more time with {0}=SECONDS (now '
               '{1:g}).'.format(DEADLINE_SETTING, exc.deadline)])
