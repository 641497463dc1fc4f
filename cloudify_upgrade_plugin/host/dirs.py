"""Copying whole directories to and from a manager host: tar streamed over SSH.

- Directories: ``get_dir(remote_dir, local_dir)`` runs ``tar czf - -C <parent> <name>`` (with
  sudo by default: ``/etc/cloudify/ssl`` keys are not world-readable) and streams the archive
  over the exec channel into a local temp file, then extracts it safely (``tarfile`` 'data'
  filter) into a private temp directory and swaps it into ``local_dir``.  Local modes are
  0700 for directories and 0600 for files; the remote names, types, modes and owners are
  kept in ``<local_dir>.manifest.json`` (0600) so ``put_dir`` can restore them.  tar over
  exec was chosen over SFTP recursion because SFTP cannot use sudo and needs one round trip
  per file.  ``put_dir(local_dir, remote_dir)`` sends the reverse tar on stdin to
  ``tar xzf - -C <parent>`` (files present remotely but absent locally are left alone).
"""
import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile

from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.host.errors import RemoteCommandFailed
from cloudify_upgrade_plugin.log import get_logger

_BLOCK = 64 * 1024


class DirectoryCopy:
    """``Host.get_dir`` / ``Host.put_dir``: the directory side of a ``Host`` (which provides
    ``_exec``, ``_failed``, ``run`` and ``label``)."""

    def get_dir(self, remote_dir, local_dir, sudo=True) -> dict:
        """Copy a remote directory to ``local_dir`` (0700 dirs, 0600 files) -> manifest.

        The manifest ``{'remote', 'entries': [{'name', 'type', 'mode', 'uname', 'gname',
        'size', 'sha256'}]}`` is also written to ``<local_dir>.manifest.json``.
        """
        remote_dir = remote_dir.rstrip('/') or '/'
        parent, name = posixpath.split(remote_dir)
        if not name:
            raise ValueError('cannot copy the remote root directory')
        local_dir = os.path.abspath(local_dir)
        base = os.path.dirname(local_dir)
        os.makedirs(base, mode=0o700, exist_ok=True)
        work = tempfile.mkdtemp(prefix='.' + os.path.basename(local_dir) + '.', dir=base)
        try:
            os.chmod(work, 0o700)
            archive = os.path.join(work, 'stream.tar.gz')
            with open(archive, 'wb') as f:
                os.fchmod(f.fileno(), 0o600)
                argv = ['tar', 'czf', '-', '-C', parent or '/', name]
                rc, err = self._exec(argv, sudo=sudo, sink=f.write)
            if rc != 0:
                raise self._failed(argv, sudo, rc, err)
            extracted = os.path.join(work, 'x')
            os.mkdir(extracted, 0o700)
            try:
                entries = self._extract(archive, extracted, name)
            except tarfile.TarError as exc:
                raise RemoteCommandFailed(
                    'The copy of {0} from {1} is not a readable archive: {2}'.format(
                        remote_dir, self.label, exc),
                    hints=['Rerun the command; check tar on the manager host.'])
            staged = os.path.join(extracted, name)
            if not os.path.isdir(staged):
                raise RemoteCommandFailed(
                    '{0} on {1} is not a directory'.format(remote_dir, self.label))
            old = None
            if os.path.lexists(local_dir):
                old = os.path.join(work, 'old')
                os.rename(local_dir, old)
            os.rename(staged, local_dir)
            manifest = {'remote': remote_dir, 'entries': entries}
            atomic_write(local_dir + '.manifest.json',
                         json.dumps(manifest, indent=2, sort_keys=True).encode())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        get_logger().info('Copied %s:%s to %s (%d entries)', self.label, remote_dir,
                          local_dir, len(entries))
        return manifest

    @staticmethod
    def _extract(archive, dest, name):
        entries = []
        with tarfile.open(archive, 'r:gz') as tar:
            members = []
            for member in tar.getmembers():
                parts = member.name.split('/')
                if parts[0] != name or '..' in parts or member.name.startswith('/'):
                    raise RemoteCommandFailed(
                        'Unexpected member {0!r} in the copy of {1}'.format(member.name, name))
                if not (member.isfile() or member.isdir() or member.issym()):
                    continue
                members.append(member)
                entries.append({
                    'name': posixpath.relpath(member.name, name),
                    'type': 'dir' if member.isdir() else 'link' if member.issym() else 'file',
                    'mode': '{0:04o}'.format(member.mode & 0o7777),
                    'uname': member.uname, 'gname': member.gname,
                    'size': member.size if member.isfile() else 0,
                    'target': member.linkname if member.issym() else None})
            try:
                tar.extractall(dest, members=members, filter='data')
            except (tarfile.TarError, OSError) as exc:
                raise RemoteCommandFailed(
                    'Cannot unpack the copy of {0}: {1}'.format(name, exc),
                    hints=['Check the directory on the manager host (links leaving it are '
                           'refused) and the local free space.'])
        for entry in entries:
            local = os.path.join(dest, name, entry['name'])
            if entry['type'] == 'link':
                continue
            os.chmod(local, 0o700 if entry['type'] == 'dir' else 0o600)
            if entry['type'] == 'file':
                digest = hashlib.sha256()
                with open(local, 'rb') as f:
                    for block in iter(lambda: f.read(_BLOCK), b''):
                        digest.update(block)
                entry['sha256'] = digest.hexdigest()
        return entries

    def put_dir(self, local_dir, remote_dir, sudo=True) -> None:
        """Copy ``local_dir`` to ``remote_dir`` (tar on stdin), restoring manifest modes.

        Modes and owner names come from ``<local_dir>.manifest.json`` when present (as made
        by ``get_dir``); otherwise the local modes are used and owners are left to tar.
        """
        remote_dir = remote_dir.rstrip('/')
        parent, name = posixpath.split(remote_dir)
        if not name:
            raise ValueError('cannot write the remote root directory')
        local_dir = os.path.abspath(local_dir)
        manifest = {}
        manifest_path = local_dir + '.manifest.json'
        if os.path.exists(manifest_path):
            with open(manifest_path) as f:
                manifest = {e['name']: e for e in json.load(f).get('entries', [])}

        def restore(info):
            rel = posixpath.relpath(info.name, name)
            entry = manifest.get(rel)
            if entry:
                info.mode = int(entry['mode'], 8)
                info.uname = entry.get('uname') or ''
                info.gname = entry.get('gname') or ''
            else:
                info.uname = info.gname = ''
            info.uid = info.gid = 0
            return info

        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode='w:gz') as tar:
                tar.add(local_dir, arcname=name, filter=restore)
            buf.seek(0)
            if parent:
                self.run(['mkdir', '-p', parent], sudo=sudo)
            argv = ['tar', 'xzf', '-', '-C', parent or '/']
            rc, err = self._exec(argv, sudo=sudo, stdin=buf)
        if rc != 0:
            raise self._failed(argv, sudo, rc, err)
