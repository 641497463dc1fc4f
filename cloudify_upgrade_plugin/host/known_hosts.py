"""SSH host keys: which keys are trusted, and what happens with a host nobody vouched for.

Known keys are read from, in this order: the system's ``/etc/ssh/ssh_known_hosts``, the
operator's ``~/.ssh/known_hosts`` (both only read, hashed names included) and the plugin's
own file ``<cfy workdir>/.cloudify/upgrade_known_hosts`` (0600), where the keys the
operator accepted through the plugin are pinned.  A key that differs from a known one is
refused (``ssh-host-key-changed``, naming the file that holds the known key).

A host with no known key is shown with its SHA-256 fingerprint and trusted only when the
operator confirms it at a prompt (on a terminal) or passed ``--accept-new-host-keys``
(automation); the key is then pinned in the plugin's file, except under ``plan``, which
writes nothing (the key is trusted for that process only).  Otherwise the connection is
refused (``ssh-host-key-unknown``, with the fingerprint and how to trust it).  Every key
accepted this way is kept in ``TRUST.accepted`` so that the command records it in the
journal once its workspace exists.  ``strict`` (no prompt, no flag) refuses every unknown
key.

``TRUST`` holds the current command's choices (``configure``).  ``server_key`` fetches a
host's key without logging in, so that commands check a host's key at their first contact,
before anything changes (``Host.verify_host_key``).
"""
import base64
import hashlib
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import click
import paramiko
from cloudify_cli import env

from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.host.errors import HostUnavailable
from cloudify_upgrade_plugin.log import get_logger

KNOWN_HOSTS_NAME = 'upgrade_known_hosts'
SYSTEM_KNOWN_HOSTS = '/etc/ssh/ssh_known_hosts'
ACCEPT_OPTION = '--accept-new-host-keys'
_PINNING = threading.Lock()


def default_known_hosts_path() -> str:
    """``<cfy workdir>/.cloudify/upgrade_known_hosts`` (read through cloudify_cli.env)."""
    return os.path.join(env.CLOUDIFY_WORKDIR, KNOWN_HOSTS_NAME)


def user_known_hosts_path() -> str:
    return os.path.expanduser(os.path.join('~', '.ssh', 'known_hosts'))


def fingerprint(key) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')


def host_entry(hostname: str, port: int) -> str:
    """How known_hosts files name a host: ``name``, or ``[name]:port`` off port 22."""
    return hostname if int(port) == 22 else '[{0}]:{1}'.format(hostname, port)


@dataclass
class HostKeyTrust:
    """The current command's choices: ``accept_new`` (``--accept-new-host-keys``), ``pin``
    (write accepted keys to the plugin's file; False under ``plan``), ``interactive``
    (None: ask when stdin and stderr are terminals); ``accepted``: the keys accepted so far
    (``{'host', 'algorithm', 'fingerprint', 'how', 'pinned_in'}``) not yet journaled;
    ``session``: keys trusted for this process only (``plan``)."""

    accept_new: bool = False
    pin: bool = True
    interactive: Optional[bool] = None
    accepted: List[dict] = field(default_factory=list)
    session: List[Tuple[str, paramiko.PKey]] = field(default_factory=list)

    def can_ask(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        return bool(sys.stdin and sys.stdin.isatty() and sys.stderr and sys.stderr.isatty())


TRUST = HostKeyTrust()


def configure(accept_new: bool = False, pin: bool = True,
              interactive: Optional[bool] = None) -> HostKeyTrust:
    """Set the current command's host-key choices (``TRUST``) and return them."""
    TRUST.accept_new = bool(accept_new)
    TRUST.pin = bool(pin)
    TRUST.interactive = interactive
    TRUST.accepted.clear()
    TRUST.session.clear()
    return TRUST


def take_accepted() -> List[dict]:
    """The keys accepted since the last call (for the journal)."""
    accepted = list(TRUST.accepted)
    TRUST.accepted.clear()
    return accepted


def load_known(client: paramiko.SSHClient, plugin_path: Optional[str]) -> None:
    """Give ``client`` every known key: system, operator, plugin file, this process's."""
    for path in (SYSTEM_KNOWN_HOSTS, user_known_hosts_path()):
        if os.path.isfile(path):
            try:
                client.load_system_host_keys(path)
            except (OSError, paramiko.SSHException, ValueError) as exc:
                get_logger().warning('Ignoring the unreadable known hosts file %s: %s', path,
                                     exc)
    if plugin_path and os.path.exists(plugin_path):
        client.load_host_keys(plugin_path)
    for name, key in TRUST.session:
        client.get_host_keys().add(name, key.get_name(), key)


def known_keys(name: str, plugin_path: Optional[str]) -> Tuple[dict, Optional[str]]:
    """({key type: key}, the file they come from) known for host entry ``name``."""
    for path in (SYSTEM_KNOWN_HOSTS, user_known_hosts_path(), plugin_path):
        if path and os.path.isfile(path):
            try:
                keys = paramiko.HostKeys(path).lookup(name)
            except (OSError, paramiko.SSHException, ValueError):
                continue
            if keys:
                return dict(keys), path
    for entry, key in TRUST.session:
        if entry == name:
            return {key.get_name(): key}, None
    return {}, None


def server_key(hostname: str, port: int, timeout: float,
               preferred: Tuple[str, ...] = ()) -> paramiko.PKey:
    """The host key ``hostname:port`` presents (no login), preferring key types we know."""
    sock = socket.create_connection((hostname, int(port)), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        if preferred:
            options = transport.get_security_options()
            offered = list(options.key_types)
            options.key_types = [t for t in preferred if t in offered] + \
                [t for t in offered if t not in preferred]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


def changed_error(label: str, name: str, key, known, source) -> HostUnavailable:
    return HostUnavailable(
        'The SSH host key of {0} changed: it presents {1} {2}, and {3} holds {4} {5} for '
        '{6}.'.format(label, key.get_name(), fingerprint(key), source or 'this run',
                      known.get_name(), fingerprint(known), name),
        error_id='ssh-host-key-changed',
        hints=['If the host was reinstalled, check the new fingerprint with its '
               'administrator, remove the old line (`ssh-keygen -R "{0}" -f {1}`) and run '
               'the command again.'.format(name, source or default_known_hosts_path()),
               'Otherwise someone may be intercepting the connection: do not go on.'])


class ConfirmingPolicy(paramiko.MissingHostKeyPolicy):
    """A host with no known key: confirmed at a prompt, or ``--accept-new-host-keys``
    (then pinned in ``path`` unless ``TRUST.pin`` is False), else refused."""

    def __init__(self, path: Optional[str], strict: bool = False, label: Optional[str] = None):
        self.path = path
        self.strict = strict
        self.label = label

    def missing_host_key(self, client, hostname, key) -> None:
        accept(hostname, key, self.path, self.strict, self.label)
        client.get_host_keys().add(hostname, key.get_name(), key)


def accept(name: str, key, path: Optional[str], strict: bool = False,
           label: Optional[str] = None) -> None:
    """Trust ``key`` for host entry ``name`` as ``TRUST`` allows, or raise
    ``ssh-host-key-unknown``."""
    print_name = label or name
    text = '{0} {1}'.format(key.get_name(), fingerprint(key))
    how = None
    if not strict and TRUST.accept_new:
        how = ACCEPT_OPTION
    elif not strict and TRUST.can_ask():
        click.echo('The SSH host key of {0} ({1}) is not known to this machine:\n  {2}'
                   .format(print_name, name, text), err=True)
        if click.confirm('Is this the key of that manager host (check it with its '
                         'administrator)? Trust it and go on', default=False, err=True):
            how = 'confirmed at the prompt'
    if how is None:
        raise HostUnavailable(
            'The SSH host key of {0} ({1}) is not known: {2}. It is not trusted without '
            'a confirmation.'.format(print_name, name, text),
            error_id='ssh-host-key-unknown',
            hints=['Check that fingerprint with the host\'s administrator (on the host: '
                   '`ssh-keygen -lf /etc/ssh/ssh_host_{0}_key.pub`), then run the command '
                   'again on a terminal and confirm it, or add {1}.'.format(
                       key.get_name().replace('ssh-', '').split('-')[0], ACCEPT_OPTION),
                   'Or put the key in ~/.ssh/known_hosts yourself (e.g. `ssh-keyscan -p '
                   'PORT HOST >> ~/.ssh/known_hosts` once the fingerprint is checked).'])
    pinned = path if TRUST.pin and path else None
    if pinned:
        _append(pinned, name, key)
    else:
        TRUST.session.append((name, key))
    TRUST.accepted.append({'host': name, 'algorithm': key.get_name(),
                           'fingerprint': fingerprint(key), 'how': how,
                           'pinned_in': pinned})
    get_logger().warning('Trusting the SSH host key of %s (%s %s; %s)%s.', print_name,
                         key.get_name(), fingerprint(key), how,
                         '; pinned in {0}'.format(pinned) if pinned else
                         ' for this run only: nothing is written')


def pin_line(path: str, host: str, port: int, key_text: str) -> None:
    """Pin ``key_text`` ("<algorithm> <base64>", given by the operator) for ``host:port`` in
    the plugin's file ``path`` (the fleet's node property ``ssh.host_key``), once."""
    name = host if int(port) == 22 else '[{0}]:{1}'.format(host, port)
    _append_text(path, '{0} {1}\n'.format(name, key_text))


def _append(path: str, name: str, key) -> None:
    _append_text(path, '{0} {1} {2}\n'.format(name, key.get_name(), key.get_base64()))


def _append_text(path: str, line: str) -> None:
    with _PINNING:     # upgrades in threads of one process (the fleet) share the file
        existing = b''
        if os.path.exists(path):
            with open(path, 'rb') as f:
                existing = f.read()
            if line.encode() in existing.splitlines(keepends=True):
                return
            if existing and not existing.endswith(b'\n'):
                existing += b'\n'
        atomic_write(path, existing + line.encode())
