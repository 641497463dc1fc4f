"""What a manager holds, per tenant, and how two inventories differ (reconciliation).

The inventory is names and counts only - never a secret's value: blueprints, deployments,
node instances by state, secret keys, plugins, users, sites, agents.  ``prepare`` writes
the source's to ``inventory/source.json``; ``new-host`` / ``in-place`` write the
target's to ``inventory/target.json`` after the restore and compare them.
"""
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.runbooks import common
from typing import List

# resource -> (fields to include, how to name an item)
TENANT_RESOURCES = {
    'blueprints': (['id'], lambda item: item['id']),
    'deployments': (['id'], lambda item: item['id']),
    'secrets': (['key'], lambda item: item['key']),
    'plugins': (['id', 'package_name', 'package_version'],
                lambda item: '{0}=={1}'.format(item.get('package_name'),
                                               item.get('package_version'))),
    'sites': (['name'], lambda item: item['name']),
}


def _names(manager, resource, tenant):
    include, name_of = TENANT_RESOURCES[resource]
    try:
        items = manager.list_all(resource, tenant=tenant, include=include)
        return sorted(name_of(item) for item in items)
    except Exception as error:  # resource absent on this version
        if _is_unsupported(error):
            return None
        raise


def _is_unsupported(error):
    """True for 'this manager version has no such endpoint' (404 / non-JSON answer)."""
    return getattr(error, 'error_id', None) in ('not-found', 'endpoint-unsupported') \
        or getattr(error, 'status_code', None) == 404


def _node_instances(manager, tenant):
    """(counts by state, names of the hosts that carry an agent) or (None, None).

    A host instance (``host_id`` is itself) carries an agent once it is ``started``; one
    that was never installed has none (behaviour §5: only started hosts get new agents).
    """
    states = {}
    agents = []
    try:
        items = manager.list_all(
            'node-instances', tenant=tenant,
            include=['id', 'state', 'host_id', 'deployment_id'])
        for item in items:
            states[item['state']] = states.get(item['state'], 0) + 1
            if item.get('host_id') and item.get('host_id') == item['id'] and \
                    item['state'] == 'started':
                agents.append(item['id'])
    except Exception as error:
        if _is_unsupported(error):
            return None, None
        raise
    return dict(sorted(states.items())), sorted(agents)


def collect(manager) -> dict:
    """The inventory of one manager (a dict ready to be written as JSON)."""
    logger = get_logger()
    inventory = {'manager': {'version': str(manager.version),
                             'edition': manager.edition},
                 'users': _users(manager),
                 'tenants': {}}
    # 3.x has no tenants: its data lands in the restore request's tenant (behaviour §3.6)
    for tenant in manager.list_tenants() or [None]:
        logger.debug('Inventory of tenant %s', tenant)
        entry = {}
        for resource in TENANT_RESOURCES:
            names = _names(manager, resource, tenant)
            if names is not None:
                entry[resource] = {'count': len(names), 'names': names}
        states, agents = _node_instances(manager, tenant)
        if states is not None:
            entry['node_instances'] = {'count': sum(states.values()),
                                       'by_state': states}
            entry['agents'] = {'count': len(agents), 'names': agents}
        inventory['tenants'][tenant or 'default_tenant'] = entry
    return inventory


def _users(manager):
    """Usernames (premium 4.0+ only; community answers missing_premium_package_error)."""
    return common.usernames(manager)


def summary(inventory) -> List[str]:
    """One line per tenant, for humans."""
    lines = []
    for tenant, entry in sorted(inventory['tenants'].items()):
        parts = ['{0} {1}'.format(entry[key]['count'], key)
                 for key in ('blueprints', 'deployments', 'node_instances', 'secrets',
                             'plugins', 'sites', 'agents') if key in entry]
        lines.append('{0}: {1}'.format(tenant, ', '.join(parts)))
    if inventory.get('users') is not None:
        lines.append('users: {0}'.format(len(inventory['users'])))
    return lines


def differences(source, target) -> List[dict]:
    """What the target lacks or has changed compared with the source (a list of dicts).

    Items that only exist on the target are not differences (a new manager may carry
    its own defaults); counts by state are compared exactly.
    """
    diffs = []
    for tenant, src in sorted(source['tenants'].items()):
        dst = target['tenants'].get(tenant)
        if dst is None:
            diffs.append({'tenant': tenant, 'kind': 'tenant', 'problem': 'missing'})
            continue
        for resource in TENANT_RESOURCES:
            if resource not in src or resource not in dst:
                continue
            missing = sorted(set(src[resource]['names']) - set(dst[resource]['names']))
            if missing:
                diffs.append({'tenant': tenant, 'kind': resource,
                              'problem': 'missing', 'items': missing})
        if 'node_instances' in src and 'node_instances' in dst:
            if src['node_instances']['by_state'] != dst['node_instances']['by_state']:
                diffs.append({'tenant': tenant, 'kind': 'node_instances',
                              'problem': 'changed',
                              'source': src['node_instances']['by_state'],
                              'target': dst['node_instances']['by_state']})
    if source.get('users') is not None and target.get('users') is not None:
        missing = sorted(set(source['users']) - set(target['users']))
        if missing:
            diffs.append({'tenant': None, 'kind': 'users', 'problem': 'missing',
                          'items': missing})
    return diffs
