"""Writing a file on a manager host so that no copy is ever readable by others.

``StagedWrite`` is the file-writing side of a ``Host`` (which provides ``run`` and
``label``), issue 17 item 2: ``write(data, remote)`` / ``put(local, remote)`` send the bytes
over the exec channel into a file created 0600 from its first byte (``umask 077``) inside a
``mktemp -d`` directory (0700, the SSH user's: under /tmp with sudo, else next to the
destination); with sudo the copy then goes next to the destination (``sudo cp``), is
chmod/chown'ed and ``sudo mv -f``'d into place, so the destination changes atomically.  The
staging directory is removed whatever happens; names carry a ``tag`` (the upgrade id) so
``clean_staging(tag)`` can remove what a killed process left, and nothing else.
"""
import posixpath
import re
import uuid

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host.errors import RemoteCommandFailed
from cloudify_upgrade_plugin.log import get_logger

# Staging directories and copies of ``Host.write`` start with this (then the tag).
STAGE_PREFIX = '.cfy-upgrade-'


def _stage_tag(tag) -> str:
    """``tag`` kept to letters, digits, '.', '_' and '-' (it goes into remote names)."""
    return re.sub(r'[^A-Za-z0-9._-]', '_', str(tag or ''))[:60]


class StagedWrite:
    """``Host.write`` / ``Host.put`` / ``Host.clean_staging`` (see the module docstring).

    ``stage_tag``: the tag used when a call gives none (the runbooks set the upgrade id).
    """

    stage_tag = ''

    def put(self, local, remote, mode=0o600, sudo=False, owner=None, tag=None) -> None:
        """Copy the local file ``local`` to ``remote`` (``write`` of its bytes)."""
        with open(local, 'rb') as stream:
            self.write(stream, remote, mode=mode, sudo=sudo, owner=owner, tag=tag)

    def write(self, data, remote, mode=0o600, sudo=False, owner=None, tag=None) -> None:
        """Write ``data`` (bytes or a binary file) to ``remote`` with ``mode`` (and ``owner``
        'user[:group]', sudo), atomically.

        The bytes travel over the exec channel into a file created 0600 from its first byte
        (``umask 077``) in a private directory (``mktemp -d``, 0700, the SSH user's): under
        /tmp with sudo, else next to the destination.  With sudo that copy goes next to the
        destination (``sudo cp``), is chmod/chown'ed, then ``sudo mv -f`` into place; without,
        it is chmod-ed and moved.  The staging directory is removed whatever happens;
        ``clean_staging(tag)`` removes what a killed process left (names carry ``tag``).
        """
        tag = _stage_tag(self.stage_tag if tag is None else tag)
        remote_dir = posixpath.dirname(remote) or '.'
        name = posixpath.basename(remote)
        staging = self._mktemp_dir('/tmp' if sudo else remote_dir, tag)
        staged = posixpath.join(staging, name)
        sibling = posixpath.join(remote_dir, '.{0}.{1}{2}.{3}'.format(
            name, STAGE_PREFIX[1:], tag, uuid.uuid4().hex[:12]))
        try:
            self.run(['sh', '-c', 'umask 077 && exec cat > "$1"', 'sh', staged], stdin=data)
            if not sudo:
                self.run(['chmod', '{0:o}'.format(mode), staged])
                if owner:
                    self.run(['chown', owner, staged])
                self.run(['mv', '-f', staged, remote])
                return
            try:
                self.run(['cp', staged, sibling], sudo=True)
                self.run(['chmod', '{0:o}'.format(mode), sibling], sudo=True)
                if owner:
                    self.run(['chown', owner, sibling], sudo=True)
                self.run(['mv', '-f', sibling, remote], sudo=True)
            except BaseException:
                self._quietly(['rm', '-f', sibling], sudo=True)
                raise
        finally:
            self._quietly(['rm', '-rf', staging])

    def _mktemp_dir(self, parent, tag) -> str:
        template = posixpath.join(parent, '{0}{1}.XXXXXXXXXX'.format(STAGE_PREFIX, tag))
        _, out = self.run(['mktemp', '-d', template])
        path = out.strip()
        if not path.startswith(template[:-10]) or '\n' in path:
            raise RemoteCommandFailed('mktemp on {0} answered {1!r}'.format(self.label, out))
        return path

    def _quietly(self, argv, sudo=False) -> None:
        try:
            self.run(argv, sudo=sudo, check=False)
        except UpgradeError:
            pass

    def clean_staging(self, tag=None, remotes=()) -> int:
        """Remove what an interrupted ``write`` left (staging directories under /tmp and next
        to each of ``remotes``, the copies next to them); how many entries were removed."""
        tag = _stage_tag(self.stage_tag if tag is None else tag)
        places = [('/tmp', False, [STAGE_PREFIX + tag + '.'])]
        for remote in remotes:
            name = posixpath.basename(remote)
            places.append((posixpath.dirname(remote) or '.', True,
                           [STAGE_PREFIX + tag + '.',
                            '.{0}.{1}{2}.'.format(name, STAGE_PREFIX[1:], tag)]))
        removed = 0
        for directory, sudo, prefixes in places:
            rc, out = self.run(['ls', '-1', '-A', directory], sudo=sudo, check=False)
            if rc != 0:
                continue
            for entry in out.splitlines():
                if entry.startswith(tuple(prefixes)) and '/' not in entry:
                    self.run(['rm', '-rf', posixpath.join(directory, entry)], sudo=sudo)
                    removed += 1
        if removed:
            get_logger().info('Removed %d staged cop%s an interrupted run left on %s.',
                              removed, 'y' if removed == 1 else 'ies', self.label)
        return removed
