"""Local files: cfy's workdir, private directories and atomic writes.

The bottom layer for everything the plugin writes on the operator's machine (the workspace,
the journal, snapshot checksums, the SSH known-hosts file).  Directories are created 0700
and files written 0600, set explicitly so that the operator's umask does not matter; a file
is replaced atomically (temporary file in the same directory, fsync, ``os.replace``, fsync
of the directory), so a crash leaves the old content or the new one, never a mix.

Symbolic links are never followed where the plugin writes (issue 17 item 6): files it
appends to or creates in place are opened with ``O_NOFOLLOW`` (``open_private``), the
directories it creates must not be links, and ``enforce_private_tree`` checks a whole
directory (a workspace) when it is opened: a link anywhere in it, or an entry owned by
another user, is refused (``UnsafePath``, id ``workspace-unsafe``, exit 2); a directory
that is not 0700 or a file that is not 0600 is put back to those modes.
"""
import errno
import os
import stat
import tempfile
from typing import List

from cloudify_upgrade_plugin.errors import InputError

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


class UnsafePath(InputError):
    """A link or a foreign entry where the plugin keeps its private files (exit 2)."""
    default_id = 'workspace-unsafe'


def unsafe(path, why) -> UnsafePath:
    return UnsafePath(
        '{0} {1}: the plugin never follows links or uses files of another user where it '
        'keeps its private files.'.format(path, why),
        hints=['Look at what put it there; remove it (`rm {0}`; a link is removed, not '
               'what it points to), then run the same command again.'.format(path)])


def open_private(path, flags, mode=FILE_MODE) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode)``; a link is ``UnsafePath``."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise unsafe(path, 'is a symbolic link') from error
        raise


def refuse_link(path) -> None:
    """``UnsafePath`` when ``path`` is a symbolic link (a missing path is fine)."""
    if os.path.islink(path):
        raise unsafe(path, 'is a symbolic link')


def enforce_private_tree(root) -> List[str]:
    """Check everything under ``root`` (not following links); return what was re-moded.

    A symbolic link or an entry not owned by this user is ``UnsafePath``; directories are
    set to 0700 and regular files to 0600 where they are not.
    """
    fixed = []
    uid = os.getuid()
    for current, dirs, names in os.walk(root, followlinks=False):
        entries = [current] if current == root else []
        entries += [os.path.join(current, name) for name in dirs + names]
        for path in entries:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):
                raise unsafe(path, 'is a symbolic link')
            if info.st_uid != uid:
                raise unsafe(path, 'belongs to another user (uid {0})'.format(info.st_uid))
            wanted = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
            if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode):
                if stat.S_IMODE(info.st_mode) != wanted:
                    os.chmod(path, wanted)      # not a link: checked just above
                    fixed.append(path)
    return fixed


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
            refuse_link(directory)
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


# A password file is one line; anything bigger is not one (and is not read whole).
MAX_SECRET_FILE = 64 * 1024


def read_secret_line(path, option) -> str:
    """The first line of the file ``path`` given to ``option`` (a password file, issue 17
    item 11), without its line ending.

    Refused (``InputError`` ``bad-password-file``, exit 2; the message names the path, never
    the content): a symbolic link (``O_NOFOLLOW``: the operator names the file itself, so a
    link planted in its place is not followed), anything but a regular file (a FIFO or a
    device is not read: ``O_NONBLOCK``), a file over 64 KiB, text that is not UTF-8, an
    empty first line.  A file that others may read gets a warning (like ssh's keys).
    """
    def refuse(why, hint='Give a regular file whose first line is the password.'):
        return InputError('Cannot use {0} {1}: {2}.'.format(option, path, why),
                          error_id='bad-password-file', hints=[hint])

    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, 'O_NONBLOCK', 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise refuse('it is a symbolic link', 'Give the path of the file itself '
                         '(e.g. `readlink -f {0}`).'.format(path)) from None
        raise refuse(error.strerror or 'it cannot be opened') from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse('it is not a regular file')
        if info.st_size > MAX_SECRET_FILE:
            raise refuse('it is larger than {0} KiB'.format(MAX_SECRET_FILE // 1024))
        data = os.read(fd, MAX_SECRET_FILE + 1)
        mode = stat.S_IMODE(info.st_mode)
    finally:
        os.close(fd)
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise refuse('it is not UTF-8 text') from None
    line = text.splitlines()[0] if text else ''
    if not line:
        raise refuse('its first line is empty')
    if mode & 0o077:
        from cloudify_upgrade_plugin.log import get_logger
        get_logger().warning('%s %s can be read by other users (mode %04o); '
                             '`chmod 600 %s`.', option, path, mode, path)
    return line
