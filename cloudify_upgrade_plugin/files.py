"""Local files: cfy's workdir, private directories and atomic writes.

The bottom layer for everything the plugin writes on the operator's machine (the workspace,
the journal, snapshot checksums, the SSH known-hosts file).  Directories are created 0700
and files written 0600, set explicitly so that the operator's umask does not matter; a file
is replaced atomically (temporary file in the same directory, fsync, ``os.replace``, fsync
of the directory), so a crash leaves the old content or the new one, never a mix.
"""
import os
import tempfile

DIR_MODE = 0o700
FILE_MODE = 0o600


def cfy_workdir() -> str:
    """cfy's state directory, computed like ``cloudify_cli.env.CLOUDIFY_WORKDIR``.

    ``$CFY_WORKDIR/.cloudify`` or ``~/.cloudify``; read at call time (cloudify_cli.env computes
    it once at import, tests change ``CFY_WORKDIR`` afterwards).
    """
    base = os.environ.get('CFY_WORKDIR') or os.path.expanduser('~')
    return os.path.join(base, '.cloudify')


def make_private_dirs(path) -> str:
    """Create ``path`` and missing parents; the directories created get mode 0700."""
    path = os.path.abspath(path)
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(directory, DIR_MODE)
    return path


def fsync_dir(directory) -> None:
    """fsync a directory so a rename in it survives a crash (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data, mode=FILE_MODE) -> str:
    """Write ``data`` (bytes or str) to ``path`` atomically with ``mode``.

    A temporary file in the same directory is written, fsynced, chmod-ed and renamed over
    ``path`` with ``os.replace``; then the directory is fsynced.  On any failure the temporary
    file is removed and ``path`` keeps its previous content (or stays absent).
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    directory = os.path.dirname(os.path.abspath(path))
    make_private_dirs(directory)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return path
