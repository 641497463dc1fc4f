"""What a manager of a given version has and does: the API prefix and named predicates.

Every rule the plugin applies to a version is a function here, named after what it means
(``has_riemann(v)``, ``restarts_rest_after_restore(v)``...), so that no other module
compares versions itself; each cites the section of the Cloudify facts it comes from.
Nothing here talks to a manager.
"""
from typing import List, Optional

from cloudify_upgrade_plugin.versions.version import Version, as_version

MODE_NEW_HOST = 'new-host'
MODE_IN_PLACE = 'in-place'
MODES = (MODE_NEW_HOST, MODE_IN_PLACE)

# What a probe answering proves (facts §2.6): unauthenticated /api/v3.1/ok answers on 6.0+,
# snapshot-status on 5.0.5+; the version call needs credentials from 4.0 on.
OK_ENDPOINT_SINCE = Version((6, 0, 0))
RESTORE_FLAG_SINCE = Version((5, 0, 5))
VERSION_CALL_SECURED_SINCE = Version((4, 0, 0))

_ACTIVE_STATES = ('pending', 'started', 'cancelling', 'force_cancelling')   # facts §4


# -- REST API prefix ------------------------------------------------------------------

def api_version(version) -> str:
    """The ``api_version`` to give ``CloudifyClient`` for a manager of this version.

    facts §1.2 / §2.1: 3.x nginx proxies only v1|v2|v2.1; the stock 4.0.0 and 4.0.1 nginx
    regex proxies only up to v3 (v3.1 falls through to the UI even on 4.0.1); 4.1+ v3.1.
    """
    version = as_version(version)
    if version.major < 4:
        return 'v2.1'
    if version.major_minor == (4, 0):
        return 'v3'
    return 'v3.1'


def api_prefix(version) -> str:
    """'/api/v2.1' (3.x), '/api/v3' (4.0.0, 4.0.1) or '/api/v3.1' (4.1+); facts §1.2, §2.1."""
    return '/api/' + api_version(version)


# -- the REST service -------------------------------------------------------------------

def has_tenants(version) -> bool:
    """facts §2.4: 3.x has no tenants (nor users, nor a secured version call)."""
    return as_version(version).major >= 4


def has_events_api(version) -> bool:
    """The events list an execution's events are read from exists from 4.0."""
    return as_version(version).major >= 4


def has_ok_endpoint(version) -> bool:
    """facts §2.3: unauthenticated ``/api/v3.1/ok`` says "OK"/"FAIL" on 6.0+."""
    return as_version(version) >= OK_ENDPOINT_SINCE


def reports_restore_flag(version) -> bool:
    """facts §2.3: 5.0.5+ report a running restore at ``snapshot-status`` until the
    detached post-restore shell removes its flag."""
    return as_version(version) >= RESTORE_FLAG_SINCE


def active_execution_states(version) -> List[str]:
    """Execution states that mean 'running or about to run' on this version (facts §4).

    Only states the version knows are sent: an unknown enum value is a 500 on 7.0.
    """
    version = as_version(version)
    states = list(_ACTIVE_STATES)
    if version >= Version((4, 4, 0)):
        states.append('kill_cancelling')
    if version >= Version((4, 5, 0)):
        states.append('queued')
    return states


def honours_all_tenants_on_executions(version) -> bool:
    """facts §4: the executions list honours ``_all_tenants`` from 4.2; 4.0 / 4.1 silently
    list the Tenant header's tenant only (their source has no all_tenants decorator there)."""
    return as_version(version) >= Version((4, 2, 0))


def executions_have_ended_at(version) -> bool:
    """facts §4: ``ended_at`` is an execution field (and a valid ``_include``) from 4.4."""
    return as_version(version) >= Version((4, 4, 0))


def maintenance_allows_snapshots(version) -> bool:
    """facts §2.5: in maintenance mode 3.4-4.4 answer 503 to everything but status, version
    and maintenance; 4.5+ also let snapshots through (never the lists)."""
    return as_version(version) >= Version((4, 5, 0))


def may_need_licence(version, edition: Optional[str]) -> bool:
    """facts §2.5 [U]: a fresh premium 5.x+ probably needs a licence before a restore."""
    return edition == 'premium' and as_version(version) >= Version((5, 0, 0))


def has_ldap_status(version) -> bool:
    """``GET /ldap`` ("enabled" / "disabled") exists from 4.3 (cloudify-manager@4.3
    rest-service/manager_rest/rest/resources_v3/manager.py ``LdapAuthentication.get``)."""
    return as_version(version) >= Version((4, 3, 0))


def plugin_python(version) -> str:
    """manager-behaviour §12.4: the Python a manager's plugins (wagons) run on: 2.7 up to
    5.0.x, 3.6 from 5.1 to 6.4, 3.11 on 7.0."""
    version = as_version(version)
    if version < Version((5, 1, 0)):
        return '2.7'
    if version.major < 7:
        return '3.6'
    return '3.11'


def creates_db_tokens(version) -> bool:
    """7.0 creates API tokens with ``POST /tokens`` (``ctok-…`` kept in the DB, obs70);
    4.x-6.x hand one out at ``GET /tokens`` (signed with secret_key, facts §2.4)."""
    return as_version(version).major >= 7


def upload_needs_private_resource(version) -> bool:
    """facts §3.4: 4.0-4.1 snapshot uploads need ``private_resource`` in the query."""
    version = as_version(version)
    return version.major == 4 and version < Version((4, 2, 0))


# -- snapshots and what a restore does ----------------------------------------------------

def snapshot_carries_passwords(version) -> bool:
    """facts §3.8, §7.2: a >= 4.2 snapshot carries the hash salt with the users' password
    hashes: old users log in with their passwords, and after the restore the admin logs in
    with the SOURCE admin's password.  4.0 / 4.1 snapshots carry no salt."""
    return as_version(version).base >= Version((4, 2, 0))


def users_need_rest_security(version) -> bool:
    """facts §7.2: 4.0 / 4.1 have users whose passwords only work with their manager's
    rest-security.conf (hash salt and keys), which their snapshots do not carry."""
    return has_tenants(version) and not snapshot_carries_passwords(version)


def snapshot_has_certificates(version) -> bool:
    """facts §7.1: snapshots carry the certificates (``ssl/``) from 4.0.1; 4.0.0 and 3.x
    snapshots have none."""
    return as_version(version).base >= Version((4, 0, 1))


def has_host_security_files(version) -> bool:
    """facts §7.1: 3.x hosts have no /opt/manager/rest-security.conf and no
    /etc/cloudify/ssl."""
    return as_version(version).major >= 4


def restarts_rest_after_restore(version) -> bool:
    """facts §3.8: after a restore that changes the credentials, 4.2-4.5 targets restart
    their REST service from a detached shell *after* the execution ended; 4.6+ restart it
    inside the workflow."""
    return as_version(version) < Version((4, 6, 0))


def has_riemann(version) -> bool:
    """facts §7.4: riemann (and so auto-heal) exists on 3.x / 4.x managers only."""
    return as_version(version).major < 5


def teardown_kind(version) -> str:
    """How an old manager is removed (facts §7.5): ``teardown-script`` (4.0.x: the
    cloudify-dev script), ``cfy-teardown`` (4.1-4.2), ``cfy-manager-remove`` (4.3-6.3) or
    ``cfy-manager-remove-config`` (6.4+)."""
    base = as_version(version).base
    if base < Version((4, 1, 0)):
        return 'teardown-script'
    if base < Version((4, 3, 0)):
        return 'cfy-teardown'
    if base < Version((6, 4, 0)):
        return 'cfy-manager-remove'
    return 'cfy-manager-remove-config'
