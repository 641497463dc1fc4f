"""What a manager holds, per tenant and overall: the inventory ``reconcile`` compares.

Names, counts and settings only - never a secret's value: per tenant the blueprints,
deployments, node instances by state, agents (started hosts), secrets with their
visibility, plugins, sites and, where the version has them, deployment groups, deployment
and blueprint filters (the install's system filters left out), deployment and blueprint
labels and execution schedules; overall the users, each user's role per tenant, the user
groups, every plugin with the fields that say where it runs and the blueprints that use it
(``runbooks/plugins.py``) and the LDAP settings without the bind password
(``runbooks/ldap.py``).  ``probes`` says, per kind, why it was not read (the version lacks
it, the edition, the endpoint answered 404).

Each kind is one paged listing over every tenant (``_all_tenants``, 4.2+: at most one
request per 1,000 rows), one per tenant on 4.0 / 4.1 (behaviour §4), and one without a
tenant on 3.x.  ``prepare`` writes the source's to ``inventory/source.json``; new-host /
in-place write the target's to ``inventory/target.json`` after the restore and compare
them (``runbooks/reconcile.py``).
"""
from typing import Dict, Iterable, List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager.client import MAX_PAGE_SIZE
from cloudify_upgrade_plugin.runbooks import common, ldap, plugins, reconcile

DEFAULT_TENANT = 'default_tenant'
# Blueprints are listed with their plan only when plugins exist; plans can be large, so
# those pages are smaller (memory stays bounded; blueprints are few next to deployments).
PLAN_PAGE_SIZE = 100


class Lister:
    """Lists resources of one manager grouped by tenant, the cheapest way its version allows,
    (``_all_tenants`` from 4.2, else tenant by tenant)."""

    def __init__(self, manager, tenants: List[Optional[str]]):
        self.manager = manager
        self.tenants = tenants
        self.all_tenants = manager.has_tenants and versions.lists_all_tenants(
            manager.version)

    def by_tenant(self, resource: str, include: Iterable[str], page_size=MAX_PAGE_SIZE,
                  **filters) -> Optional[Dict[str, list]]:
        """{tenant: [items]} for every tenant, or None when the manager has no such list."""
        include = list(include)
        grouped = {tenant or DEFAULT_TENANT: [] for tenant in self.tenants}
        try:
            if self.all_tenants:
                for item in self._list(resource, include + ['tenant_name'], page_size,
                                       all_tenants=True, **filters):
                    grouped.setdefault(item.get('tenant_name') or DEFAULT_TENANT,
                                       []).append(item)
            else:
                owner = ['tenant_name'] if self.manager.has_tenants else []
                for tenant in self.tenants:
                    # a global resource is listed in every tenant: keep it in its own only,
                    # as the listing over every tenant does
                    grouped[tenant or DEFAULT_TENANT] = [
                        item for item in self._list(resource, include + owner, page_size,
                                                    tenant=tenant, **filters)
                        if item.get('tenant_name') in (None, tenant)]
        except UpgradeError as error:
            if is_unsupported(error):
                return None
            raise
        return grouped

    def overall(self, resource: str, include: Iterable[str], **filters) -> Optional[list]:
        """Every item of a list that is not per tenant (users, user groups), or None."""
        try:
            return list(self._list(resource, list(include), MAX_PAGE_SIZE, **filters))
        except UpgradeError as error:
            if is_unsupported(error) or 'premium' in error.message:
                return None
            raise

    def _list(self, resource, include, page_size, **kwargs):
        return self.manager.list_all(resource, include=include, page_size=page_size,
                                     **kwargs)


def is_unsupported(error) -> bool:
    """True for 'this manager version has no such endpoint' (404 / non-JSON answer)."""
    return getattr(error, 'error_id', None) in ('not-found', 'endpoint-unsupported',
                                                'manager-bad-answer') \
        or (getattr(error, 'details', None) or {}).get('status_code') == 404


def _names(items, name_of) -> dict:
    names = sorted(name_of(item) for item in items)
    return {'count': len(names), 'names': names}


def collect(manager) -> dict:
    """The inventory of one manager (a dict ready to be written as JSON)."""
    logger = get_logger()
    version = manager.version
    tenants = manager.list_tenants() or [None]
    lister = Lister(manager, tenants)
    inventory = {'manager': {'version': str(version), 'edition': manager.edition},
                 'tenants': {tenant or DEFAULT_TENANT: {} for tenant in tenants},
                 'probes': {}}
    probes = inventory['probes']

    def put(kind, grouped, build):
        if grouped is None:
            probes[kind] = 'not served by this {0} manager'.format(version)
            return
        for tenant, items in grouped.items():
            inventory['tenants'].setdefault(tenant, {})[kind] = build(items)

    logger.debug('Inventory of %s: %d tenant(s)', manager.label, len(tenants))
    _deployments(lister, version, put, probes)
    _node_instances(lister, put)
    visibility = versions.visibility_field(version)
    secrets = lister.by_tenant('secrets', ['key'] + ([visibility] if visibility else []))
    put('secrets', secrets, lambda items: _secrets(items, visibility))
    plugin_rows = plugins.list_plugins(lister)
    put('plugins', plugin_rows, lambda items: _names(items, plugins.plugin_label))
    put('sites', lister.by_tenant('sites', ['name']),
        lambda items: _names(items, lambda i: i['name']))
    _blueprints(lister, version, put, probes, inventory, plugin_rows)
    _reconcilable(lister, manager, put, probes)
    _users(lister, manager, inventory, probes)
    inventory['ldap'] = ldap.read_settings(manager)
    return inventory


def _secrets(items, visibility) -> dict:
    """Names and, from 4.0, ``name:visibility`` pairs (strings: a dict keyed by secret names
    would be masked by the redaction, whose keys naming a "key" are secret)."""
    entry = _names(items, lambda i: i['key'])
    if visibility:
        entry['visibility'] = sorted('{0}:{1}'.format(i['key'], i.get(visibility))
                                     for i in items)
    return entry


def _label_names(items) -> dict:
    """The ``<id>:<key>=<value>`` labels of deployments or blueprints, as ``_names``."""
    return _names([(i['id'], lab) for i in items for lab in i.get('labels') or []],
                  lambda pair: '{0}:{1}={2}'.format(pair[0], pair[1].get('key'),
                                                    pair[1].get('value')))


def _deployments(lister, version, put, probes):
    labels = versions.has_deployment_labels(version)
    grouped = lister.by_tenant('deployments', ['id'] + (['labels'] if labels else []))
    put('deployments', grouped, lambda items: _names(items, lambda i: i['id']))
    if labels:
        put('deployment_labels', grouped, _label_names)
    else:
        probes['deployment_labels'] = 'labels come with 5.2 ({0})'.format(version)


def _node_instances(lister, put):
    """Counts by state, and the hosts that carry an agent: a host instance (``host_id`` is
    itself) carries one once it is ``started`` (behaviour §5: only started hosts get new
    agents)."""
    grouped = lister.by_tenant('node-instances', ['id', 'state', 'host_id', 'deployment_id'])

    def by_state(items):
        states = {}
        for item in items:
            states[item['state']] = states.get(item['state'], 0) + 1
        return {'count': sum(states.values()), 'by_state': dict(sorted(states.items()))}

    def agents(items):
        return _names([i for i in items if i.get('host_id') and i['host_id'] == i['id']
                       and i['state'] == 'started'], lambda i: i['id'])
    put('node_instances', grouped, by_state)
    put('agents', grouped, agents)


def _blueprints(lister, version, put, probes, inventory, plugin_rows):
    labels = versions.has_blueprint_labels(version)
    grouped, usage = _blueprint_listing(lister, plugin_rows,
                                        ['id'] + (['labels'] if labels else []))
    put('blueprints', grouped, lambda items: _names(items, lambda i: i['id']))
    if labels:
        put('blueprint_labels', grouped, _label_names)
    else:
        probes['blueprint_labels'] = 'blueprint labels come with 6.0 ({0})'.format(version)
    inventory['plugins'] = None if plugin_rows is None else \
        plugins.describe_plugins(plugin_rows, usage)


def _blueprint_listing(lister, plugin_rows, include):
    """The blueprints, with their plans read (then dropped) only when plugins exist:
    ``(grouped, {(package_name, package_version): {(tenant, blueprint)}})``."""
    with_plans = bool(plugin_rows) and any(plugin_rows.values())
    grouped = lister.by_tenant('blueprints', include + (['plan'] if with_plans else []),
                               page_size=PLAN_PAGE_SIZE if with_plans else MAX_PAGE_SIZE)
    usage = {}
    if grouped is not None and with_plans:
        for tenant, items in grouped.items():
            for item in items:
                for package in plugins.plan_packages(item.pop('plan', None)):
                    usage.setdefault(package, set()).add((tenant, item['id']))
    return grouped, usage


def plugins_of(manager) -> Optional[List[dict]]:
    """Every plugin of ``manager`` with the blueprints that use it (``plan`` and ``prepare``'s
    plugins-python check; the same list the inventory keeps), or None without a list."""
    lister = Lister(manager, manager.list_tenants() or [None])
    rows = plugins.list_plugins(lister)
    if rows is None:
        return None
    _, usage = _blueprint_listing(lister, rows, ['id'])
    return plugins.describe_plugins(rows, usage)


def _reconcilable(lister, manager, put, probes):
    """Deployment groups, filters and execution schedules, where the version has them."""
    version = manager.version
    if versions.has_deployment_groups(version):
        put('deployment_groups', lister.by_tenant('deployment-groups', ['id']),
            lambda items: _names(items, lambda i: i['id']))
    else:
        probes['deployment_groups'] = 'deployment groups come with 5.2 ({0})'.format(version)
    api = versions.filters_api(version)
    if api is None:
        probes['deployments_filters'] = 'filters come with 5.2 ({0})'.format(version)
        probes['blueprints_filters'] = 'filters come with 5.2 ({0})'.format(version)
    else:
        user_made = (lambda items: _names([i for i in items if not i.get('is_system_filter')],
                                          lambda i: i['id']))
        system = [] if api == 'filters' else ['is_system_filter']
        put('deployments_filters', lister.by_tenant(
            'filters' if api == 'filters' else 'filters/deployments', ['id'] + system),
            user_made)
        if api == 'split':
            put('blueprints_filters', lister.by_tenant('filters/blueprints',
                                                       ['id', 'is_system_filter']),
                user_made)
        else:
            probes['blueprints_filters'] = 'blueprint filters come with 6.0 ({0})'.format(
                version)
    if versions.has_execution_schedules(version):
        key = versions.schedule_rule_key(version)
        grouped = lister.by_tenant('execution-schedules',
                                   ['id', 'deployment_id', 'enabled', 'rule'])
        put('execution_schedules', grouped, lambda items: _names(
            items, lambda i: '{0}/{1}'.format(i.get('deployment_id'), i['id'])))
        put('schedules_enabled', grouped, lambda items: sorted(
            '{0}/{1}'.format(i.get('deployment_id'), i['id']) for i in items
            if i.get('enabled')))
        put('schedules_unreadable', grouped, lambda items: sorted(
            '{0}/{1}'.format(i.get('deployment_id'), i['id']) for i in items
            if not _rule_readable(i.get('rule'), key)))
    else:
        probes['execution_schedules'] = 'execution schedules come with 5.2 ({0})'.format(
            version)


def _rule_readable(rule, key) -> bool:
    """Whether this version can compute a schedule's occurrences from its ``rule``: an
    rrule, a single run, or a repetition under the version's own key
    (``versions.schedule_rule_key``)."""
    rule = rule or {}
    return bool(rule.get('rrule') or rule.get('count') == 1 or rule.get(key))


def _users(lister, manager, inventory, probes):
    """Usernames, each user's role per tenant, user groups (premium 4.0+)."""
    version = manager.version
    inventory['users'] = None
    if not manager.has_tenants or manager.edition == 'community':
        probes['users'] = 'no user list on a {0} {1} manager'.format(
            version, manager.edition or '')
        return
    users = lister.overall('users', ['username', 'tenants'], _get_data=True)
    if users is None:
        probes['users'] = 'no user list on this manager'
        return
    inventory['users'] = sorted(user['username'] for user in users)
    with_roles = versions.has_tenant_roles(version)
    roles = []
    for user in users:
        tenants = user.get('tenants') or {}
        for tenant in tenants:
            role = tenants[tenant] if isinstance(tenants, dict) else None
            if isinstance(role, dict):
                role = role.get('tenant-role') or ','.join(role.get('roles') or [])
            roles.append('{0}/{1}'.format(tenant, user['username']) +
                         ('={0}'.format(role or '-') if with_roles else ''))
    inventory['tenant_roles'] = sorted(roles)
    inventory['has_tenant_roles'] = with_roles
    if not with_roles:
        probes['tenant_roles'] = 'tenant membership only before 4.2 ({0})'.format(version)
    if versions.has_user_groups(version, manager.edition):
        groups = lister.overall('user-groups', ['name', 'tenants', 'role'], _get_data=True)
        if groups is None:
            probes['user_groups'] = 'no user groups list on this manager'
        else:
            inventory['user_groups'] = sorted(g['name'] for g in groups)
            inventory['user_group_roles'] = sorted(
                '{0}@{1}'.format(g['name'], t) + ('={0}'.format(r) if with_roles else '')
                for g in groups if isinstance(g.get('tenants'), dict)
                for t, r in sorted(g['tenants'].items()))
    else:
        probes['user_groups'] = probes['user_group_roles'] = 'user groups are premium 4.0+'


SUMMARY_KINDS = ('blueprints', 'deployments', 'node_instances', 'secrets', 'plugins',
                 'sites', 'agents', 'deployment_groups', 'execution_schedules')


def _premium(manager):
    return manager.has_tenants and manager.edition != 'community'


def _user_groups(manager):
    """User group names (premium 4.0+); None where the manager has no such list."""
    if not _premium(manager):
        return None
    groups = Lister(manager, [None]).overall('user-groups', ['name'])
    return None if groups is None else sorted(group['name'] for group in groups)


def premium_holdings(manager) -> dict:
    """What only a premium manager keeps: {tenants, users, user_groups, ldap} (None where
    the manager cannot tell), without the full inventory (for ``plan``)."""
    return {'tenants': manager.list_tenants() if manager.has_tenants else None,
            'users': common.usernames(manager), 'user_groups': _user_groups(manager),
            'ldap': _ldap(manager)}


def _ldap(manager):
    """'enabled' / 'disabled' on premium managers; None where it cannot tell."""
    return manager.ldap_state() if _premium(manager) else None


def summary(inventory) -> List[str]:
    """One line per tenant, for humans."""
    lines = []
    for tenant, entry in sorted(inventory['tenants'].items()):
        parts = ['{0} {1}'.format(entry[key]['count'], key.replace('_', ' '))
                 for key in SUMMARY_KINDS if key in entry]
        lines.append('{0}: {1}'.format(tenant, ', '.join(parts)))
    if inventory.get('users') is not None:
        lines.append('users: {0}'.format(len(inventory['users'])))
    return lines


def differences(source, target) -> List[dict]:
    """What the target lacks or has changed compared with the source (a list of dicts);
    the known losses are left out (``runbooks/reconcile.py`` lists them apart)."""
    return reconcile.compare(source, target)['differences']
