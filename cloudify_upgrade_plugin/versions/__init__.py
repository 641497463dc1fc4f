"""Cloudify Manager versions and every rule that depends on one: the one home for them.

``Version`` parses and orders manager and snapshot versions (version.py); ``rules.py``
names what a manager of a version has and does (``has_riemann(v)``,
``restarts_rest_after_restore(v)``, ``api_prefix(v)``...); ``holdings.py`` what it holds
beyond what a restore is sure to carry (plugins' Python, LDAP, reconcilable data);
``paths.py`` which upgrades are possible and which patches a source needs; ``route.py`` the
restore route a target takes for a snapshot and what a copy must add; ``bodies.py`` the
request bodies per version.  Everything public is importable from here
(``versions.has_tenants(v)``).  Nothing here talks to a manager; every rule cites the section
of docs/manager-behaviour.md it comes from (or Cloudify's source where that is silent).
"""
from cloudify_upgrade_plugin.versions.bodies import (  # noqa: F401
    DEFAULT_RESTORE_TIMEOUT, restore_body, snapshot_create_body)
from cloudify_upgrade_plugin.versions.holdings import (  # noqa: F401
    NEWEST_TARGET, filters_api, has_blueprint_labels, has_deployment_groups,
    has_deployment_labels, has_execution_schedules, has_ldap_config, has_plugins_update,
    has_tenant_roles, has_user_groups, ldap_ca_as_certificate, ldap_set_needs_clean_manager,
    lists_all_tenants, plugin_python, plugins_update_in_body, restore_drops_unfit_wagons,
    restore_loses_filters, schedule_rule_key, upload_visibility_argument, visibility_field)
from cloudify_upgrade_plugin.versions.paths import (  # noqa: F401
    FIRST_TARGET_REFUSING_3X, MAX_SNAPSHOT_ID_LENGTH, MIN_IN_PLACE_WITH_SSL_BACKUP,
    MIN_SOURCE, MIN_TARGET, NEWEST_KNOWN_RELEASE, PATCH_PROBLEM_IDS, PATCHES,
    PATH_ADVICE_IDS, PATH_PROBLEM_IDS, PATH_RULES, PATH_UNWAIVABLE, PathRule,
    cfy_manager_upgrade_applies, name_problem, needs_patch, patch_number, patch_problem,
    path_advice, snapshot_id_problem, upgrade_problems)
from cloudify_upgrade_plugin.versions.route import (  # noqa: F401
    DISTRIBUTED_REFUSAL, KUBERNETES_STATUS_SERVICES, REVISION_KEYS, SCHEMA_REVISION_4_0,
    RoutePlan, has_route_rule, refuses_legacy_on_kubernetes, restore_installs_source_admin,
    restore_route, route_taken, snapshot_revisions)
from cloudify_upgrade_plugin.versions.rules import (  # noqa: F401
    MODE_IN_PLACE, MODE_NEW_HOST, MODES, OK_ENDPOINT_SINCE, RESTORE_FLAG_SINCE,
    VERSION_CALL_SECURED_SINCE, active_execution_states, api_prefix, api_version,
    creates_db_tokens, executions_have_ended_at, has_cluster_nodes_api, has_events_api,
    has_ha_cluster_api, has_host_security_files, has_ok_endpoint, has_riemann, has_tenants,
    honours_all_tenants_on_executions, maintenance_allows_snapshots, maintenance_state_shared,
    has_licence_gate, agent_fetches_installer_over_http, redirects_http_to_https,
    refuses_restore_on_multi_node_cluster, reports_restore_flag,
    restarts_rest_after_restore, snapshot_carries_passwords, snapshot_has_certificates,
    teardown_kind, upload_needs_private_resource, users_need_rest_security)
from cloudify_upgrade_plugin.versions.rules import (  # noqa: F401  (issue 14)
    IGNORE_PLUGIN_FAILURE_RANGE, has_ignore_plugin_failure,
    ignore_plugin_failure_removes_deployments, restore_traffic_can_deadlock)
from cloudify_upgrade_plugin.versions.version import (  # noqa: F401
    CALENDAR_VERSIONS, Version, as_version)
# issue 15: the old manager after the cut-over, and the agents
from cloudify_upgrade_plugin.versions.rules import (  # noqa: F401
    admin_bypasses_maintenance, agent_list_fields, agent_rows_name_their_tenant,
    fenced_by_maintenance, has_agents_list,
    moved_install_methods, schedule_calls_need_deployment_id,
    schedules_ignore_maintenance)
