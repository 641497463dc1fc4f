"""SSH access to a manager host, driven by the cfy profile (``ssh_user``/``ssh_key``/``ssh_port``).

This module owns every command and file transfer the plugin does on a manager host:

- ``Host.from_profile(profile)`` builds a ``Host`` from a cfy profile (a name, None for the
  active one, or a ``ProfileContext``): ``manager_ip``, ``ssh_user``, ``ssh_key`` and
  ``ssh_port``.  Unlike cfy 7.0.5's own fabric use (behaviour §6.3) the port is honoured,
  including a legacy YAML profile's ``_ssh_port``.  A missing user/key/IP or an unreadable key
  file raises ``HostUnavailable(error_id='ssh-not-configured')`` with the
  ``cfy profiles set --ssh-user ... --ssh-key ... --ssh-port ...`` hint.
- The connection is a ``fabric.Connection`` built with ``fabric.Config(lazy=True)`` (no
  ``~/.ssh/config`` rewriting the profile's host, user or port), the profile's key only
  (no agent, no ``~/.ssh/id_*``), opened lazily and kept for the life of the ``Host``.
  Connection and authentication failures raise ``HostUnavailable`` (``ssh-failed``) naming
  ``user@host:port`` and the key *path* (never its contents).
- Commands: ``run(argv, sudo=False, check=True)`` quotes every argument with
  ``shlex.quote`` and prefixes ``sudo -n`` (never prompts) when asked.  Commands run over a
  paramiko exec channel of that connection so that output is streamed as bytes (file reads,
  tar streams) with constant memory; stderr is kept (capped) for error messages.  A non-zero
  exit with ``check=True`` raises ``RemoteCommandFailed`` (``ssh-command-failed``;
  ``remote-file-missing`` when the remote said "No such file or directory";
  ``ssh-sudo-failed`` when sudo wants a password).  Arguments are logged at debug level:
  never pass a secret in ``argv`` (send it with ``put`` or ``stdin``).
- Files: ``read_file``, ``get`` (``cat`` streamed into a temp file next to the destination,
  then ``os.replace``; mode 0600 by default), ``write`` / ``put`` (bytes over the exec
  channel into a file created 0600 from its first byte in a ``mktemp -d`` directory - under
  /tmp with ``sudo``, then copied next to the destination with ``sudo cp``, chmod/chown'ed
  and ``sudo mv -f``'d into place so the destination changes atomically; the staging is
  removed whatever happens, and ``clean_staging`` removes what a killed run left),
  ``file_exists``, ``dir_exists``.
- Directories: ``get_dir`` / ``put_dir`` (``host/dirs.py``).
- Services: ``systemctl(action, unit) -> rc`` (sudo for state changes), ``is_active(unit)``.

Host keys: the system's and the operator's known_hosts and the plugin's own pinned file are
honoured, an unknown key is confirmed or refused, a changed one refused
(``host/known_hosts.py``); ``verify_host_key`` checks a host's key without logging in.
Directories are copied with tar over the exec channel (``host/dirs.py``), files written
private from their first byte (``host/staging.py``).
"""
import hashlib
import io
import os
import shlex
import socket
import tempfile
import time
from typing import Tuple

import fabric
import paramiko

from cloudify_upgrade_plugin.host.dirs import DirectoryCopy
from cloudify_upgrade_plugin.host.errors import HostUnavailable, RemoteCommandFailed
from cloudify_upgrade_plugin.host.staging import StagedWrite
from cloudify_upgrade_plugin.host.known_hosts import (
    ConfirmingPolicy, accept, changed_error, default_known_hosts_path, host_entry, known_keys,
    load_known, server_key)
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import profiles

__all__ = ['Host', 'HostUnavailable', 'RemoteCommandFailed', 'quote_argv']

READ_ONLY_SYSTEMCTL = ('is-active', 'is-enabled', 'status', 'show', 'cat')

_STDERR_CAP = 64 * 1024

_BLOCK = 64 * 1024

_POLL = 0.2
_SET_SSH = ('cfy profiles set --ssh-user USER --ssh-key /path/to/private_key '
            '--ssh-port PORT (for a profile that is not active: add '
            '--profile-name NAME to cfy profiles use/set)')


def quote_argv(argv, sudo=False) -> str:
    """The command line for ``argv``: every argument shell-quoted, ``sudo -n`` if asked."""
    if not argv:
        raise ValueError('empty command')
    words = []
    for arg in argv:
        if arg is None:
            raise ValueError('None in command {0!r}'.format(argv))
        words.append(shlex.quote(str(arg)))
    line = ' '.join(words)
    return 'sudo -n ' + line if sudo else line


def _unlink_quiet(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _profile_value(profile, name, default=None):
    if isinstance(profile, dict):
        return profile.get(name, default)
    context = getattr(profile, '_context', None)
    if isinstance(context, dict):
        return context.get(name, default)
    return getattr(profile, name, default)


def _profile_port(profile):
    port = _profile_value(profile, 'ssh_port')
    legacy = _profile_value(profile, '_ssh_port')
    if legacy not in (None, '') and port in (None, '', 22, '22'):
        port = legacy      # a 4.x-era YAML profile: cfy 7.0.5 does not map `_ssh_port`
    if port in (None, ''):
        return 22
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise HostUnavailable(
            'The profile\'s ssh_port {0!r} is not a port number.'.format(
                _profile_value(profile, 'ssh_port')),
            error_id='ssh-not-configured', hints=[_SET_SSH])
    return port


class Host(DirectoryCopy, StagedWrite):
    """One manager host over SSH (see the module docstring)."""

    def __init__(self, hostname, user, key_filename, port=22, known_hosts_path=None,
                 strict_host_keys=False, connect_timeout=15, label=None):
        self.hostname = hostname
        self.user = user
        self.key_filename = key_filename
        self.port = int(port)
        self.known_hosts_path = known_hosts_path
        self.strict_host_keys = strict_host_keys
        self.connect_timeout = connect_timeout
        self.label = label or hostname
        self._conn = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_profile(cls, profile=None, known_hosts_path=None, strict_host_keys=False,
                     connect_timeout=15) -> 'Host':
        """A Host from a cfy profile: a name, None (the active profile) or a ProfileContext."""
        if profile is None or isinstance(profile, str):
            # a cfy profile, or an explicit connection registered under that name (issue 19)
            profile = profiles.profile_context(profile)
        name = _profile_value(profile, 'name') or _profile_value(profile, 'manager_ip')
        ip = _profile_value(profile, 'manager_ip')
        user = _profile_value(profile, 'ssh_user')
        key = _profile_value(profile, 'ssh_key')
        missing = [label for label, value in (('manager IP', ip), ('ssh_user', user),
                                              ('ssh_key', key)) if not value]
        if missing:
            raise HostUnavailable(
                'The profile {0} has no {1}: SSH to the manager host is not '
                'configured.'.format(name, ' and no '.join(missing)),
                error_id='ssh-not-configured', hints=[_SET_SSH])
        key = os.path.expanduser(key)
        if not os.path.isfile(key) or not os.access(key, os.R_OK):
            raise HostUnavailable(
                'The SSH key of profile {0} ({1}) does not exist or is not readable.'.format(
                    name, key),
                error_id='ssh-not-configured', hints=[_SET_SSH])
        port = _profile_port(profile)
        if known_hosts_path is None:    # an explicit profile (issue 19) may name its own
            known_hosts_path = _profile_value(profile, 'known_hosts_path') or \
                default_known_hosts_path()
        return cls(ip, user, key, port=port, known_hosts_path=known_hosts_path,
                   strict_host_keys=strict_host_keys, connect_timeout=connect_timeout,
                   label=name)

    @property
    def address(self) -> str:
        return '{0}@{1}:{2}'.format(self.user, self.hostname, self.port)

    def __repr__(self):
        return '<Host {0}>'.format(self.address)

    # ---------------------------------------------------------------- connection

    def _unavailable(self, why, error_id='ssh-failed', hints=None):
        return HostUnavailable(
            'Cannot use SSH to {0} (key {1}): {2}'.format(self.address, self.key_filename, why),
            error_id=error_id,
            hints=hints or [
                'Check that the host is up and that {0} accepts SSH on port {1} '
                '(ssh -i {2} -p {1} {3}@{0}).'.format(self.hostname, self.port,
                                                      self.key_filename, self.user),
                'Fix the profile\'s SSH settings with: ' + _SET_SSH])

    @property
    def connection(self) -> fabric.Connection:
        """The open ``fabric.Connection`` (opened on first use)."""
        if self._conn is not None and self._conn.is_connected:
            return self._conn
        conn = fabric.Connection(
            self.hostname, user=self.user, port=self.port,
            config=fabric.Config(lazy=True), connect_timeout=self.connect_timeout,
            connect_kwargs={'key_filename': self.key_filename, 'look_for_keys': False,
                            'allow_agent': False, 'banner_timeout': self.connect_timeout,
                            'auth_timeout': self.connect_timeout})
        client = conn.client
        try:
            load_known(client, self.known_hosts_path)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise self._unavailable('cannot read known hosts file {0}: {1}'.format(
                self.known_hosts_path, exc))
        client.set_missing_host_key_policy(
            ConfirmingPolicy(self.known_hosts_path, self.strict_host_keys, self.label))
        try:
            conn.open()
        except HostUnavailable:
            conn.close()
            raise
        except paramiko.BadHostKeyException as exc:
            conn.close()
            name = host_entry(self.hostname, self.port)
            raise changed_error(self.label, name, exc.key, exc.expected_key,
                                known_keys(name, self.known_hosts_path)[1])
        except paramiko.PasswordRequiredException:
            conn.close()
            raise self._unavailable('the key is protected by a passphrase',
                                    hints=['Use an unencrypted key for the profile: '
                                           + _SET_SSH])
        except paramiko.AuthenticationException as exc:
            conn.close()
            raise self._unavailable('authentication failed ({0})'.format(exc))
        except (paramiko.SSHException, socket.error, EOFError, ValueError) as exc:
            conn.close()
            raise self._unavailable(str(exc) or type(exc).__name__)
        transport = conn.client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        self._conn = conn
        return conn

    def verify_host_key(self) -> str:
        """This host's key checked without logging in (a command's first contact): 'known'
        or 'accepted' (``known_hosts.accept``: prompt or --accept-new-host-keys);
        'unreachable' when it does not answer SSH; ``HostUnavailable``
        ``ssh-host-key-changed`` / ``ssh-host-key-unknown`` otherwise."""
        name = host_entry(self.hostname, self.port)
        known, source = known_keys(name, self.known_hosts_path)
        try:
            key = server_key(self.hostname, self.port, self.connect_timeout, tuple(known))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            get_logger().debug('SSH host key of %s not checked: %s', self.address, exc)
            return 'unreachable'
        if not known:
            accept(name, key, self.known_hosts_path, self.strict_host_keys, self.label)
            return 'accepted'
        ours = known.get(key.get_name())
        if ours is None or ours.asbytes() != key.asbytes():
            raise changed_error(self.label, name, key, ours or next(iter(known.values())),
                                source)
        return 'known'

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ commands

    def _exec(self, argv, sudo=False, sink=None, stdin=None, timeout=None):
        """Run ``argv``; stream stdout to ``sink(bytes)``; return (rc, stderr text)."""
        line = quote_argv(argv, sudo)
        get_logger().debug('ssh %s: %s', self.address, line)
        conn = self.connection
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            chan = conn.client.get_transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, socket.error, EOFError, AttributeError) as exc:
            self.close()
            raise self._unavailable('cannot open a session: {0}'.format(exc))
        stderr = bytearray()

        def drain_stderr():
            while chan.recv_stderr_ready():
                data = chan.recv_stderr(_BLOCK)
                if len(stderr) < _STDERR_CAP:
                    stderr.extend(data[:_STDERR_CAP - len(stderr)])

        try:
            chan.exec_command(line)
            if stdin is not None:
                if isinstance(stdin, bytes):
                    stdin = io.BytesIO(stdin)
                while True:
                    block = stdin.read(_BLOCK)
                    if not block:
                        break
                    chan.sendall(block)
            chan.shutdown_write()
            chan.settimeout(_POLL)
            while True:
                try:
                    data = chan.recv(_BLOCK)
                except socket.timeout:
                    drain_stderr()
                    if deadline is not None and time.monotonic() > deadline:
                        raise RemoteCommandFailed(
                            'Timed out after {0}s running on {1}: {2}'.format(
                                timeout, self.label, line),
                            error_id='ssh-command-timeout',
                            hints=['Check the host\'s load; rerun the command.'])
                    continue
                if not data:
                    break
                if sink is not None:
                    sink(data)
                drain_stderr()
            while True:     # stdout is at EOF; collect the rest of stderr
                try:
                    data = chan.recv_stderr(_BLOCK)
                except socket.timeout:
                    if deadline is not None and time.monotonic() > deadline:
                        break
                    continue
                if not data:
                    break
                stderr.extend(data[:max(_STDERR_CAP - len(stderr), 0)])
            chan.settimeout(None)
            rc = chan.recv_exit_status()
        except (paramiko.SSHException, socket.error, EOFError) as exc:
            self.close()
            raise self._unavailable('the connection broke while running {0}: {1}'.format(
                argv[0], exc))
        finally:
            chan.close()
        if rc == -1:
            self.close()
            raise self._unavailable('the connection closed while running {0}'.format(argv[0]))
        return rc, stderr.decode('utf-8', 'replace')

    def _failed(self, argv, sudo, rc, err):
        line = quote_argv(argv, sudo)
        text = err.strip()
        if sudo and 'password is required' in text:
            return RemoteCommandFailed(
                'sudo on {0} needs a password for {1}: {2}'.format(self.label, self.user, text),
                rc=rc, stderr=err, error_id='ssh-sudo-failed',
                hints=['Give {0} passwordless sudo on the manager host (as for '
                       'cfy_manager), then rerun.'.format(self.user)])
        error_id = 'remote-file-missing' if 'No such file or directory' in text else None
        return RemoteCommandFailed(
            'Command failed on {0} (exit {1}): {2}{3}'.format(
                self.label, rc, line, ': ' + text if text else ''),
            rc=rc, stderr=err, error_id=error_id,
            hints=['Run the command by hand on the manager host to see what is wrong.'])

    def run(self, argv, sudo=False, check=True, stdin=None, timeout=None) -> Tuple[int, str]:
        """Run ``argv`` (a list; every item shell-quoted) -> ``(rc, stdout text)``."""
        out = bytearray()
        rc, err = self._exec(argv, sudo=sudo, sink=out.extend, stdin=stdin, timeout=timeout)
        if check and rc != 0:
            raise self._failed(argv, sudo, rc, err)
        return rc, out.decode('utf-8', 'replace')

    # --------------------------------------------------------------------- files

    def read_file(self, remote, sudo=False) -> bytes:
        """The bytes of a remote file (``cat``; for small files)."""
        out = bytearray()
        rc, err = self._exec(['cat', remote], sudo=sudo, sink=out.extend)
        if rc != 0:
            raise self._failed(['cat', remote], sudo, rc, err)
        return bytes(out)

    def get(self, remote, local, mode=0o600, sudo=False) -> dict:
        """Copy a remote file to ``local`` atomically -> ``{'path', 'size', 'sha256'}``."""
        local = os.path.abspath(local)
        directory = os.path.dirname(local)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(local) + '.', dir=directory)
        digest = hashlib.sha256()
        size = [0]
        try:
            with os.fdopen(fd, 'wb') as f:
                os.fchmod(f.fileno(), mode)

                def sink(data):
                    f.write(data)
                    digest.update(data)
                    size[0] += len(data)
                rc, err = self._exec(['cat', remote], sudo=sudo, sink=sink)
                if rc != 0:
                    raise self._failed(['cat', remote], sudo, rc, err)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, local)
        except BaseException:
            _unlink_quiet(tmp)
            raise
        return {'path': local, 'size': size[0], 'sha256': digest.hexdigest()}

    def _test(self, flag, path, sudo):
        rc, err = self._exec(['test', flag, path], sudo=sudo)
        if rc in (0, 1):
            return rc == 0
        raise self._failed(['test', flag, path], sudo, rc, err)

    def file_exists(self, path, sudo=False) -> bool:
        """Is ``path`` a regular file on the host (``test -f``)?"""
        return self._test('-f', path, sudo)

    def dir_exists(self, path, sudo=False) -> bool:
        """Is ``path`` a directory on the host (``test -d``)?"""
        return self._test('-d', path, sudo)

    # ------------------------------------------------------------------ services

    def systemctl(self, action, unit, check=False) -> int:
        """``systemctl ACTION UNIT`` (sudo unless read-only) -> exit code."""
        sudo = action not in READ_ONLY_SYSTEMCTL
        rc, _ = self.run(['systemctl', action, unit], sudo=sudo, check=check)
        return rc

    def is_active(self, unit) -> bool:
        return self.systemctl('is-active', unit) == 0
