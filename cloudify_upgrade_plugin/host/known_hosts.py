"""SSH host keys: the plugin's own known_hosts file, pinned on first use.

Host key policy (trust on first use, pinned): known keys live in a plugin-owned known_hosts
file, ``<cfy workdir>/.cloudify/upgrade_known_hosts`` (0600) by default, not in ``~/.ssh``.
An unknown host key is accepted, written there and logged as a warning with its SHA-256
fingerprint; a key that differs from the pinned one is refused
(``HostUnavailable(error_id='ssh-host-key-changed')``, with a hint to remove the stale line
when the host was legitimately reinstalled).  ``strict_host_keys=True`` refuses unknown keys
too (for operators who pre-populate the file, e.g. with ``ssh-keyscan``).
"""
import base64
import hashlib
import os
import threading

import paramiko
from cloudify_cli import env

from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.log import get_logger

KNOWN_HOSTS_NAME = 'upgrade_known_hosts'
_PINNING = threading.Lock()


def default_known_hosts_path() -> str:
    """``<cfy workdir>/.cloudify/upgrade_known_hosts`` (read through cloudify_cli.env)."""
    return os.path.join(env.CLOUDIFY_WORKDIR, KNOWN_HOSTS_NAME)


def fingerprint(key) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')


class PinningPolicy(paramiko.MissingHostKeyPolicy):
    """Trust on first use: record unknown keys in our known_hosts file (or refuse)."""

    def __init__(self, path, strict):
        self.path = path
        self.strict = strict

    def missing_host_key(self, client, hostname, key) -> None:
        if self.strict or not self.path:
            raise paramiko.SSHException(
                'host key for {0} ({1} {2}) is not in {3}'.format(
                    hostname, key.get_name(), fingerprint(key), self.path))
        get_logger().warning(
            'Accepting the unknown SSH host key of %s (%s %s) and pinning it in %s',
            hostname, key.get_name(), fingerprint(key), self.path)
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = '{0} {1} {2}\n'.format(hostname, key.get_name(), key.get_base64())
        with _PINNING:     # upgrades in threads of one process (the fleet) share the file
            existing = b''
            if os.path.exists(self.path):
                with open(self.path, 'rb') as f:
                    existing = f.read()
                if existing and not existing.endswith(b'\n'):
                    existing += b'\n'
            atomic_write(self.path, existing + line.encode())
