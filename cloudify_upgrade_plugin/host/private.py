"""Writing a secret file on a manager host, private from its first byte (issue 16 item 3).

``put_private(host, data, remote, tag, mode=0o600, owner=None)`` replaces ``remote`` (as root)
with ``data`` without the bytes ever being readable by anyone else on the host and without a
local temporary file:

1. ``sudo rm -rf <dir>/.cfy-upgrade-<tag>`` (what a killed run may have left), then
   ``sudo mkdir -m 700 <dir>/.cfy-upgrade-<tag>``: a root-only directory next to the
   destination (same file system, so the final rename is atomic; never ``/tmp``);
2. the bytes go over the SSH exec channel as a one-member tar on the stdin of
   ``sudo tar xf - -C <that directory>`` (the member's mode is ``mode``; tar creates the file
   inside the 0700 directory);
3. ``chown`` / ``chmod`` the staged file, ``sudo mv -f`` it onto ``remote``;
4. ``sudo rm -rf`` the directory, whatever happened.

``remote_sha256(host, path)`` is the file's SHA-256 as ``sudo sha256sum`` computes it on the
host (None when the file is missing).  A minimal helper of this branch; the plugin's general
host staging (upgrade-id named directories under /tmp, leftovers cleaned) lives elsewhere.
"""
import io
import posixpath
import re
import tarfile
import time
from typing import Optional

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host.errors import RemoteCommandFailed

_TAG = re.compile(r'[^A-Za-z0-9._-]')


def staging_dir(remote: str, tag: str) -> str:
    """The root-only directory next to ``remote`` that holds the file while it is written."""
    return posixpath.join(posixpath.dirname(remote) or '/',
                          '.cfy-upgrade-' + (_TAG.sub('_', tag) or 'staging'))


def _one_member_tar(name: str, data: bytes, mode: int) -> bytes:
    buffer = io.BytesIO()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    info.uid = info.gid = 0
    info.uname = info.gname = 'root'
    with tarfile.open(fileobj=buffer, mode='w') as tar:
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_private(host, data: bytes, remote: str, tag: str, mode: int = 0o600,
                owner: Optional[str] = None) -> None:
    """Replace ``remote`` with ``data`` through a root-only staging directory (see above)."""
    staging = staging_dir(remote, tag)
    name = posixpath.basename(remote)
    staged = posixpath.join(staging, name)
    host.run(['rm', '-rf', staging], sudo=True)
    host.run(['mkdir', '-m', '700', staging], sudo=True)
    try:
        argv = ['tar', 'xf', '-', '-C', staging]
        rc, err = host._exec(argv, sudo=True, stdin=_one_member_tar(name, data, mode))
        if rc != 0:
            raise host._failed(argv, True, rc, err)
        if owner:
            host.run(['chown', owner, staged], sudo=True)
        host.run(['chmod', '{0:o}'.format(mode), staged], sudo=True)
        host.run(['mv', '-f', staged, remote], sudo=True)
    finally:
        try:
            host.run(['rm', '-rf', staging], sudo=True, check=False)
        except UpgradeError:
            pass


def remote_sha256(host, path: str) -> Optional[str]:
    """SHA-256 of a file on the host (``sudo sha256sum``), None when it does not exist."""
    rc, out = host.run(['sha256sum', path], sudo=True, check=False)
    if rc != 0:
        if not host.file_exists(path, sudo=True):
            return None
        raise RemoteCommandFailed('Cannot compute the SHA-256 of {0} on {1} (exit {2}).'.format(
            path, host.label, rc), hints=['Check `sudo sha256sum {0}` on the host.'.format(path)])
    digest = out.split()[0] if out.split() else ''
    if not re.fullmatch(r'[0-9a-f]{64}', digest):
        raise RemoteCommandFailed('Unexpected sha256sum output for {0} on {1}.'.format(
            path, host.label), hints=['Check `sudo sha256sum {0}` on the host.'.format(path)])
    return digest
