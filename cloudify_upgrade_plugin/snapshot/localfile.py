"""The local side of a snapshot transfer: SHA-256 files and the ``.part`` of a download.

- ``sha256_file``, ``verify_file`` (rehash and compare with ``<file>.sha256``),
  ``read_sha256_file``.
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
"""
import contextlib
import errno
import hashlib
import os
import queue
import shutil
import threading
from typing import Any, Iterator, Tuple

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.files import atomic_write, fsync_dir, open_private, refuse_link
from cloudify_upgrade_plugin.snapshot.progress import human_size

DEFAULT_CHUNK = 1 << 20

HASH_QUEUE_DEPTH = 4        # blocks (of at most chunk_size) waiting for the hash worker

FLUSH_EVERY = 32 << 20      # bytes written between two background fdatasync()s
_DISK_FULL_ERRNOS = frozenset([errno.ENOSPC, errno.EDQUOT])


class LocalWriteError(Exception):
    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def sha256_file(path, chunk_size=DEFAULT_CHUNK) -> str:
    """Hex SHA-256 of a file, read in chunks (constant memory)."""
    return hash_file(path, chunk_size)[0].hexdigest()


def hash_file(path, chunk_size=DEFAULT_CHUNK) -> Tuple[Any, int]:
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


def read_sha256_file(path) -> str:
    """The hex digest recorded in a ``<file>.sha256`` (``"<hex>  <name>"``)."""
    with open(path, 'r') as f:
        return f.read().split()[0].strip().lower()


def verify_file(path, chunk_size=DEFAULT_CHUNK) -> str:
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
    actual = hash_file(path, chunk_size)[0].hexdigest()
    if actual != recorded:
        raise UpgradeError(
            'The archive {0} does not match its recorded SHA-256 (recorded {1}, now {2}).'
            .format(path, recorded, actual),
            error_id='snapshot-hash-mismatch',
            hints=['The file changed or was corrupted after it was downloaded; '
                   'delete it and download the snapshot again.'])
    return actual


def unlink_quiet(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Hasher:
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


class _Flusher:
    """``fdatasync()`` of the ``.part`` in a worker thread, on request.

    The durability ``fsync`` before the rename would otherwise write back every page of the
    download at the end (the kernel's own writeback starts after 30 s), which costs as much
    as a tenth of a loopback download.  ``request()`` asks for one more flush (requests
    made while one runs are merged) and raises a flush error in the caller's thread;
    ``close()`` waits for a running flush, ends the worker and raises its error.  A flush
    error is only reported once by the kernel (to this flush, not to a later ``fsync``),
    so it is kept and raised as a ``LocalWriteError``, like a failed write.
    """

    def __init__(self, fd):
        self.fd = fd
        self.error = None
        self._wanted = threading.Event()
        self._closing = False
        self._requested = False
        self._thread = threading.Thread(target=self._run, name='snapshot-flush',
                                        daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._requested:
                # a flush asked for before close() is done, never dropped by the closing
                self._requested = False
                try:
                    _fdatasync(self.fd)
                except OSError as exc:
                    self.error = exc
                    return
            if self._closing:
                return

    def request(self):
        if self.error is not None:
            raise LocalWriteError(self.error)
        self._requested = True
        self._wanted.set()

    def close(self):
        self._closing = True
        self._wanted.set()
        self._thread.join()
        if self.error is not None:
            raise LocalWriteError(self.error)


def _fdatasync(fd):
    getattr(os, 'fdatasync', os.fsync)(fd)


class PartState:
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
    def streaming(self) -> Iterator[None]:
        """While the block runs, ``write()`` hands the hash and the flushes to workers.

        On leaving, whatever happens, both workers are drained and joined: the digest then
        covers the whole ``.part``.  A worker's error is raised (a flush error as the
        ``LocalWriteError`` a write would raise) and wins over an ordinary exception on
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

    def load_existing(self) -> None:
        refuse_link(self.path)
        self.digest, self.offset = hash_file(self.path, self.chunk_size)

    def open(self) -> None:
        try:
            self.fd = open_private(self.path, os.O_WRONLY | os.O_CREAT)
            os.fchmod(self.fd, 0o600)
            os.ftruncate(self.fd, self.offset)
            os.lseek(self.fd, self.offset, os.SEEK_SET)
        except OSError as exc:
            raise LocalWriteError(exc)

    def restart(self) -> None:
        if self._hasher is not None:
            raise RuntimeError('restart() while the workers run')
        self.digest = hashlib.sha256()
        self.offset = 0
        try:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
        except OSError as exc:
            raise LocalWriteError(exc)

    def write(self, block) -> None:
        try:
            _write_all(self.fd, block)
        except OSError as exc:
            raise LocalWriteError(exc)
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

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def finish(self, dest, total) -> dict:
        if self.broken is not None:
            raise self.broken
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise LocalWriteError(exc)
        self.close()
        hexdigest = self.digest.hexdigest()
        sha_path = dest + '.sha256'
        directory = os.path.dirname(dest)
        try:
            # Never let a file under the final name disagree with the hash next to it.
            unlink_quiet(dest)
            unlink_quiet(sha_path)
            atomic_write(sha_path, '{0}  {1}\n'.format(hexdigest, os.path.basename(dest)))
            os.replace(self.path, dest)
            fsync_dir(directory)
        except OSError as exc:
            raise LocalWriteError(exc)
        return {'sha256': hexdigest, 'size': self.offset, 'path': dest}


def local_write_error(error, directory, state, expected_size) -> UpgradeError:
    """The UpgradeError for a local write that failed while downloading: ``local-disk-full``
    (with what is free and needed) or ``local-write-failed``."""
    if getattr(error, 'errno', None) in _DISK_FULL_ERRNOS:
        total = state.total or expected_size
        needed = None if total is None else max(total - state.offset, 0)
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            free = None
        return UpgradeError(
            'The local disk is full: {0} has {1} free and the download needs {2} more '
            '({3} written so far).'.format(directory, human_size(free), human_size(needed),
                                           human_size(state.offset)),
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
