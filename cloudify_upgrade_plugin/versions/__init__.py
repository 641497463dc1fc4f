"""Cloudify Manager versions and every rule that depends on one: the one home for them.

``Version`` parses and orders manager and snapshot versions (version.py); ``rules.py``
names what a manager of a version has and does (``has_riemann(v)``,
``restarts_rest_after_restore(v)``, ``api_prefix(v)``...); ``paths.py`` which upgrades
are possible and which patches a source needs; ``bodies.py`` the request bodies per
version.  Everything public is importable from here (``versions.has_tenants(v)``).
Nothing here talks to a manager; every rule cites the section of the Cloudify facts it
comes from.
"""
from cloudify_upgrade_plugin.versions.bodies import (  # noqa: F401
    DEFAULT_RESTORE_TIMEOUT, restore_body, snapshot_create_body)
from cloudify_upgrade_plugin.versions.paths import (  # noqa: F401
    FIRST_TARGET_REFUSING_3X, MAX_SNAPSHOT_ID_LENGTH, MIN_IN_PLACE_WITH_SSL_BACKUP,
    MIN_SOURCE, MIN_TARGET, PATCH_PROBLEM_IDS, PATCHES, PATH_PROBLEM_IDS, PATH_RULES,
    PathRule, name_problem, needs_patch, patch_number, patch_problem, snapshot_id_problem,
    upgrade_problems)
from cloudify_upgrade_plugin.versions.rules import (  # noqa: F401
    MODE_IN_PLACE, MODE_NEW_HOST, MODES, OK_ENDPOINT_SINCE, RESTORE_FLAG_SINCE,
    VERSION_CALL_SECURED_SINCE, active_execution_states, api_prefix, api_version,
    creates_db_tokens, executions_have_ended_at, has_events_api, has_host_security_files,
    has_ldap_status,
    has_ok_endpoint, has_riemann, has_tenants, honours_all_tenants_on_executions,
    maintenance_allows_snapshots, may_need_licence, plugin_python, reports_restore_flag,
    restarts_rest_after_restore, snapshot_carries_passwords, snapshot_has_certificates,
    teardown_kind, upload_needs_private_resource, users_need_rest_security)
from cloudify_upgrade_plugin.versions.version import (  # noqa: F401
    CALENDAR_VERSIONS, Version, as_version)
