"""Streamed, hashed, resumable snapshot transfer between this machine and a manager.

This module owns moving snapshot archives over HTTP(S):

- ``download()`` streams ``GET .../snapshots/<id>/archive`` (or any URL) into
  ``<dest>.part`` (mode 0600) with constant memory, computing SHA-256 in the same pass.
  A dropped connection or a short read is resumed with ``Range: bytes=N-``; only a 206
  whose ``Content-Range`` starts at N is accepted, anything else (a 200 that ignores the
  range, a 206 at another offset) restarts from zero and rehashes.  The size is checked
  against ``Content-Length`` (or the total of ``Content-Range`` on a resumed request)
  when the server sends one, and against ``expected_size`` when the caller knows it.
  Managers from 5.1 on send no ``Content-Length`` from the REST layer (behaviour §3.3), but
  nginx serving the X-Accel target normally does; when neither is known a clean end of
  stream is accepted and logged as unverified.
- A ``.part`` left by an earlier call (give-up, crash, disk full) is resumed by the next
  call: it is re-read once to rebuild the SHA-256 state (hash objects cannot be
  persisted), then the download continues from its size.  ``resume_partial=False``
  discards it instead.
- ``upload()`` sends a file as the raw request body with a ``Content-Length`` (a
  sized body, never ``Transfer-Encoding: chunked``: a 7.0 REST service reached
  without nginx refuses chunked bodies, observed-7.0 §3.1), constant memory,
  ``Content-Type: application/octet-stream``, expecting 201.  The body is an iterable of
  ``chunk_size`` (1 MiB) blocks with a length, not a file object: urllib3 reads a file
  object ``blocksize`` (16 KiB) at a time and sends each read separately, while it sends
  each block of an iterable with one ``sendall``, whatever session the caller passes.
- The ``.part`` file, its hash and flush workers and the ordered finish are
  ``snapshot/localfile.py``; ``sha256_file()``, ``verify_file()`` (from there) and
  ``progress_reporter()`` (``snapshot/progress.py``) are importable from here too.

Where connection settings come from: the first argument (``source``) is a
``manager.connection.Connection`` (``Manager.connection()``: the session, versioned base
URL, headers and TLS verification the manager's REST client uses, so relative URLs such as
``/snapshots/x/archive`` use its API prefix), a ``requests.Session`` or None (a new
session; the URL must then be absolute).  Explicit ``headers``/``verify`` arguments
override.  Headers are never logged.  TLS verification is only off when asked for
(``verify=False`` or the connection's trust_all, i.e. ``CLOUDIFY_SSL_TRUST_ALL``), and that
is logged as a warning.  Kerberos auth is not supported here (the stock client buffers
whole files for it).
"""
import os
import time
from urllib.parse import quote

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.files import refuse_link
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager.connection import Connection
from cloudify_upgrade_plugin.manager import logins
from cloudify_upgrade_plugin.snapshot.localfile import (  # noqa: F401  (the module's API)
    DEFAULT_CHUNK, LocalWriteError, PartState, local_write_error, read_sha256_file,
    sha256_file, unlink_quiet, verify_file)
from cloudify_upgrade_plugin.snapshot.progress import (  # noqa: F401  (the module's API)
    human_size, progress_reporter)

DEFAULT_TIMEOUT = (10, 120)
RETRYABLE_STATUS = frozenset([408, 429, 500, 502, 503, 504])


class _Retry(Exception):
    """One attempt failed in a way that a new request (maybe resumed) may fix."""

    def __init__(self, cause, restart=False):
        super().__init__(cause)
        self.cause = cause
        self.restart = restart


# --------------------------------------------------------------------------- helpers


def _resolve(source, url, headers, verify):
    """Work out (session, absolute url, headers, verify) from what the caller has."""
    if isinstance(source, Connection):
        session = source.session
        url = source.url(url)
        merged = CaseInsensitiveDict(source.headers)
        merged.update(headers or {})
        headers = merged
        if verify is None:
            verify = source.verify
            if verify is False:
                get_logger().warning(
                    'TLS certificate verification is disabled by the profile/environment '
                    '(CLOUDIFY_SSL_TRUST_ALL) for %s', url)
    elif source is None or isinstance(source, requests.Session):
        session = source
    else:
        raise TypeError('cannot take connection settings from {0!r}'.format(
            type(source).__name__))
    if session is None:
        session = requests.Session()
    if url.startswith('/'):
        raise ValueError('a relative URL needs a connection to resolve it: {0}'.format(url))
    if verify is None:
        verify = True
    return session, url, CaseInsensitiveDict(headers or {}), verify


def snapshot_archive_uri(snapshot_id) -> str:
    """The archive path relative to a client's versioned base URL."""
    return '/snapshots/{0}/archive'.format(quote(snapshot_id, safe=''))


def _server_message(response):
    try:
        body = response.json()
        if isinstance(body, dict):
            code = body.get('error_code')
            message = body.get('message') or body.get('detail') or ''
            return '{0}{1}'.format('{0}: '.format(code) if code else '', message).strip()
    except ValueError:
        pass
    text = (response.text or '').strip().replace('\n', ' ')
    return text[:200]


# --------------------------------------------------------------------------- download


def download(source, url, dest, headers=None, verify=None, expected_size=None,
             progress=None, max_resumes=5, chunk_size=DEFAULT_CHUNK, timeout=DEFAULT_TIMEOUT,
             resume_partial=True, backoff=1.0, sleep=time.sleep) -> dict:
    """Download ``url`` to ``dest``; return ``{'sha256', 'size', 'path', 'resumes'}``.

    ``source``: a ``Connection`` (see the module docstring), a requests.Session, or None
    (a new session).  ``url`` may be relative to the connection's versioned base URL
    (``snapshot_archive_uri(id)``).  ``max_resumes`` bounds how many
    extra requests follow a failed one (connection drop, short read, retryable 5xx, a
    resume refused at the wrong offset); between them we sleep ``backoff * 2**n`` seconds
    (capped at 30).  ``progress(done, total_or_None)`` is called after every chunk.

    Errors: ``UpgradeError('download-failed')`` (server refusal or too many failures; the
    ``.part`` stays for a later call to resume), ``UpgradeError('local-disk-full')``.
    """
    log = get_logger()
    session, url, headers, verify = _resolve(source, url, headers, verify)
    headers['Accept-Encoding'] = 'identity'
    headers.pop('Content-Type', None)
    dest = os.path.abspath(dest)
    directory = os.path.dirname(dest)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    part = dest + '.part'
    refuse_link(part)       # a planted link would make the download append to its target

    state = PartState(part, chunk_size)
    if os.path.exists(part):
        if resume_partial and (expected_size is None or
                               os.path.getsize(part) <= expected_size):
            state.load_existing()
            if state.offset:
                log.info('Resuming %s from %s already on disk',
                         os.path.basename(dest), human_size(state.offset))
        else:
            unlink_quiet(part)

    resumes = 0
    last_cause = None
    try:
        state.open()
        while True:
            try:
                total = _attempt(session, url, headers, verify, timeout, state,
                                 expected_size, progress, chunk_size, dest)
                break
            except _Retry as retry:
                last_cause = retry.cause
                if retry.restart:
                    state.restart()
                if resumes >= max_resumes:
                    raise UpgradeError(
                        'Downloading {0} failed after {1} attempt(s): {2}'.format(
                            url, resumes + 1, last_cause),
                        error_id='download-failed',
                        hints=['Check that the manager is reachable and healthy, then rerun '
                               'the command: the download resumes from {0}.'.format(part),
                               'If the connection keeps dropping, check proxies and load '
                               'balancers between this machine and the manager.'],
                        details={'url': url, 'bytes': state.offset, 'part': part})
                resumes += 1
                delay = min(backoff * (2 ** (resumes - 1)), 30) if backoff else 0
                log.warning('Download of %s interrupted at %s (%s); %s (%d/%d)',
                            os.path.basename(dest), human_size(state.offset), last_cause,
                            'restarting' if state.offset == 0 else 'resuming',
                            resumes, max_resumes)
                if delay:
                    sleep(delay)
        result = state.finish(dest, total)
    except LocalWriteError as exc:
        state.close()
        raise local_write_error(exc.error, directory, state, expected_size)
    except BaseException:
        state.close()
        raise
    result['resumes'] = resumes
    log.info('Downloaded %s (%s, sha256 %s)', dest, human_size(result['size']), result['sha256'])
    return result


def download_snapshot(source, snapshot_id, dest, progress=None, **kwargs) -> dict:
    """``download()`` of ``GET <client base>/snapshots/<id>/archive``."""
    return download(source, snapshot_archive_uri(snapshot_id), dest, progress=progress,
                    **kwargs)


def _parse_content_range(value):
    """``bytes START-END/TOTAL`` -> (start, end, total or None); None when unparsable."""
    try:
        unit, _, spec = value.strip().partition(' ')
        if unit.lower() != 'bytes':
            return None
        span, _, total = spec.partition('/')
        total = None if total.strip() == '*' else int(total)
        if span.strip() == '*':
            return None, None, total
        start, _, end = span.partition('-')
        return int(start), int(end), total
    except (ValueError, AttributeError):
        return None


def _int_header(response, name):
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _attempt(session, url, headers, verify, timeout, state, expected_size, progress,
             chunk_size, dest):
    """One request; returns the verified total, or raises _Retry / UpgradeError."""
    log = get_logger()
    request_headers = CaseInsensitiveDict(headers)
    resumed_from = state.offset
    if resumed_from:
        request_headers['Range'] = 'bytes={0}-'.format(resumed_from)
    logins.check_headers(url, request_headers)
    try:
        response = session.get(url, headers=request_headers, stream=True, verify=verify,
                               timeout=timeout)
    except requests.exceptions.SSLError as exc:
        raise UpgradeError(
            'TLS error talking to {0}: {1}'.format(url, exc), error_id='download-failed',
            hints=['Check the profile\'s REST certificate (cfy profiles set '
                   '--rest-certificate PATH).'])
    except (requests.exceptions.RequestException, OSError) as exc:
        raise _Retry('connection error: {0}'.format(exc))
    logins.observe(url, request_headers, response.status_code)
    try:
        status = response.status_code
        total = None
        if status == 416 and resumed_from:
            parsed = _parse_content_range(response.headers.get('Content-Range', ''))
            server_total = parsed[2] if parsed else None
            if server_total is not None and server_total == resumed_from:
                state.total = server_total
                _report(progress, state.offset, server_total)
                return server_total     # the .part already holds everything
            raise _Retry('range {0}- not satisfiable (server size {1})'.format(
                resumed_from, server_total), restart=True)
        if status == 200:
            if resumed_from:
                log.info('The server ignored the Range request; restarting %s from zero',
                         os.path.basename(dest))
                state.restart()
            total = _int_header(response, 'Content-Length')
            if total == 0 and response.headers.get('X-Accel-Redirect'):
                raise UpgradeError(
                    'The REST service answered {0} with an X-Accel-Redirect and no file: '
                    'it was reached without the nginx in front of it.'.format(url),
                    error_id='download-failed',
                    hints=['Use the manager\'s public address and port (nginx) in the '
                           'profile, not the REST service\'s internal port.'])
        elif status == 206:
            parsed = _parse_content_range(response.headers.get('Content-Range', ''))
            if not resumed_from or parsed is None or parsed[0] != resumed_from:
                raise _Retry('resume refused: asked for bytes {0}- and got Content-Range '
                             '{1!r}'.format(resumed_from,
                                            response.headers.get('Content-Range')),
                             restart=True)
            total = parsed[2]
            if total is None:
                length = _int_header(response, 'Content-Length')
                total = None if length is None else resumed_from + length
        elif status in RETRYABLE_STATUS:
            raise _Retry('HTTP {0} {1}'.format(status, _server_message(response)))
        else:
            raise UpgradeError(
                'The manager refused the download of {0}: HTTP {1} {2}'.format(
                    url, status, _server_message(response)),
                error_id='download-failed',
                hints=_refusal_hints(status),
                details={'url': url, 'status': status})
        if expected_size is not None and total is not None and total != expected_size:
            raise UpgradeError(
                'The server announces {0} bytes for {1} but {2} were expected.'.format(
                    total, url, expected_size),
                error_id='download-failed',
                hints=['The archive on the manager is not the one expected; check the '
                       'snapshot id.'],
                details={'url': url, 'announced': total, 'expected': expected_size})
        if total is None:
            total = expected_size
        state.total = total
        _report(progress, state.offset, total)
        try:
            with state.streaming():
                for block in _blocks(response, chunk_size):
                    if not block:
                        continue
                    if total is not None and state.offset + len(block) > total:
                        raise UpgradeError(
                            'The server sent more than the {0} bytes announced or expected '
                            'for {1}.'.format(total, url),
                            error_id='download-failed',
                            hints=['The manager (or a proxy in front of it) sent a different '
                                   'archive than it announced; check the snapshot on the '
                                   'manager, then run the same command again (the .part '
                                   'file is kept).'],
                            details={'url': url, 'announced': total})
                    state.write(block)
                    _report(progress, state.offset, total)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            # OSError here is a socket error: local write errors are LocalWriteError.
            raise _Retry('connection dropped after {0}: {1}'.format(
                human_size(state.offset), exc))
        if total is not None and state.offset < total:
            raise _Retry('short read: {0} of {1} bytes'.format(state.offset, total))
        if total is None:
            log.warning('The server announced no size for %s; %s received, size not '
                        'verified', os.path.basename(dest), human_size(state.offset))
        return state.offset
    finally:
        response.close()


def _blocks(response, chunk_size):
    """Yield the body as it arrives (at most ``chunk_size`` per block).

    ``iter_content``/``read(amt)`` wait for a full ``amt`` and drop what they hold when
    the connection breaks, so a connection that always dies within one chunk would never
    progress.  ``read1`` hands over whatever arrived; chunked bodies go through
    ``read_chunked``.  Both raise urllib3 errors on a short read.
    """
    raw = response.raw
    if getattr(raw, 'chunked', False) and getattr(raw, 'supports_chunked_reads',
                                                  lambda: False)():
        yield from raw.read_chunked(chunk_size, decode_content=True)
    elif hasattr(raw, 'read1'):
        while True:
            block = raw.read1(chunk_size, decode_content=True)
            if not block:
                return
            yield block
    else:   # pragma: no cover - urllib3 1.x
        yield from response.iter_content(chunk_size)


def _report(progress, done, total):
    if progress is not None:
        progress(done, total)


def _refusal_hints(status):
    if status in (401, 403):
        return ['Check the profile\'s credentials and tenant (cfy profiles show-current); '
                'snapshots are tenant-scoped, use the tenant the snapshot was created in.']
    if status == 404:
        return ['Check the snapshot id (cfy snapshots list) and the API version.']
    if status == 400:
        return ['A failed snapshot cannot be downloaded: check its status with '
                'cfy snapshots list and create a new one.']
    return ['Check the manager\'s health (cfy status) and its logs.']


# --------------------------------------------------------------------------- upload


class _UploadBody:
    """The request body of an upload: the file in ``block``-sized pieces, with a length.

    requests sends ``Content-Length: len(body)`` (never chunked) and urllib3 hands each
    piece the iterator yields to one ``sendall``.  There is deliberately no ``read()``:
    urllib3 would then read ``blocksize`` (16 KiB) at a time and send every read on its
    own, which costs measurably more CPU per GiB than 1 MiB sends (benchmarks/README.md).
    ``progress(done, total)`` is called about every ``every`` bytes and at the end.  One
    pass only: the file is read as it is sent (constant memory).
    """

    def __init__(self, f, size, progress, every, block=DEFAULT_CHUNK):
        self._f = f
        self._size = size
        self._progress = progress
        self._every = max(every, 1)
        self._block = max(block, 1)
        self._done = 0
        self._reported = 0

    def __len__(self):
        return self._size

    def __iter__(self):
        while self._done < self._size:
            data = self._f.read(min(self._block, self._size - self._done))
            if not data:
                return      # the file shrank while sent: a short body, the request fails
            self._done += len(data)
            if self._progress is not None and (
                    self._done - self._reported >= self._every or
                    (self._done >= self._size and self._reported < self._size)):
                self._reported = self._done
                self._progress(self._done, self._size)
            yield data


def upload(source, url, path, headers=None, verify=None, progress=None,
           chunk_size=DEFAULT_CHUNK, timeout=(10, 600), params=None, expected_status=201) -> dict:
    """PUT the file at ``path`` as the raw body of ``url``; return the parsed JSON answer.

    The body is an iterable of ``chunk_size`` blocks with a length (``_UploadBody``), so
    requests sends ``Content-Length`` and streams it one ``sendall`` per block (constant
    memory), never chunked.  ``progress(done, total)`` is called about every
    ``chunk_size`` bytes and at the end.  ``params``: query parameters
    (e.g. ``private_resource`` on 4.0-4.2).

    Errors: ``UpgradeError('snapshot-already-exists')`` on 409,
    ``UpgradeError('upload-failed')`` otherwise.
    """
    log = get_logger()
    session, url, headers, verify = _resolve(source, url, headers, verify)
    headers.pop('Content-Type', None)
    headers['Content-Type'] = 'application/octet-stream'
    size = os.path.getsize(path)
    logins.check_headers(url, headers)
    with open(path, 'rb') as f:
        body = _UploadBody(f, size, progress, chunk_size, chunk_size)
        try:
            response = session.put(url, data=body if size else b'', headers=headers,
                                   params=params, verify=verify, timeout=timeout)
        except requests.exceptions.SSLError as exc:
            raise UpgradeError(
                'TLS error talking to {0}: {1}'.format(url, exc), error_id='upload-failed',
                hints=['Check the profile\'s REST certificate (cfy profiles set '
                       '--rest-certificate PATH).'])
        except (requests.exceptions.RequestException, OSError) as exc:
            raise UpgradeError(
                'Uploading {0} to {1} failed: {2}'.format(path, url, exc),
                error_id='upload-failed',
                hints=['Check that the manager is reachable, then rerun the command.'],
                details={'url': url})
    logins.observe(url, headers, response.status_code)
    try:
        if response.status_code == 409:
            raise UpgradeError(
                'The manager already has this snapshot id: {0}'.format(
                    _server_message(response)),
                error_id='snapshot-already-exists',
                hints=['Delete the snapshot on the target (cfy snapshots delete ID) or '
                       'upload under another id.'],
                details={'url': url, 'status': 409})
        if response.status_code != expected_status:
            hints = ['Check the manager\'s health (cfy status) and its logs.']
            if response.status_code == 413:
                hints.insert(0, 'A proxy in front of the manager limits the request size.')
            raise UpgradeError(
                'The manager refused the upload to {0}: HTTP {1} {2}'.format(
                    url, response.status_code, _server_message(response)),
                error_id='upload-failed', hints=hints,
                details={'url': url, 'status': response.status_code})
        try:
            answer = response.json()
        except ValueError:
            log.warning('The manager accepted the upload but its answer is not JSON')
            answer = {}
    finally:
        response.close()
    log.info('Uploaded %s (%s) to %s', path, human_size(size), url)
    return answer


def upload_snapshot(source, snapshot_id, path, progress=None, **kwargs) -> dict:
    """``upload()`` to ``PUT <client base>/snapshots/<id>/archive``."""
    return upload(source, snapshot_archive_uri(snapshot_id), path, progress=progress,
                  **kwargs)
