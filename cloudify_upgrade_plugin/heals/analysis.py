"""verify-heals, the analysis: list one manager's executions in a window, find the suspicious.

The new manager is asked for its ``heal`` executions only; the old one for every execution
(issue 15: a heal there after the cut-over may have duplicated a VM, any other workflow means
"the old manager acted after the cut-over").  What could not be listed is returned as
``not_checked`` entries ``{manager, tenant, reason}`` (tenant None: the whole manager).

Version rules used here (``versions``; behaviour §4, checked against the manager
sources):
- `_all_tenants=true` is honoured by the executions list from 4.2 on only; 4.0 / 4.1
  silently ignore it and list the Tenant header's tenant, so they are listed per tenant.
  3.4.2 has no tenants.
- `_include` of an unknown field is a 400 (`no_such_include_field_error`): `tenant_name`
  exists from 4.0, `ended_at` from 4.4; 3.4.2 has neither.
- `_size` <= 1000 with `_offset` (4.0-4.5.x reject larger pages and unpaged lists above
  1000 rows); no `_range` on executions, so the window is cut on the client.
- riemann (and so auto-heal) exists on 3.x / 4.x only.

Everything here works on what a source (``inspect_manager``'s ``source_factory``) and an
SSH probe return, so it is tested with fakes.
"""
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.clock import iso_millis
from cloudify_upgrade_plugin.clock import parse as parse_timestamp
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.manager.retry import TRANSPORT_ERRORS, is_connection_error

HEAL_WORKFLOW = 'heal'
MAINTENANCE_ERROR = 'maintenance_mode_active'
RIEMANN_UNIT = 'cloudify-riemann'
MAX_PAGE_SIZE = 1000
BASE_FIELDS = ('id', 'workflow_id', 'status', 'deployment_id', 'created_at',
               'parameters')
DEFAULT_TENANT = 'default_tenant'


# ----------------------------------------------------------------- version gates

def _version(value) -> Optional[versions.Version]:
    """``value`` as a Version; None when unknown or not a version."""
    if value is None:
        return None
    try:
        return versions.as_version(value)
    except InputError:
        return None


def listing_scope(version) -> str:
    """How one manager's executions cover every tenant.

    'single': 3.x, no tenants. 'per-tenant': 4.0 / 4.1 ignore `_all_tenants` on
    executions, so one listing per tenant. 'all-tenants': 4.2+, one listing.
    """
    version = _version(version)
    if version is None or not versions.has_tenants(version):
        return 'single'
    if not versions.honours_all_tenants_on_executions(version):
        return 'per-tenant'
    return 'all-tenants'


def include_fields(version) -> list:
    """The `_include` projection this version accepts (unknown fields are a 400)."""
    version = _version(version)
    fields = list(BASE_FIELDS)
    if version is not None and versions.has_tenants(version):
        fields.append('tenant_name')
    if version is not None and versions.executions_have_ended_at(version):
        fields.append('ended_at')
    return fields


def has_riemann(version) -> bool:
    """Whether the manager may heal (an unknown version is assumed to)."""
    version = _version(version)
    return version is None or versions.has_riemann(version)


# ------------------------------------------------------------------------ paging

def collect_heals(fetch_page, since, until, page_size=MAX_PAGE_SIZE) -> Tuple[List[dict], int]:
    """Page newest-first through heal executions and keep those created in [since, until].

    `fetch_page(offset, size)` returns one page as the REST list body
    (`{"items": [...], "metadata": {"pagination": {"total": N}}}`). Paging stops at
    the first page whose oldest `created_at` is before `since`, at a short page, or at
    `total`. If a page is not newest-first (a server that ignored `_sort`), paging
    goes on to the end so nothing is missed. `until` None means no upper bound. Returns
    (items in window, pages fetched).
    """
    size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    kept, offset, pages, ordered = [], 0, 0, True
    while True:
        body = fetch_page(offset, size) or {}
        pages += 1
        items = list(body.get('items') or [])
        total = ((body.get('metadata') or {}).get('pagination') or {}).get('total')
        previous = None
        oldest = None
        for item in items:
            created = parse_timestamp(item.get('created_at'))
            if created is None:
                kept.append(item)   # cannot place it: keep it, better seen than missed
                continue
            if previous is not None and created > previous:
                ordered = False
            previous = created
            oldest = created if oldest is None else min(oldest, created)
            if since <= created and (until is None or created <= until):
                kept.append(item)
        offset += len(items)
        if len(items) < size or not items:
            break
        if isinstance(total, int) and offset >= total:
            break
        if ordered and oldest is not None and oldest < since:
            break
    return kept, pages


# ------------------------------------------------------------- one manager's heals

def normalise_execution(item, tenant=None) -> dict:
    parameters = item.get('parameters') or {}
    if not isinstance(parameters, dict):
        parameters = {}
    created = parse_timestamp(item.get('created_at'))
    ended = parse_timestamp(item.get('ended_at'))
    return {
        'id': item.get('id'),
        'workflow_id': item.get('workflow_id') or HEAL_WORKFLOW,
        'tenant': item.get('tenant_name') or tenant,
        'deployment_id': item.get('deployment_id'),
        'node_instance_id': parameters.get('node_instance_id'),
        'status': item.get('status'),
        'created_at': iso_millis(created) or item.get('created_at'),
        'ended_at': iso_millis(ended) or item.get('ended_at'),
    }


normalise_heal = normalise_execution   # the name of issue 8, when only heals were listed


def _tenant_names(raw):
    names = []
    for entry in raw or []:
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict):
            names.append(entry.get('name'))
        else:
            names.append(getattr(entry, 'name', None))
    return sorted(name for name in names if name)


def _describe_error(error, version=None):
    text = ' '.join(str(getattr(error, 'message', None) or error or '').split())[:400]
    if (getattr(error, 'details', None) or {}).get('error_code') == MAINTENANCE_ERROR:
        version = _version(version)
        bypass = 'even to an admin: before 5.2 only requests from the manager host itself ' \
                 'read through it (X-BYPASS-MAINTENANCE)' if version is not None and not \
            versions.admin_bypasses_maintenance(version) else \
            'and X-BYPASS-MAINTENANCE did not let these credentials through (not an admin?)'
        return 'the manager is in maintenance mode and refuses the listing {0}; deactivate ' \
               'it (`cfy maintenance-mode deactivate`) and run verify-heals again, or list ' \
               'its executions on its host'.format(bypass)
    if isinstance(error, UpgradeError):
        return '[{0}] {1}'.format(error.error_id, text)
    return '{0}: {1}'.format(type(error).__name__, text or 'no message')


def _is_unreachable(error):
    if is_connection_error(error) or isinstance(error, OSError):
        return True
    error_id = getattr(error, 'error_id', '') or ''
    return 'unreachable' in error_id or 'connect' in error_id


# What a source may raise for a manager it cannot query (never a bug of ours).
SOURCE_ERRORS = (UpgradeError, OSError, ValueError) + TRANSPORT_ERRORS


def inspect_manager(label, profile, source_factory, since, until,
                    page_size=MAX_PAGE_SIZE, workflow=HEAL_WORKFLOW) -> dict:
    """List one manager's heals (``workflow`` None: every execution) in the window. Never
    raises for an unreachable manager.

    `source_factory(profile)` returns an object with `.version`, `list_tenants()` and
    `list_executions(params, tenant)` (one page, the REST list body). Returns
    {profile, reachable, error, version, scope, tenants, requests, heals, executions, gaps,
    not_checked}: `heals` the heal executions, `executions` the others (with `workflow`
    None); `tenants` lists the tenants listed one by one (4.0 / 4.1) and is None when one
    listing covered every tenant (`scope` all-tenants) or there are none (3.x, `scope`
    single); `not_checked` [{manager, tenant, reason}] what could not be listed.
    """
    report = {'profile': profile, 'reachable': None, 'error': None,
              'version': None, 'scope': None, 'tenants': None, 'requests': 0,
              'heals': [], 'executions': [], 'gaps': [], 'not_checked': []}
    errors = SOURCE_ERRORS

    def not_checked(tenant, reason):
        report['not_checked'].append({'manager': label, 'tenant': tenant, 'reason': reason})

    try:
        source = source_factory(profile)
    except errors as error:
        report['reachable'] = not _is_unreachable(error)
        report['error'] = _describe_error(error)
        report['gaps'].append('{0} manager ({1}) could not be queried: {2}'.format(
            label, profile, report['error']))
        not_checked(None, report['error'])
        return report
    report['reachable'] = True
    version = getattr(source, 'version', None)
    report['version'] = str(version) if version is not None else None
    scope = listing_scope(version)
    report['scope'] = scope
    fields = include_fields(version)
    counter = {'n': 0}

    def pager(tenant, all_tenants):
        def fetch_page(offset, size):
            params = {'_sort': '-created_at',
                      '_include': ','.join(fields), '_size': size,
                      '_offset': offset, '_include_system_workflows': 'true'}
            if workflow:
                params['workflow_id'] = workflow
            if all_tenants:
                params['_all_tenants'] = 'true'
            counter['n'] += 1
            return source.list_executions(params, tenant)
        return fetch_page

    heals = []
    try:
        if scope == 'per-tenant':
            try:
                tenants = _tenant_names(source.list_tenants())
            except errors as error:
                if _is_unreachable(error):
                    raise
                fallback = getattr(source, 'tenant', None) or DEFAULT_TENANT
                tenants = [fallback]
                reason = 'tenants could not be listed ({0}); only tenant {1} was ' \
                         'checked'.format(_describe_error(error, version), fallback)
                report['gaps'].append('{0} manager: {1}'.format(label, reason))
                not_checked(None, reason)
            report['tenants'] = tenants
            for tenant in tenants:
                try:
                    items, _ = collect_heals(pager(tenant, False), since, until, page_size)
                except errors as error:
                    if _is_unreachable(error):
                        raise
                    reason = _describe_error(error, version)
                    report['gaps'].append('{0} manager: tenant {1} could not be listed: '
                                          '{2}'.format(label, tenant, reason))
                    not_checked(tenant, reason)
                    continue
                heals.extend(normalise_execution(item, tenant) for item in items)
        elif scope == 'all-tenants':
            items, _ = collect_heals(pager(getattr(source, 'tenant', None), True),
                                     since, until, page_size)
            heals.extend(normalise_execution(item) for item in items)
        else:
            items, _ = collect_heals(pager(None, False), since, until, page_size)
            heals.extend(normalise_execution(item) for item in items)
    except errors as error:
        report['reachable'] = not _is_unreachable(error)
        report['error'] = _describe_error(error, version)
        report['gaps'].append('{0} manager ({1}): listing executions failed: {2}'.format(
            label, profile, report['error']))
        not_checked(None, report['error'])
    report['requests'] = counter['n']
    heals.sort(key=lambda h: (h['created_at'] or '', h['id'] or ''))
    report['heals'] = [h for h in heals if h['workflow_id'] == HEAL_WORKFLOW]
    report['executions'] = [h for h in heals if h['workflow_id'] != HEAL_WORKFLOW]
    return report


# ---------------------------------------------------------------------- analysis

def _key(heal):
    return (heal.get('deployment_id'), heal.get('node_instance_id'))


def _checks(finding, new_profile):
    tenant = finding['tenant'] or DEFAULT_TENANT
    node_instance = finding['node_instance_id']
    deployment = finding['deployment_id']
    use = 'cfy profiles use {0} && '.format(new_profile) if new_profile else ''
    if node_instance:
        checks = [
            '{0}cfy node-instances get {1} -t {2}: note the runtime properties the new '
            'manager holds (external_id, ip) - that is the VM it manages'.format(
                use, node_instance, tenant),
            'In the cloud\'s VM list, look for more than one VM for node instance {0} of '
            'deployment {1}; a VM not referenced by the new manager\'s runtime '
            'properties was created by the old manager\'s heal {2} and is a '
            'duplicate'.format(node_instance, deployment, finding['old_execution_id']),
        ]
    else:
        checks = [
            'The heal {0} carries no node_instance_id parameter: {1}cfy node-instances '
            'list -d {2} -t {3} and compare every host with the cloud\'s VM '
            'list'.format(finding['old_execution_id'], use, deployment, tenant),
        ]
    return checks


def analyse(old_heals, new_heals, cutover, new_profile=None) -> List[dict]:
    """The suspicious heals.

    A heal on the old manager created at or after the cut-over is suspicious (the new
    agents were in place, so its VMs may duplicate the ones the new manager manages).
    A heal of the same (tenant, deployment, node instance) on both managers in the
    window is a likely duplicate even if the old one came first. Old 3.x heals carry
    no tenant; they match the new manager's heal of that deployment and node instance
    in any tenant. Returns `suspected_duplicates` entries (contract keys + details).
    """
    new_by_key = {}
    for heal in new_heals:
        new_by_key.setdefault(_key(heal), []).append(heal)
    findings = []
    for old in old_heals:
        created = parse_timestamp(old.get('created_at'))
        after_cutover = created is None or cutover is None or created >= cutover
        matches = [new for new in new_by_key.get(_key(old), [])
                   if old.get('node_instance_id') is not None
                   and (old.get('tenant') is None or new.get('tenant') == old.get('tenant'))]
        if not after_cutover and not matches:
            continue
        targets = matches or [None]
        for new in targets:
            if new is not None and after_cutover:
                reason = ('healed on the old manager after the cut-over and on the new '
                          'manager')
            elif new is not None:
                reason = 'healed on both managers in the window'
            else:
                reason = 'healed on the old manager after the cut-over'
            finding = {
                'tenant': old.get('tenant') or (new or {}).get('tenant'),
                'deployment_id': old.get('deployment_id'),
                'node_instance_id': old.get('node_instance_id'),
                'old_execution_id': old.get('id'),
                'new_execution_id': new['id'] if new else None,
                'old_status': old.get('status'),
                'old_created_at': old.get('created_at'),
                'new_status': new.get('status') if new else None,
                'new_created_at': new.get('created_at') if new else None,
                'reason': reason,
            }
            finding['check'] = _checks(finding, new_profile)
            findings.append(finding)
    findings.sort(key=lambda f: (f['tenant'] or '', f['deployment_id'] or '',
                                 f['node_instance_id'] or '', f['old_created_at'] or ''))
    return findings


# ---------------------------------------------------------------- old-manager healing

def healing_state(profile, version, healing_fenced, ssh_probe) -> dict:
    """Is auto-heal still running on the old manager?

    Returns {state: active|inactive|not-applicable|unknown, active: bool|None, reason}.
    `ssh_probe(profile)` returns the `systemctl is-active cloudify-riemann` word, or
    raises (HostUnavailable 'ssh-not-configured' when the profile has no SSH settings).
    """
    if version is not None and not has_riemann(version):
        return {'state': 'not-applicable', 'active': False,
                'reason': 'managers 5.0 and later have no riemann and no auto-heal'}
    fenced = ' (the workspace records that new-host stopped it: healing_fenced)' \
        if healing_fenced else ''
    if profile is None:
        return {'state': 'unknown', 'active': None,
                'reason': 'no old-manager profile' + fenced}
    try:
        word = (ssh_probe(profile) or '').strip().splitlines()
        word = word[-1].strip() if word else ''
    except Exception as error:   # any SSH failure only makes the answer unknown
        reason = getattr(error, 'message', None) or str(error) or type(error).__name__
        return {'state': 'unknown', 'active': None,
                'reason': 'could not check {0} over SSH: {1}{2}'.format(
                    RIEMANN_UNIT, ' '.join(str(reason).split())[:300], fenced)}
    if word in ('active', 'activating', 'reloading'):
        return {'state': 'active', 'active': True,
                'reason': '{0} is {1} on the old manager'.format(RIEMANN_UNIT, word)}
    return {'state': 'inactive', 'active': False,
            'reason': '{0} is {1} on the old manager'.format(
                RIEMANN_UNIT, word or 'not running')}
