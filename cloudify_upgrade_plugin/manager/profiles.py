"""cfy profiles: the single source of a manager's connection settings and credentials.

Owns reading a profile through ``cloudify_cli.env`` (host, REST port, protocol and
certificate, tenant, credentials from the profile *or* the CLOUDIFY_* variables, never
both) into a ``ProfileSettings``, with the errors an operator can act on
(``no-active-profile``, ``unknown-profile``, ``profile-settings-conflict``,
``kerberos-unsupported``), and writing changed credentials back to a profile.  No second
copy of credentials is kept anywhere.

Explicit connections (issue 19): a caller without cfy profiles (the fleet operations) builds
the same ``ProfileSettings`` itself, with an ``ExplicitProfile`` (address and SSH settings)
as its ``profile``, and registers it under a unique name for the duration of a runbook call
(``explicit_connections``).  ``read_profile``, ``profile_credentials``,
``store_credentials`` and ``profile_context`` answer a registered name from memory, so the
runbooks (which pass profile names along, and keep them in workspace.json) work unchanged:
nothing is read from or written to cfy's workdir for it, and changed credentials stay in
memory for the caller (``explicit_settings``).
"""
import contextlib
import dataclasses
import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Union

from cloudify_cli import constants, env
from cloudify_cli.exceptions import CloudifyCliError

from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.log import get_logger, warn_always
from cloudify_upgrade_plugin.manager.credentials import Credentials


@dataclass(frozen=True)
class ProfileSettings:
    """What a cfy profile says about its manager (``credentials`` hide their secrets)."""

    name: str
    profile: Any                  # the cfy ProfileContext
    host: str
    port: Optional[int]
    protocol: Optional[str]
    cert: Optional[str]
    trust_all: bool
    tenant: Optional[str]
    credentials: Credentials


@dataclass(frozen=True)
class ExplicitProfile:
    """What the runbooks read from a cfy ``ProfileContext``, for an explicit connection:
    the address, the REST port and SSH (``ssh_key`` is a key file's path)."""

    profile_name: str
    manager_ip: str
    rest_port: Optional[int] = None
    ssh_user: Optional[str] = None
    ssh_key: Optional[str] = None
    ssh_port: int = 22
    known_hosts_path: Optional[str] = None


_explicit: Dict[str, ProfileSettings] = {}
_explicit_lock = threading.Lock()


@contextlib.contextmanager
def explicit_connections(*settings: ProfileSettings) -> Iterator[None]:
    """Answer each ``settings.name`` from ``settings`` (not cfy) until the block ends."""
    with _explicit_lock:
        taken = [s.name for s in settings if s.name in _explicit]
        if taken:
            raise InputError('Connections {0} are already in use.'.format(', '.join(taken)),
                             error_id='connection-in-use',
                             hints=['Wait for the other run on the same upgrade to end.'])
        _explicit.update({s.name: s for s in settings})
    try:
        yield
    finally:
        with _explicit_lock:
            for s in settings:
                _explicit.pop(s.name, None)


def explicit_settings(name: Optional[str]) -> Optional[ProfileSettings]:
    """The registered explicit connection ``name`` (credentials as last stored), or None."""
    with _explicit_lock:
        return _explicit.get(name) if name else None


def profile_context(name: Optional[str]) -> Any:
    """The cfy ``ProfileContext`` of ``name``, or the ``ExplicitProfile`` registered."""
    found = explicit_settings(name)
    return found.profile if found is not None else env.get_profile_context(name)


def read_profile(name: Optional[str] = None) -> ProfileSettings:
    """The settings of cfy profile ``name`` (the active profile when None)."""
    found = explicit_settings(name)
    if found is not None:
        return found
    requested = name
    name = name or env.get_active_profile()
    if not name or name == 'local':
        raise InputError(
            'No manager profile is active.', error_id='no-active-profile',
            hints=['Create or select one: `cfy profiles use MANAGER_IP '
                   '--profile-name NAME ...`, or pass the profile name.'])
    if not env.is_profile_exists(name):
        raise InputError(
            'There is no cfy profile named "{0}". Existing profiles: {1}.'.format(
                name, ', '.join(_profile_names()) or 'none'),
            error_id='unknown-profile',
            hints=['Create it with `cfy profiles use MANAGER_IP --profile-name {0} '
                   '...` or use one of the existing profiles.'.format(name)])
    try:
        profile = env.get_profile_context(name)
        username = env.get_username(profile)
        password = env.get_password(profile)
        token = env.get_token(profile)
        kerberos = env.get_kerberos_env(profile)
        tenant = env.get_tenant_name(profile)
        cert = profile_cert(profile, name)
        trust_all = env.get_ssl_trust_all()
    except CloudifyCliError as exc:
        raise InputError(str(exc), error_id='profile-settings-conflict',
                         hints=['Set each manager setting in the profile or in its '
                                'CLOUDIFY_* environment variable, not both.']) from exc
    if kerberos and not (username and password) and not token:
        raise InputError('Profile "{0}" uses Kerberos, which the upgrade plugin does '
                         'not support.'.format(name), error_id='kerberos-unsupported',
                         hints=['Set a manager username and password on the profile.'])
    if not profile.manager_ip:
        raise InputError('Profile "{0}" has no manager IP.'.format(name),
                         error_id='unknown-profile',
                         hints=['`cfy profiles set --manager-ip IP`'])
    if trust_all:
        warn_always('CLOUDIFY_SSL_TRUST_ALL is set: the certificate of %s is not '
                    'verified.', profile.manager_ip)
    if requested is None:
        get_logger().debug('using the active profile %s', name)
    return ProfileSettings(
        name=name, profile=profile, host=profile.manager_ip, port=profile.rest_port,
        protocol=profile.rest_protocol, cert=cert, trust_all=bool(trust_all), tenant=tenant,
        credentials=Credentials(username=username, password=password, token=token))


def profile_credentials(name: str, label: Optional[str] = None) -> Credentials:
    """The username and password of cfy profile ``name`` (or the CLOUDIFY_* variables)."""
    found = explicit_settings(name)
    if found is not None:
        return Credentials(username=found.credentials.username,
                           password=found.credentials.password, label=label)
    profile = env.get_profile_context(name)
    return Credentials(username=env.get_username(profile), password=env.get_password(profile),
                       label=label)


def store_credentials(name: str, credentials: Credentials) -> None:
    """Write a username and password into cfy profile ``name`` (cfy keeps it 0600); an
    explicit connection keeps them in memory for its caller."""
    with _explicit_lock:
        if name in _explicit:
            _explicit[name] = dataclasses.replace(_explicit[name], credentials=Credentials(
                username=credentials.username, password=credentials.password))
            return
    profile = env.get_profile_context(name)
    profile.manager_username = credentials.username
    profile.manager_password = credentials.password
    profile.save()


def credentials_from_environment() -> bool:
    """True when CLOUDIFY_USERNAME or CLOUDIFY_PASSWORD override the profiles."""
    return bool(os.environ.get('CLOUDIFY_PASSWORD') or os.environ.get('CLOUDIFY_USERNAME'))


def _profile_names() -> List[str]:
    try:
        return sorted(env.get_profile_names())
    except OSError:
        return []


def profile_cert(profile: Any, name: str) -> Union[str, None]:
    """The REST certificate for profile ``name`` as ``env.get_ssl_cert`` finds it.

    ``env.get_ssl_cert`` looks for the default certificate in the *active* profile's
    directory; this looks in the named profile's.
    """
    env_cert = os.environ.get(constants.LOCAL_REST_CERT_FILE)
    if env_cert and profile.rest_certificate:
        raise CloudifyCliError('Rest Certificate is set in profile *and* in the '
                               '`LOCAL_REST_CERT_FILE` env variable.')
    if env_cert or profile.rest_certificate:
        return env_cert or profile.rest_certificate
    base = env.get_profile_dir(name)
    if base:
        default = os.path.join(base, constants.PUBLIC_REST_CERT)
        if os.path.isfile(default):
            return default
    return None
