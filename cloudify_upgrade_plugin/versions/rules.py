"""What a manager of a given version has and does: the API prefix and named predicates.

Every rule the plugin applies to a version is a function here, named after what it means
(``has_riemann(v)``, ``restarts_rest_after_restore(v)``...), so that no other module
compares versions itself; each cites the section of docs/manager-behaviour.md it comes from.
Nothing here talks to a manager.
"""
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin.versions.version import Version, as_version

MODE_NEW_HOST = 'new-host'
MODE_IN_PLACE = 'in-place'
MODES = (MODE_NEW_HOST, MODE_IN_PLACE)

# What a probe answering proves (behaviour §2.6): unauthenticated /api/v3.1/ok answers on 6.0+,
# snapshot-status on 5.0.5+; the version call needs credentials from 4.0 on.
OK_ENDPOINT_SINCE = Version((6, 0, 0))
RESTORE_FLAG_SINCE = Version((5, 0, 5))
VERSION_CALL_SECURED_SINCE = Version((4, 0, 0))

_ACTIVE_STATES = ('pending', 'started', 'cancelling', 'force_cancelling')   # behaviour §4


# -- REST API prefix ------------------------------------------------------------------

def api_version(version) -> str:
    """The ``api_version`` to give ``CloudifyClient`` for a manager of this version.

    behaviour §1.2 / §2.1: 3.x nginx proxies only v1|v2|v2.1; the stock 4.0.0 and 4.0.1 nginx
    regex proxies only up to v3 (v3.1 falls through to the UI even on 4.0.1); 4.1+ v3.1.
    """
    version = as_version(version)
    if version.major < 4:
        return 'v2.1'
    if version.major_minor == (4, 0):
        return 'v3'
    return 'v3.1'


def api_prefix(version) -> str:
    """'/api/v2.1' (3.x), '/api/v3' (4.0.0, 4.0.1) or '/api/v3.1' (4.1+); behaviour §1.2, §2.1."""
    return '/api/' + api_version(version)


# -- the REST service -------------------------------------------------------------------

def has_tenants(version) -> bool:
    """behaviour §2.4: 3.x has no tenants (nor users, nor a secured version call)."""
    return as_version(version).major >= 4


def has_events_api(version) -> bool:
    """The events list an execution's events are read from exists from 4.0."""
    return as_version(version).major >= 4


def has_ok_endpoint(version) -> bool:
    """behaviour §2.3: unauthenticated ``/api/v3.1/ok`` says "OK"/"FAIL" on 6.0+."""
    return as_version(version) >= OK_ENDPOINT_SINCE


def reports_restore_flag(version) -> bool:
    """behaviour §2.3: 5.0.5+ report a running restore at ``snapshot-status`` until the
    detached post-restore shell removes its flag."""
    return as_version(version) >= RESTORE_FLAG_SINCE


def active_execution_states(version) -> List[str]:
    """Execution states that mean 'running or about to run' on this version (behaviour §4).

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
    """behaviour §4: the executions list honours ``_all_tenants`` from 4.2; 4.0 / 4.1 silently
    list the Tenant header's tenant only (their source has no all_tenants decorator there)."""
    return as_version(version) >= Version((4, 2, 0))


def executions_have_ended_at(version) -> bool:
    """behaviour §4: ``ended_at`` is an execution field (and a valid ``_include``) from 4.4."""
    return as_version(version) >= Version((4, 4, 0))


def maintenance_allows_snapshots(version) -> bool:
    """behaviour §2.5: in maintenance mode 3.4-4.4 answer 503 to everything but status, version
    and maintenance; 4.5+ also let snapshots through (never the lists)."""
    return as_version(version) >= Version((4, 5, 0))


def has_licence_gate(version, edition: Optional[str]) -> bool:
    """behaviour §12.2: a premium 4.6+ manager without a usable licence serves only a short
    allow-list (status, version, license, tokens, tenants...); snapshots, executions,
    blueprints and the rest are refused with ``missing_cloudify_license``."""
    return edition == 'premium' and as_version(version) >= Version((4, 6, 0))


def agent_fetches_installer_over_http(agent_version) -> bool:
    """behaviour §12.6: an agent older than 4.2 downloads the new agent's install script over
    plain http."""
    return as_version(agent_version).base < Version((4, 2, 0))


def redirects_http_to_https(version) -> bool:
    """behaviour §12.6: an SSL 6.0+ manager redirects plain http to https (308), which an agent
    older than 4.2 does not follow."""
    return as_version(version) >= Version((6, 0, 0))


def creates_db_tokens(version) -> bool:
    """7.0 creates API tokens with ``POST /tokens`` (``ctok-…`` kept in the DB, observed-7.0);
    4.x-6.x hand one out at ``GET /tokens`` (signed with secret_key, behaviour §2.4)."""
    return as_version(version).major >= 7


def upload_needs_private_resource(version) -> bool:
    """behaviour §3.4: 4.0-4.1 snapshot uploads need ``private_resource`` in the query."""
    version = as_version(version)
    return version.major == 4 and version < Version((4, 2, 0))


# -- snapshots and what a restore does ----------------------------------------------------

def snapshot_carries_passwords(version) -> bool:
    """behaviour §3.8, §7.2: a >= 4.2 snapshot carries the hash salt with the users' password
    hashes: old users log in with their passwords, and after the restore the admin logs in
    with the SOURCE admin's password.  4.0 / 4.1 snapshots carry no salt."""
    return as_version(version).base >= Version((4, 2, 0))


def users_need_rest_security(version) -> bool:
    """behaviour §7.2: 4.0 / 4.1 have users whose passwords only work with their manager's
    rest-security.conf (hash salt and keys), which their snapshots do not carry."""
    return has_tenants(version) and not snapshot_carries_passwords(version)


def snapshot_has_certificates(version) -> bool:
    """behaviour §7.1: snapshots carry the certificates (``ssl/``) from 4.0.1; 4.0.0 and 3.x
    snapshots have none."""
    return as_version(version).base >= Version((4, 0, 1))


def has_host_security_files(version) -> bool:
    """behaviour §7.1: 3.x hosts have no /opt/manager/rest-security.conf and no
    /etc/cloudify/ssl."""
    return as_version(version).major >= 4


def restarts_rest_after_restore(version) -> bool:
    """behaviour §3.8: after a restore that changes the credentials, 4.2-4.5 targets restart
    their REST service from a detached shell *after* the execution ended; 4.6+ restart it
    inside the workflow."""
    return as_version(version) < Version((4, 6, 0))


def has_riemann(version) -> bool:
    """behaviour §7.4: riemann (and so auto-heal) exists on 3.x / 4.x managers only."""
    return as_version(version).major < 5


def teardown_kind(version) -> str:
    """How an old manager is removed (behaviour §7.5): ``teardown-script`` (4.0.x: the
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


# -- a restore's timing and plugins (issue 14; its effect on the admin: route.py) -----------

# behaviour §12.4: the restore body's ignore_plugin_failure is read by these targets
IGNORE_PLUGIN_FAILURE_RANGE = '4.5.0 - 5.0.x'


def restore_traffic_can_deadlock(target) -> bool:
    """behaviour §12.7: 5.0.5-6.1 keep the REST service up while the restore downgrades and
    upgrades the database, and REST traffic then can deadlock the migration
    (cloudify-manager PR #2937 RD-2110, PR #3186 RD-2913); from 6.2 the REST service is
    paused during that step (cloudify-manager@6.2.0 ``_pause_services``)."""
    base = as_version(target).base
    return Version((5, 0, 5)) <= base < Version((6, 2, 0))


def has_ignore_plugin_failure(target) -> bool:
    """behaviour §12.4, §1.1: 4.5.0-5.0.x restores install the snapshot's plugins into every
    deployment's environment, and only they read ``ignore_plugin_failure``
    (cloudify-manager@4.5..5.0.5 ``snapshot_restore.py`` ``_restore_deployment_envs``);
    earlier ones fail the restore on a plugin that does not install, 5.1+ install plugins
    only when a workflow needs them."""
    base = as_version(target).base
    return Version((4, 5, 0)) <= base < Version((5, 1, 0))


def ignore_plugin_failure_removes_deployments(target) -> bool:
    """4.5.0-4.5.1 delete a deployment whose environment failed with
    ``ignore_plugin_failure`` ("Removing failed deployment ... footprints",
    cloudify-manager@4.5, 4.5.1 ``snapshot_restore.py``
    ``__remove_failed_deployments_footprints``); 4.5.5-5.0.x keep it, without its plugins
    ("Proceeding since `ignore_plugin_failure` flag was used", cloudify-manager@4.5.5)."""
    base = as_version(target).base
    return Version((4, 5, 0)) <= base < Version((4, 5, 5))


# -- the old manager after the cut-over, and the agents (issue 15) ------------------------

def fenced_by_maintenance(version) -> bool:
    """behaviour §12.5: 5.x and later have no riemann; new-host fences such an old manager
    with maintenance mode after the cut-over (its 6.0+ scheduler then skips every
    schedule)."""
    return as_version(version).major >= 5


def schedules_ignore_maintenance(version) -> bool:
    """behaviour §12.5: the 5.2.x scheduler starts due schedules in maintenance mode; from
    6.0 it skips them while maintenance mode is activated
    (cloudify-manager@6.0.0 execution-scheduler/execution_scheduler/main.py)."""
    return Version((5, 2, 0)) <= as_version(version).base < Version((6, 0, 0))


def schedule_calls_need_deployment_id(version) -> bool:
    """From 6.0, GET/PATCH/DELETE ``execution-schedules/<id>`` need ``?deployment_id=``;
    5.2.x takes the id alone (cloudify-manager@5.2.7, 6.0.0
    rest-service/manager_rest/rest/resources_v3_1/execution_schedules.py)."""
    return as_version(version) >= Version((6, 0, 0))


def admin_bypasses_maintenance(version) -> bool:
    """behaviour §12.5: from 5.2 an admin's request with ``X-BYPASS-MAINTENANCE`` passes
    maintenance mode (any endpoint); 4.6-5.1 honour the header only for requests from the
    manager host itself (cloudify-manager@5.1.0, 5.2.0 rest-service/manager_rest/
    maintenance.py)."""
    return as_version(version) >= Version((5, 2, 0))


def has_agents_list(version) -> bool:
    """``GET /agents`` lists every agent with its ``install_method`` and ``version`` from 4.5
    (cloudify-manager@4.5 rest-service/manager_rest/rest/endpoint_mapper.py 'Agents';
    behaviour §12.6)."""
    return as_version(version) >= Version((4, 5, 0))


def agent_list_fields(version) -> List[str]:
    """The ``_include`` of ``GET /agents`` on this version (an unknown field is a 400):
    ``node_instance_id``, ``state`` and ``created_at`` only from 6.4 (cloudify-manager@6.4.0,
    7.0.4 rest-service/manager_rest/rest/responses_v3.py AgentResponse); before, the host's
    node instance is ``host_id``."""
    fields = ['id', 'host_id', 'install_method', 'version', 'deployment']
    if as_version(version) >= Version((6, 4, 0)):
        fields += ['node_instance_id', 'state', 'created_at']
    return fields


def agent_rows_name_their_tenant(version) -> bool:
    """``GET /agents`` items carry ``tenant_name`` (so one listing over every tenant can be
    grouped) from 5.0.5 (cloudify-manager@5.0.5 rest-service/manager_rest/rest/responses_v3.py
    AgentResponse; absent at 4.5, where asking for it is a 400)."""
    return as_version(version) >= Version((5, 0, 5))


def moved_install_methods(version) -> Tuple[str, ...]:
    """behaviour §12.6: the hosts ``install_new_agents`` moves on a target of this version:
    ``init_script``, ``plugin`` and ``remote`` from 4.5 (cloudify-common@4.5, 7.0.4
    cloudify/constants.py AGENT_INSTALL_METHODS_INSTALLED); before 4.5 every method but
    ``none`` (cloudify-common@4.4 cloudify/plugins/workflows.py)."""
    if as_version(version) >= Version((4, 5, 0)):
        return ('init_script', 'plugin', 'remote')
    return ('init_script', 'plugin', 'remote', 'provided')


# -- clusters (behaviour §12.9, §3.5) -------------------------------------------------------

def has_cluster_nodes_api(version) -> bool:
    """behaviour §12.9, §2.1: 5.0.5+ list their manager, broker and DB nodes (``GET managers``,
    ``brokers``, ``db-nodes``) and report ``GET cluster-status``."""
    return as_version(version).base >= Version((5, 0, 5))


def has_ha_cluster_api(version) -> bool:
    """behaviour §12.9 (last item), §3.5: the 4.x active/passive HA cluster of premium 4.0-5.0.0
    answers ``GET /cluster`` (``initialized``) and ``GET /cluster/nodes`` (``master``)."""
    base = as_version(version).base
    return Version((4, 0, 0)) <= base < Version((5, 0, 5))


def refuses_restore_on_multi_node_cluster(version) -> bool:
    """behaviour §3.5: 4.1-4.6 refuse ``POST /snapshots/<id>/restore`` on an HA cluster of more
    than one node (400 ``illegal_action_error``, ``_verify_no_multi_node_cluster``, gone at
    5.0)."""
    base = as_version(version).base
    return Version((4, 1, 0)) <= base < Version((5, 0, 0))


def maintenance_state_shared(version) -> bool:
    """Maintenance mode is a DB row every manager of a cluster reads from 5.1.1; up to 5.1.0 it
    is a file of each manager (cloudify-manager commit 868e6ba78, first tag 5.1.1,
    rest-service/manager_rest/maintenance.py ``get_maintenance_state``; behaviour §12.9)."""
    return as_version(version).base >= Version((5, 1, 1))
