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
- Two worker threads take work off the reading thread while a response streams:
  SHA-256, fed through a bounded queue (at most ``HASH_QUEUE_DEPTH`` blocks in flight,
  constant memory), so hashing overlaps the socket reads and the disk writes (hashlib
  releases the GIL on big buffers); and an ``fdatasync`` every ``FLUSH_EVERY`` bytes, so
  the durability fsync at the end has only the tail left to write back.  The writes stay
  in the calling thread, so the ``.part`` size is always the resume offset and local
  write errors are mapped where they happen.  Both workers are drained and joined before
  a request's outcome is decided (the digest then covers exactly the ``.part``); an
  error in one is raised again in the calling thread (a flush error as a write error:
  ``local-disk-full`` / ``local-write-failed``) and nothing is finished after it.
- Finishing is ordered so that a file under the final name always matches the hash
  written next to it: any old ``dest``/``dest.sha256`` is removed, the ``.part`` is
  fsynced, ``dest.sha256`` (``"<hex>  <name>\\n"``, 0600) is written atomically, then
  ``os.replace(part, dest)`` and the directory is fsynced.  A crash in between leaves at
  worst a ``.sha256`` without its archive and a complete ``.part``, which a rerun turns
  into the final file.
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
- ``sha256_file()``, ``verify_file()`` and ``progress_reporter()`` (a cfy-style progress
  bar on a TTY, a rate-limited log line otherwise).

Where connection settings come from: the first argument (``source``) may be a
``requests.Session``, a ``cloudify_rest_client.CloudifyClient``, its ``HTTPClient``
(``client._client``), or any object with a ``.client`` attribute holding a CloudifyClient
(the plugin's ``manager.Manager``).  From a client we take its session, its versioned base
URL (so relative URLs such as ``/snapshots/x/archive`` use the client's API prefix), its
headers (Tenant, Authorization or Authentication-Token) and ``get_request_verify()``.
Explicit ``headers``/``verify`` arguments override.  Headers are never logged.  TLS
verification is only off when asked for (``verify=False`` or the client's trust_all, i.e.
``CLOUDIFY_SSL_TRUST_ALL``), and that is logged as a warning.  Kerberos auth is not
supported here (the stock client buffers whole files for it).
"""
import contextlib
import errno
import hashlib
import os
import queue
import shutil
import sys
import threading
import time
from urllib.parse import quote

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from cloudify_upgrade_plugin.files import atomic_write, fsync_dir
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger

DEFAULT_CHUNK = 1 << 20
HASH_QUEUE_DEPTH = 4        # blocks (of at most chunk_size) waiting for the hash worker
FLUSH_EVERY = 32 << 20      # bytes written between two background fdatasync()s
DEFAULT_TIMEOUT = (10, 120)
RETRYABLE_STATUS = frozenset([408, 429, 500, 502, 503, 504])
_DISK_FULL_ERRNOS = frozenset([errno.ENOSPC, errno.EDQUOT])


class _Retry(Exception):
    """One attempt failed in a way that a new request (maybe resumed) may fix."""

    def __init__(self, cause, restart=False):
        super(_Retry, self).__init__(cause)
        self.cause = cause
        self.restart = restart


class _LocalWriteError(Exception):
    def __init__(self, error):
        super(_LocalWriteError, self).__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------- helpers


def sha256_file(path, chunk_size=DEFAULT_CHUNK):
    """Hex SHA-256 of a file, read in chunks (constant memory)."""
    return _hash_file(path, chunk_size)[0].hexdigest()


def _hash_file(path, chunk_size=DEFAULT_CHUNK):
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest, size


def read_sha256_file(path):
    """The hex digest recorded in a ``<file>.sha256`` (``"<hex>  <name>"``)."""
    with open(path, 'r') as f:
        return f.read().split()[0].strip().lower()


def verify_file(path, chunk_size=DEFAULT_CHUNK):
    """Rehash ``path`` and compare with ``path.sha256``; return the hex SHA-256.

    Raises ``UpgradeError('snapshot-hash-mismatch')`` when the digests differ and
    ``UpgradeError('snapshot-hash-missing')`` when the archive or its ``.sha256`` is absent.
    """
    sha_path = path + '.sha256'
    if not os.path.isfile(path) or not os.path.isfile(sha_path):
        raise UpgradeError(
            'No verified download at {0} (the archive or its .sha256 is missing).'.format(
                path),
            error_id='snapshot-hash-missing',
            hints=['Download the snapshot again (rerun the command: the step is redone).'])
    recorded = read_sha256_file(sha_path)
    actual = _hash_file(path, chunk_size)[0].hexdigest()
    if actual != recorded:
        raise UpgradeError(
            'The archive {0} does not match its recorded SHA-256 (recorded {1}, now {2}).'
            .format(path, recorded, actual),
            error_id='snapshot-hash-mismatch',
            hints=['The file changed or was corrupted after it was downloaded; '
                   'delete it and download the snapshot again.'])
    return actual


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _human(n):
    if n is None:
        return 'an unknown number of bytes'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return '{0:.1f} {1}'.format(n, unit) if unit != 'B' else '{0} B'.format(n)
        n /= 1024.0


def _resolve(source, url, headers, verify):
    """Work out (session, absolute url, headers, verify) from what the caller has."""
    http = None
    session = None
    if isinstance(source, requests.Session):
        session = source
    elif source is not None:
        candidate = source
        if hasattr(candidate, 'client') and hasattr(candidate.client, '_client'):
            candidate = candidate.client            # a Manager
        if hasattr(candidate, '_client') and hasattr(candidate._client, 'headers'):
            candidate = candidate._client           # a CloudifyClient
        if hasattr(candidate, 'headers') and hasattr(candidate, 'get_request_verify'):
            http = candidate                        # an HTTPClient
        else:
            raise TypeError('cannot take connection settings from {0!r}'.format(
                type(source).__name__))
    if http is not None:
        session = getattr(http, '_session', None) or getattr(http, 'session', None)
        if url.startswith('/'):
            url = http.url + url
        merged = CaseInsensitiveDict(http.headers)
        if headers:
            merged.update(headers)
        headers = merged
        if verify is None:
            verify = http.get_request_verify()
            if verify is False:
                get_logger().warning(
                    'TLS certificate verification is disabled by the profile/environment '
                    '(CLOUDIFY_SSL_TRUST_ALL) for %s', url)
    if session is None:
        session = requests.Session()
    if url.startswith('/'):
        raise ValueError('a relative URL needs a client to resolve it: {0}'.format(url))
    if verify is None:
        verify = True
    return session, url, CaseInsensitiveDict(headers or {}), verify


def snapshot_archive_uri(snapshot_id):
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


# --------------------------------------------------------------------------- progress


def progress_reporter(path, action='Downloading', stream=None, interval=5.0,
                      clock=time.monotonic, logger=None):
    """A ``progress(done, total)`` callback like ``cfy snapshots download`` shows.

    On a TTY it draws cfy's progress bar (``cloudify_cli.utils.generate_progress_handler``);
    otherwise it logs at most one line every ``interval`` seconds, plus the last one.
    ``total`` may be None (size not announced by the server).
    """
    stream = stream or sys.stdout
    logger = logger or get_logger()
    name = os.path.basename(path)
    bar = None
    if hasattr(stream, 'isatty') and stream.isatty():
        try:
            from cloudify_cli.utils import generate_progress_handler
            bar = generate_progress_handler(path, action)
        except Exception:
            bar = None
    state = {'last': None}

    def progress(done, total):
        if bar is not None and total:
            bar(done, total)
            return
        now = clock()
        finished = total is not None and done >= total
        if not finished and state['last'] is not None and now - state['last'] < interval:
            return
        state['last'] = now
        if total:
            logger.info('%s %s: %s of %s (%d%%)', action, name, _human(done), _human(total),
                        int(100 * done / total))
        else:
            logger.info('%s %s: %s', action, name, _human(done))
    return progress


# --------------------------------------------------------------------------- download


def download(source, url, dest, headers=None, verify=None, expected_size=None,
             progress=None, max_resumes=5, chunk_size=DEFAULT_CHUNK, timeout=DEFAULT_TIMEOUT,
             resume_partial=True, backoff=1.0, sleep=time.sleep):
    """Download ``url`` to ``dest``; return ``{'sha256', 'size', 'path', 'resumes'}``.

    ``source``: a requests.Session, a CloudifyClient / HTTPClient / Manager (see the module
    docstring), or None (a new session).  ``url`` may be relative to the client's
    versioned base URL (``snapshot_archive_uri(id)``).  ``max_resumes`` bounds how many
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

    state = _PartState(part, chunk_size)
    if os.path.exists(part):
        if resume_partial and (expected_size is None or
                               os.path.getsize(part) <= expected_size):
            state.load_existing()
            if state.offset:
                log.info('Resuming %s from %s already on disk',
                         os.path.basename(dest), _human(state.offset))
        else:
            _unlink_quiet(part)

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
                            os.path.basename(dest), _human(state.offset), last_cause,
                            'restarting' if state.offset == 0 else 'resuming',
                            resumes, max_resumes)
                if delay:
                    sleep(delay)
        result = state.finish(dest, total)
    except _LocalWriteError as exc:
        state.close()
        raise _local_error(exc.error, directory, state, expected_size)
    except BaseException:
        state.close()
        raise
    result['resumes'] = resumes
    log.info('Downloaded %s (%s, sha256 %s)', dest, _human(result['size']), result['sha256'])
    return result


def download_snapshot(source, snapshot_id, dest, progress=None, **kwargs):
    """``download()`` of ``GET <client base>/snapshots/<id>/archive``."""
    return download(source, snapshot_archive_uri(snapshot_id), dest, progress=progress,
                    **kwargs)


def _local_error(error, directory, state, expected_size):
    if getattr(error, 'errno', None) in _DISK_FULL_ERRNOS:
        total = state.total or expected_size
        needed = None if total is None else max(total - state.offset, 0)
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        return UpgradeError(
            'The local disk is full: {0} has {1} free and the download needs {2} more '
            '({3} written so far).'.format(directory, _human(free), _human(needed),
                                           _human(state.offset)),
            error_id='local-disk-full',
            hints=['Free space in {0} (or use a cfy workdir on a larger disk, '
                   'CFY_WORKDIR) and rerun: the download resumes from the .part file.'
                   .format(directory)],
            details={'directory': directory, 'needed': needed, 'free': free})
    return UpgradeError(
        'Writing the download under {0} failed: {1}'.format(directory, error),
        error_id='local-write-failed',
        hints=['Check permissions and the health of the file system of {0}.'.format(
            directory)])


class _Hasher(object):
    """Feeds ``digest`` from a worker thread through a bounded queue.

    ``update()`` queues a block (blocking while ``depth`` blocks wait: constant memory) and
    raises, in the caller's thread, an error the worker met.  ``close()`` waits until
    every queued block is hashed and the worker has ended, then raises its error if any;
    the digest is complete once ``close()`` returns.
    """

    def __init__(self, digest, depth=None):
        self.digest = digest
        self.error = None
        self._queue = queue.Queue(max(HASH_QUEUE_DEPTH if depth is None else depth, 1))
        self._thread = threading.Thread(target=self._run, name='snapshot-sha256',
                                        daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self.error is None:
                try:
                    self.digest.update(block)
                except BaseException as exc:    # raised again in the caller's thread
                    self.error = exc

    def update(self, block):
        if self.error is not None:
            raise self.error
        self._queue.put(block)

    def close(self):
        # The worker keeps taking blocks, so this put waits at most for depth blocks.
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def alive(self):
        return self._thread.is_alive()


class _Flusher(object):
    """``fdatasync()`` of the ``.part`` in a worker thread, on request.

    The durability ``fsync`` before the rename would otherwise write back every page of the
    download at the end (the kernel's own writeback starts after 30 s), which costs as much
    as a tenth of a loopback download.  ``request()`` asks for one more flush (requests
    made while one runs are merged) and raises a flush error in the caller's thread;
    ``close()`` waits for a running flush, ends the worker and raises its error.  A flush
    error is only reported once by the kernel (to this flush, not to a later ``fsync``),
    so it is kept and raised as a ``_LocalWriteError``, like a failed write.
    """

    def __init__(self, fd):
        self.fd = fd
        self.error = None
        self._wanted = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name='snapshot-flush',
                                        daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._closing:
                return
            try:
                _fdatasync(self.fd)
            except OSError as exc:
                self.error = exc
                return

    def request(self):
        if self.error is not None:
            raise _LocalWriteError(self.error)
        self._wanted.set()

    def close(self):
        self._closing = True
        self._wanted.set()
        self._thread.join()
        if self.error is not None:
            raise _LocalWriteError(self.error)


def _fdatasync(fd):
    getattr(os, 'fdatasync', os.fsync)(fd)


class _PartState(object):
    """The ``.part`` file, its offset and the running SHA-256 of what it holds."""

    def __init__(self, path, chunk_size):
        self.path = path
        self.chunk_size = chunk_size
        self.digest = hashlib.sha256()
        self.offset = 0
        self.total = None
        self.fd = None
        self.broken = None      # a worker's error: nothing may be finished after it
        self._hasher = None
        self._flusher = None
        self._unflushed = 0

    @contextlib.contextmanager
    def streaming(self):
        """While the block runs, ``write()`` hands the hash and the flushes to workers.

        On leaving, whatever happens, both workers are drained and joined: the digest then
        covers the whole ``.part``.  A worker's error is raised (a flush error as the
        ``_LocalWriteError`` a write would raise) and wins over an ordinary exception on
        its way out (a dropped connection must not be retried over a local failure); it
        is also kept in ``self.broken`` so that ``finish()`` can never record a digest or
        a file that a worker failed on.
        """
        hasher = _Hasher(self.digest)
        flusher = _Flusher(self.fd)
        self._hasher, self._flusher = hasher, flusher
        try:
            yield
        except BaseException as exc:
            self._stop_workers(hasher, flusher)
            if self.broken is not None and isinstance(exc, Exception) and \
                    self.broken is not exc:
                raise self.broken from exc
            raise
        self._stop_workers(hasher, flusher)
        if self.broken is not None:
            raise self.broken

    def _stop_workers(self, hasher, flusher):
        self._hasher = self._flusher = None
        for worker in (hasher, flusher):
            try:
                worker.close()
            except BaseException as exc:
                if self.broken is None:
                    self.broken = exc

    def load_existing(self):
        self.digest, self.offset = _hash_file(self.path, self.chunk_size)

    def open(self):
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.fchmod(self.fd, 0o600)
            os.ftruncate(self.fd, self.offset)
            os.lseek(self.fd, self.offset, os.SEEK_SET)
        except OSError as exc:
            raise _LocalWriteError(exc)

    def restart(self):
        if self._hasher is not None:
            raise RuntimeError('restart() while the workers run')
        self.digest = hashlib.sha256()
        self.offset = 0
        try:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError as exc:
            raise _LocalWriteError(exc)

    def write(self, block):
        try:
            _write_all(self.fd, block)
        except OSError as exc:
            raise _LocalWriteError(exc)
        if self._hasher is not None:
            self._hasher.update(block)
        else:
            self.digest.update(block)
        self.offset += len(block)
        if self._flusher is not None:
            self._unflushed += len(block)
            if self._unflushed >= FLUSH_EVERY:
                self._unflushed = 0
                self._flusher.request()

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def finish(self, dest, total):
        if self.broken is not None:
            raise self.broken
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise _LocalWriteError(exc)
        self.close()
        hexdigest = self.digest.hexdigest()
        sha_path = dest + '.sha256'
        directory = os.path.dirname(dest)
        try:
            # Never let a file under the final name disagree with the hash next to it.
            _unlink_quiet(dest)
            _unlink_quiet(sha_path)
            atomic_write(sha_path, '{0}  {1}\n'.format(hexdigest, os.path.basename(dest)))
            os.replace(self.path, dest)
            fsync_dir(directory)
        except OSError as exc:
            raise _LocalWriteError(exc)
        return {'sha256': hexdigest, 'size': self.offset, 'path': dest}


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
                            hints=['Check the snapshot id and --expected-size; the .part '
                                   'file is kept.'],
                            details={'url': url, 'announced': total})
                    state.write(block)
                    _report(progress, state.offset, total)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            # OSError here is a socket error: local write errors are _LocalWriteError.
            raise _Retry('connection dropped after {0}: {1}'.format(
                _human(state.offset), exc))
        if total is not None and state.offset < total:
            raise _Retry('short read: {0} of {1} bytes'.format(state.offset, total))
        if total is None:
            log.warning('The server announced no size for %s; %s received, size not '
                        'verified', os.path.basename(dest), _human(state.offset))
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


class _UploadBody(object):
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
           chunk_size=DEFAULT_CHUNK, timeout=(10, 600), params=None, expected_status=201):
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
    log.info('Uploaded %s (%s) to %s', path, _human(size), url)
    return answer


def upload_snapshot(source, snapshot_id, path, progress=None, **kwargs):
    """``upload()`` to ``PUT <client base>/snapshots/<id>/archive``."""
    return upload(source, snapshot_archive_uri(snapshot_id), path, progress=progress,
                  **kwargs)
