"""What a manager of a given version holds beyond what a restore is sure to carry (issue 15).

The Python its plugins run with and how it picks a wagon (behaviour §12.4), where the
plugins update and LDAP live (§12.3), which of the data a restore carries a version has and
how it lists it (deployment groups, filters, labels, execution schedules, user groups,
tenant roles, secret visibility) and what a restore is known to lose.  Named predicates
like ``rules.py``'s; nothing here talks to a manager.  Where docs/manager-behaviour.md is
silent the rule cites Cloudify's source (repository, tag, path).
"""
from typing import Optional, Tuple

from cloudify_upgrade_plugin.versions.version import Version, as_version

# The Python the manager's plugins run with (behaviour §12.4): up to 5.0.x 2.7, 5.1-6.4 3.6,
# 7.0 3.11 (cloudify-manager-install@6.4.0,7.0.4 cfy_manager/utils/scripts.py).
_PLUGIN_PYTHON = ((Version((7, 0, 0)), (3, 11)), (Version((5, 1, 0)), (3, 6)),
                  (Version((0, 0, 0)), (2, 7)))
# The newest version the plugin knows (the target assumed when --target-version is absent).
NEWEST_TARGET = Version((7, 0, 4))


# -- plugins (behaviour §12.4) ----------------------------------------------------------------

def plugin_python(version) -> Tuple[int, int]:
    """(major, minor) of the interpreter a manager of ``version`` runs plugins with."""
    version = as_version(version).base
    for since, python in _PLUGIN_PYTHON:
        if version >= since:
            return python
    return _PLUGIN_PYTHON[-1][1]


def restore_drops_unfit_wagons(version) -> bool:
    """behaviour §12.4: 4.x-5.0.x targets install the snapshot's wagons during the restore
    and keep only those whose platform, distribution and release match their own
    (cloudify-manager@5.0.5 snapshot_restore.py ``_plugin_installable_on_current_platform``);
    from 5.1 a plugin is installed when a workflow first needs it (its distribution is then
    not compared: cloudify-common@7.0.4 plugin_installer.py installs with
    ``ignore_platform``)."""
    return as_version(version).base < Version((5, 1, 0))


def has_plugins_update(version) -> bool:
    """``plugins-updates/<blueprint>/update/initiate`` exists from 5.0 (behaviour §12.4;
    cloudify-manager@5.0.5 rest/endpoint_mapper.py)."""
    return as_version(version).base >= Version((5, 0, 0))


def plugins_update_in_body(version) -> bool:
    """5.1+ read the plugins update's filters from a JSON body; 5.0.x only a ``force`` query
    argument (cloudify-manager@5.0.5 / 5.1.0 rest/resources_v3_1/plugins.py
    ``PluginsUpdate.post``)."""
    return as_version(version).base >= Version((5, 1, 0))


def upload_visibility_argument(version) -> Optional[str]:
    """How a plugin upload says who sees it: ``private_resource`` (4.0-4.2), ``visibility``
    (4.3+), nothing before tenants (behaviour §3.2 tenant fields)."""
    version = as_version(version).base
    if version.major < 4:
        return None
    return 'private_resource' if version < Version((4, 3, 0)) else 'visibility'


def visibility_field(version) -> Optional[str]:
    """The field a listed resource carries its visibility in (behaviour §3.2 'Fields'):
    ``resource_availability`` on 4.0-4.2, ``visibility`` from 4.3, none on 3.x."""
    version = as_version(version).base
    if version.major < 4:
        return None
    return 'resource_availability' if version < Version((4, 3, 0)) else 'visibility'


def lists_all_tenants(version) -> bool:
    """One ``_all_tenants=true`` listing per resource instead of one per tenant: from 4.2,
    where every list the plugin reads has the ``all_tenants`` decorator
    (cloudify-manager@4.2 rest/resources_v2, resources_v3/secrets.py; at 4.1 secrets and
    executions have none, behaviour §4)."""
    return as_version(version).base >= Version((4, 2, 0))


# -- LDAP (behaviour §12.3) --------------------------------------------------------------------

def has_ldap_config(version) -> bool:
    """LDAP settings are rows of the ``config`` table (``GET /config?scope=rest``) from 5.0.5,
    the first version the plugin reads them on (behaviour §12.3; cloudify-manager@7.0.4
    migrations 423a1643f365_4_6_to_5_0, 62a8d746d13b_5_0_to_5_0_5)."""
    return as_version(version).base >= Version((5, 0, 5))


def ldap_set_needs_clean_manager(version) -> bool:
    """5.0.5-5.1 refuse ``POST /ldap`` once a user besides the admin exists ("LDAP
    Configuration may be set only on a clean manager"), so never after a restore
    (cloudify-manager@5.0.5 rest/resources_v3/manager.py ``_validate_set_ldap_request``;
    gone at 5.2.0)."""
    return as_version(version).base < Version((5, 2, 0))


def ldap_ca_as_certificate(version) -> bool:
    """From 5.2 ``ldaps://`` needs the CA in the request (``ldap_ca_cert``), kept as the
    certificates row ``_auth-ldap-ca`` (cloudify-manager@5.2.0 manager_rest/config.py
    ``LDAP_CA_NAME``); 5.0.5-5.1 keep a host path (``ldap_ca_path``)."""
    return as_version(version).base >= Version((5, 2, 0))


# -- what a restore carries: reconcilable data -------------------------------------------------

def has_deployment_groups(version) -> bool:
    """Deployment groups from 5.2 (cloudify-manager@5.2.0 rest/endpoint_mapper.py
    ``deployment-groups``; migration 9d261e90b1f3_5_1_1_to_5_2)."""
    return as_version(version).base >= Version((5, 2, 0))


def has_deployment_labels(version) -> bool:
    """Deployment labels (a ``labels`` field of deployments) from 5.2 (same migration)."""
    return as_version(version).base >= Version((5, 2, 0))


def has_blueprint_labels(version) -> bool:
    """Blueprint labels from 6.0 (cloudify-manager@6.0.0 migration 396303c07e35_5_2_to_5_3)."""
    return as_version(version).base >= Version((6, 0, 0))


def filters_api(version) -> Optional[str]:
    """``None`` (no filters), ``'filters'`` (5.2.x: one kind, of deployments, at
    ``/filters``) or ``'split'`` (``/filters/deployments`` and ``/filters/blueprints``, from
    the 5.3 schema: cloudify-manager@6.0.0 rest/endpoint_mapper.py)."""
    version = as_version(version).base
    if version < Version((5, 2, 0)):
        return None
    return 'filters' if version < Version((6, 0, 0)) else 'split'


def restore_loses_filters(source, target) -> bool:
    """A 5.2.x snapshot restored onto a split-filters manager loses its filters: the 5.2 ->
    5.3 migration drops the ``filters`` table and creates empty ``deployments_filters`` /
    ``blueprints_filters`` (cloudify-manager@7.0.4 rest-service/migrations/versions/
    396303c07e35_5_2_to_5_3.py ``_create_filters_tables``, ``op.drop_table('filters')``)."""
    return filters_api(source) == 'filters' and filters_api(target) == 'split'


def has_execution_schedules(version) -> bool:
    """Execution schedules from 5.2 (behaviour §12.5; cloudify-manager@5.2.0
    rest/resources_v3_1/execution_schedules.py)."""
    return as_version(version).base >= Version((5, 2, 0))


def schedule_rule_key(version) -> Optional[str]:
    """The key of a schedule's repetition in its ``rule``: ``frequency`` (5.2.x) or
    ``recurrence`` (6.0+) (cloudify-manager@5.2.7 / 6.0.0 rest/rest_utils.py
    ``compute_rule_from_scheduling_params``); no migration renames it (none names
    ``frequency`` in cloudify-manager@7.0.4 rest-service/migrations)."""
    if not has_execution_schedules(version):
        return None
    return 'frequency' if as_version(version).base < Version((6, 0, 0)) else 'recurrence'


def has_user_groups(version, edition: Optional[str]) -> bool:
    """User groups: premium 4.0+ (cloudify-manager@4.0 rest/endpoint_mapper.py
    ``user-groups``; community answers ``missing_premium_package_error``)."""
    return edition == 'premium' and as_version(version).major >= 4


def has_tenant_roles(version) -> bool:
    """A user's role in each tenant (``GET /users?_get_data=true``: ``tenants: {name:
    {tenant-role, roles}}``) from 4.2's roles; 4.0 / 4.1 only say which tenants a user is
    in (behaviour §2.4; cloudify-manager@4.2 storage/management_models.py ``UserTenantAssoc``)."""
    return as_version(version).base >= Version((4, 2, 0))
