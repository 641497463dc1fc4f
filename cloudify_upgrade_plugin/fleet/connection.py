"""What one managed upgrade is, built from a node's properties: connections, mode, options.

``FleetUpgrade.from_node(...)`` turns the properties of a ``cloudify.nodes.upgrade.
ManagedUpgrade`` node instance (plugin.yaml) into frozen dataclasses the adapter hands to
the runbooks: ``ManagerConnection`` (REST address, port, protocol, CA certificate, tenant,
credentials, ``SshSettings``) for the old and the new manager, the mode, the target
version, the users policy, the waivers and the numbers.  Bad values are an ``InputError``
(``bad-fleet-property``) naming the node property, before anything is called.

Secrets (the REST passwords and the SSH private keys, which a blueprint takes through
``get_secret``) are registered with ``engine.redact`` the moment they are read, are kept
out of ``repr()``, and ``describe()`` gives the non-secret view that may be written to
runtime properties and events.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import InputError

PROTOCOLS = ('http', 'https')
# The choices of `cfy upgrade new-host/in-place --users` (cli.USERS_POLICIES; a unit test
# keeps the two equal).
USERS_POLICIES = ('rest-security', 'reset-passwords', 'skip')
MAX_AGENTS_CONCURRENCY = 50          # `--agents-concurrency` is IntRange(1, 50)
UPGRADE_ID_PREFIX = 'fleet-'


def _bad(prop: str, why: str) -> InputError:
    return InputError(
        'Node property {0}: {1}'.format(prop, why), error_id='bad-fleet-property',
        hints=['Fix the property in the blueprint (or the deployment input or secret it '
               'comes from), update the deployment, then run the workflow again.'])


def _text(value: Any, prop: str, required: bool = False) -> str | None:
    if value is None or value == '':
        if required:
            raise _bad(prop, 'is required.')
        return None
    if not isinstance(value, str):
        raise _bad(prop, 'must be a string, not {0}.'.format(type(value).__name__))
    return value


def _number(value: Any, prop: str, low: int, high: int | None = None,
            default: int | None = None) -> int | None:
    if value is None or value == '':
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(prop, 'must be an integer, not {0!r}.'.format(value))
    if value < low or (high is not None and value > high):
        bounds = 'between {0} and {1}'.format(low, high) if high else 'at least {0}'.format(low)
        raise _bad(prop, 'must be {0}, not {1}.'.format(bounds, value))
    return value


@dataclass(frozen=True)
class SshSettings:
    """SSH to a manager's host (host steps: backups, riemann, certificates)."""

    user: str
    key: str = field(repr=False)     # the private key itself (PEM text), never a path
    port: int = 22
    # the host's public key, "<algorithm> <base64>" as `ssh-keyscan` prints it after the host
    # name: pinned before the first contact (a host key known nowhere is refused: issue 17)
    host_key: str = ''

    @classmethod
    def from_property(cls, value: Any, prop: str) -> SshSettings | None:
        """None when neither a user nor a key is given (host steps then need a waiver)."""
        value = value or {}
        if not isinstance(value, Mapping):
            raise _bad(prop, 'must be a dict (user, key, port).')
        user = _text(value.get('user'), prop + '.user')
        key = _text(value.get('key'), prop + '.key')
        if not user and not key:
            return None
        if not (user and key):
            raise _bad(prop, 'needs both user and key (the private key text, e.g. '
                             '{get_secret: ...}).')
        register_secret(key)
        port = _number(value.get('port'), prop + '.port', 1, 65535, default=22)
        host_key = ' '.join((_text(value.get('host_key'), prop + '.host_key') or '').split())
        if host_key and (len(host_key.split(' ')) != 2 or
                         not host_key.split(' ')[0].startswith(('ssh-', 'ecdsa-'))):
            raise _bad(prop, 'host_key must be "<algorithm> <base64 key>" (a line of '
                             '`ssh-keyscan -p PORT HOST` without the host name).')
        return cls(user=user, key=key, port=port, host_key=host_key)

    def describe(self) -> dict:
        found = {'user': self.user, 'port': self.port}
        if self.host_key:
            found['host_key'] = self.host_key
        return found


@dataclass(frozen=True)
class ManagerConnection:
    """How to reach one manager without a cfy profile (the fields of a profile)."""

    address: str
    password: str = field(repr=False)
    username: str = 'admin'
    tenant: str = 'default_tenant'
    protocol: str = 'https'
    port: int | None = None          # None: 443 for https, 80 for http
    certificate: str | None = field(default=None, repr=False)   # CA certificate, PEM text
    ssh: SshSettings | None = None

    @classmethod
    def from_property(cls, value: Any, prop: str) -> ManagerConnection:
        if not isinstance(value, Mapping) or not value:
            raise _bad(prop, 'is required: a dict with address, username, password, ...')
        protocol = _text(value.get('protocol'), prop + '.protocol') or 'https'
        if protocol not in PROTOCOLS:
            raise _bad(prop + '.protocol', 'must be http or https, not {0!r}.'.format(
                protocol))
        password = _text(value.get('password'), prop + '.password', required=True)
        register_secret(password)
        return cls(address=_text(value.get('address'), prop + '.address', required=True),
                   password=password,
                   username=_text(value.get('username'), prop + '.username') or 'admin',
                   tenant=_text(value.get('tenant'), prop + '.tenant') or 'default_tenant',
                   protocol=protocol,
                   port=_number(value.get('port'), prop + '.port', 1, 65535),
                   certificate=_text(value.get('certificate'), prop + '.certificate'),
                   ssh=SshSettings.from_property(value.get('ssh'), prop + '.ssh'))

    @property
    def rest_port(self) -> int:
        return self.port or (443 if self.protocol == 'https' else 80)

    def describe(self) -> dict:
        """The non-secret view (runtime properties, events, the workspace's meta)."""
        return {'address': self.address, 'port': self.rest_port, 'protocol': self.protocol,
                'tenant': self.tenant, 'username': self.username,
                'certificate': bool(self.certificate),
                'ssh': self.ssh.describe() if self.ssh else None}


@dataclass(frozen=True)
class Waiver:
    """One blocking check waived, with the reason recorded in the journal."""

    check: str
    reason: str

    def to_dict(self) -> dict:
        return {'check': self.check, 'reason': self.reason}


def _waivers(value: Any) -> tuple[Waiver, ...]:
    if value in (None, ''):
        return ()
    if not isinstance(value, (list, tuple)):
        raise _bad('waivers', 'must be a list of {check, reason}.')
    waivers = []
    for index, item in enumerate(value):
        prop = 'waivers[{0}]'.format(index)
        if not isinstance(item, Mapping):
            raise _bad(prop, 'must be a dict with check and reason.')
        check = _text(item.get('check'), prop + '.check', required=True)
        reason = _text(item.get('reason'), prop + '.reason')
        if not reason or not reason.strip():
            raise _bad(prop + '.reason', 'is required: why is it safe to go on despite the '
                                         'failed check {0}?'.format(check))
        waivers.append(Waiver(check=check, reason=reason.strip()))
    return tuple(waivers)


def upgrade_id_for(node_instance_id: str) -> str:
    """The upgrade id (workspace name) of a node instance: stable across executions."""
    return UPGRADE_ID_PREFIX + node_instance_id


@dataclass(frozen=True)
class FleetUpgrade:
    """One node instance's upgrade: everything a runbook needs, no cfy profile involved."""

    node_id: str
    instance_id: str
    upgrade_id: str
    workdir: str                      # the workspace's parent directory
    old: ManagerConnection
    new: ManagerConnection
    mode: str = versions.MODE_NEW_HOST
    target_version: str | None = None
    users_policy: str | None = None
    waivers: tuple[Waiver, ...] = ()
    wagons_location: str | None = None
    timeout: int = 3600
    agents_concurrency: int = 5

    @classmethod
    def from_node(cls, properties: Mapping, old_manager: Any, new_manager: Any,
                  node_id: str, instance_id: str, workdir: str) -> FleetUpgrade:
        """``properties``: the node's; ``old_manager``/``new_manager``: the evaluated
        operation inputs (their ``get_secret`` resolved by Cloudify)."""
        mode = _text(properties.get('mode'), 'mode') or versions.MODE_NEW_HOST
        if mode not in versions.MODES:
            raise _bad('mode', 'must be one of {0}, not {1!r}.'.format(
                ', '.join(versions.MODES), mode))
        target_version = _text(properties.get('target_version'), 'target_version')
        if target_version:
            try:
                versions.Version.parse(target_version)
            except Exception:
                raise _bad('target_version', '{0!r} is not a Cloudify version (like 7.0.4).'
                           .format(target_version))
        users_policy = _text(properties.get('users_policy'), 'users_policy')
        if users_policy and users_policy not in USERS_POLICIES:
            raise _bad('users_policy', 'must be one of {0}, not {1!r}.'.format(
                ', '.join(USERS_POLICIES), users_policy))
        old = ManagerConnection.from_property(old_manager, 'old_manager')
        new = ManagerConnection.from_property(new_manager, 'new_manager')
        if mode == versions.MODE_IN_PLACE and new.address != old.address:
            raise _bad('new_manager.address', 'an in-place upgrade restores on the rebuilt '
                       'manager at the same address ({0}), not {1}.'.format(
                           old.address, new.address))
        if mode == versions.MODE_NEW_HOST and (new.address, new.rest_port) == \
                (old.address, old.rest_port):
            raise _bad('new_manager.address', 'a new-host upgrade restores on another '
                       'manager; use mode in-place for the same address.')
        return cls(node_id=node_id, instance_id=instance_id,
                   upgrade_id=upgrade_id_for(instance_id), workdir=workdir,
                   old=old, new=new, mode=mode, target_version=target_version,
                   users_policy=users_policy, waivers=_waivers(properties.get('waivers')),
                   wagons_location=_text(properties.get('wagons_location'),
                                         'wagons_location'),
                   timeout=_number(properties.get('timeout'), 'timeout', 1, default=3600),
                   agents_concurrency=_number(properties.get('agents_concurrency'),
                                              'agents_concurrency', 1,
                                              MAX_AGENTS_CONCURRENCY, default=5))

    @property
    def workspace(self) -> str:
        """Where this upgrade's workspace (journal, snapshot, backups, report) lives."""
        return os.path.join(self.workdir, 'upgrades', self.upgrade_id)

    def describe(self) -> dict:
        """The non-secret view recorded in runtime properties."""
        return {'upgrade_id': self.upgrade_id, 'mode': self.mode,
                'target_version': self.target_version, 'users_policy': self.users_policy,
                'waivers': [w.to_dict() for w in self.waivers],
                'old_manager': self.old.describe(), 'new_manager': self.new.describe(),
                'workspace': self.workspace}
