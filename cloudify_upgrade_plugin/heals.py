"""`verify-heals` (issue 8): find heal executions that may have duplicated VMs.

Owns the whole command: resolving the window (workspace cut-over or --since/--until),
listing `heal` executions on the old and the new manager in every tenant (server-side
`workflow_id=heal` filter, newest first, paging only as far back as the window), the
analysis (old-manager heals after the cut-over; the same node instance healed on both
managers), whether the old manager's riemann is still healing, and the output (a table,
or the contract's JSON document with --json; exit 4 when something is suspicious).

Version rules used here (facts section 4, checked against the manager sources):
- `_all_tenants=true` is honoured by the executions list from 4.2 on only; 4.0 / 4.1
  silently ignore it and list the Tenant header's tenant, so they are listed per tenant.
  3.4.2 has no tenants.
- `_include` of an unknown field is a 400 (`no_such_include_field_error`): `tenant_name`
  exists from 4.0, `ended_at` from 4.4; 3.4.2 has neither.
- `_size` <= 1000 with `_offset` (4.0-4.5.x reject larger pages and unpaged lists above
  1000 rows); no `_range` on executions, so the window is cut on the client.
- riemann (and so auto-heal) exists on 3.x / 4.x only.

The network is reached through small seams (`source_factory`, `ssh_probe`, `clock`), so
the analysis is tested with fakes and the real managers are only touched in `run`.
"""
import contextlib
import sys

from cloudify_upgrade_plugin.clock import iso_millis, parse_option, utcnow
from cloudify_upgrade_plugin.clock import parse as parse_timestamp
from cloudify_upgrade_plugin.errors import (
    EXIT_HEALS_FOUND, InputError, UpgradeError)
from cloudify_upgrade_plugin.log import emit_json, get_logger, json_mode
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.retry import TRANSPORT_ERRORS, is_connection_error

STEP_ID = 'verify-heals'
HEAL_WORKFLOW = 'heal'
RIEMANN_UNIT = 'cloudify-riemann'
MAX_PAGE_SIZE = 1000
BASE_FIELDS = ('id', 'workflow_id', 'status', 'deployment_id', 'created_at',
               'parameters')
DEFAULT_TENANT = 'default_tenant'


# --------------------------------------------------------------------------- time

# ----------------------------------------------------------------- version gates

def _version_tuple(version):
    """(major, minor, patch) of a Version object or a version string; None if unknown."""
    if version is None:
        return None
    parts = getattr(version, 'parts', None)     # versions.Version (calendar builds mapped)
    if isinstance(parts, tuple) and parts:
        parts = tuple(int(part) for part in parts[:3])
        return parts + (0,) * (3 - len(parts))
    text = str(version)
    parts = []
    for piece in text.split('-')[0].split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        return None
    while len(parts) < 3:
        parts.append(0)
    if parts[0] >= 17:   # community calendar build (17.3.31 ~ 4.0, 17.6.30 ~ 4.1, ...)
        return (4, 0, 0) if tuple(parts) < (17, 6, 30) else (4, 1, 0)
    return tuple(parts)


def _at_least(version, minimum):
    parsed = _version_tuple(version)
    return parsed is not None and parsed >= minimum


def listing_scope(version):
    """How one manager's executions cover every tenant.

    'single': 3.x, no tenants. 'per-tenant': 4.0 / 4.1 ignore `_all_tenants` on
    executions, so one listing per tenant. 'all-tenants': 4.2+, one listing.
    """
    parsed = _version_tuple(version)
    if parsed is None or parsed < (4, 0, 0):
        return 'single'
    if parsed < (4, 2, 0):
        return 'per-tenant'
    return 'all-tenants'


def include_fields(version):
    """The `_include` projection this version accepts (unknown fields are a 400)."""
    fields = list(BASE_FIELDS)
    if _at_least(version, (4, 0, 0)):
        fields.append('tenant_name')
    if _at_least(version, (4, 4, 0)):
        fields.append('ended_at')
    return fields


def has_riemann(version):
    parsed = _version_tuple(version)
    return parsed is None or parsed < (5, 0, 0)


# ------------------------------------------------------------------------ paging

def collect_heals(fetch_page, since, until, page_size=MAX_PAGE_SIZE):
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

def normalise_heal(item, tenant=None):
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


def _describe_error(error):
    text = ' '.join(str(getattr(error, 'message', None) or error or '').split())[:400]
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
                    page_size=MAX_PAGE_SIZE):
    """List one manager's heals in the window. Never raises for an unreachable manager.

    `source_factory(profile)` returns an object with `.version`, `list_tenants()` and
    `list_executions(params, tenant)` (one page, the REST list body). Returns
    {profile, reachable, error, version, scope, tenants, requests, heals, gaps}; `tenants`
    lists the tenants listed one by one (4.0 / 4.1) and is None when one listing covered
    every tenant (`scope` all-tenants) or there are none (3.x, `scope` single).
    """
    report = {'profile': profile, 'reachable': None, 'error': None,
              'version': None, 'scope': None, 'tenants': None, 'requests': 0,
              'heals': [], 'gaps': []}
    errors = SOURCE_ERRORS
    try:
        source = source_factory(profile)
    except errors as error:
        report['reachable'] = not _is_unreachable(error)
        report['error'] = _describe_error(error)
        report['gaps'].append('{0} manager ({1}) could not be queried: {2}'.format(
            label, profile, report['error']))
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
            params = {'workflow_id': HEAL_WORKFLOW, '_sort': '-created_at',
                      '_include': ','.join(fields), '_size': size,
                      '_offset': offset, '_include_system_workflows': 'true'}
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
                report['gaps'].append(
                    '{0} manager: tenants could not be listed ({1}); only tenant '
                    '{2} was checked'.format(label, _describe_error(error), fallback))
            report['tenants'] = tenants
            for tenant in tenants:
                try:
                    items, _ = collect_heals(pager(tenant, False), since, until, page_size)
                except errors as error:
                    if _is_unreachable(error):
                        raise
                    report['gaps'].append('{0} manager: tenant {1} could not be listed: '
                                          '{2}'.format(label, tenant, _describe_error(error)))
                    continue
                heals.extend(normalise_heal(item, tenant) for item in items)
        elif scope == 'all-tenants':
            items, _ = collect_heals(pager(getattr(source, 'tenant', None), True),
                                     since, until, page_size)
            heals.extend(normalise_heal(item) for item in items)
        else:
            items, _ = collect_heals(pager(None, False), since, until, page_size)
            heals.extend(normalise_heal(item) for item in items)
    except errors as error:
        report['reachable'] = not _is_unreachable(error)
        report['error'] = _describe_error(error)
        report['gaps'].append('{0} manager ({1}): listing executions failed: {2}'.format(
            label, profile, report['error']))
    report['requests'] = counter['n']
    heals.sort(key=lambda h: (h['created_at'] or '', h['id'] or ''))
    report['heals'] = heals
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


def analyse(old_heals, new_heals, cutover, new_profile=None):
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

def healing_state(profile, version, healing_fenced, ssh_probe):
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


# ------------------------------------------------------------------ real seams

class RestSource:
    """Adapter from the manager layer's Manager to what inspect_manager needs."""

    def __init__(self, manager):
        self.manager = manager
        self.version = manager.version
        self.tenant = getattr(manager, 'tenant', None) or DEFAULT_TENANT

    def list_tenants(self):
        return self.manager.list_tenants()

    def list_executions(self, params, tenant):
        """One page of the executions list (retried when transient, errors translated)."""
        return self.manager.list_page('executions', params, tenant,
                                      what='listing heal executions')


def rest_source(profile):
    return RestSource(Manager.from_profile(profile))


def ssh_riemann_probe(profile):
    """`systemctl is-active cloudify-riemann` on the old manager's host -> its word."""
    from cloudify_upgrade_plugin.host.ssh import Host
    with Host.from_profile(profile, connect_timeout=10) as host:
        rc, out = host.run(['systemctl', 'is-active', RIEMANN_UNIT], check=False,
                           timeout=30)
    return out.strip() or ('active' if rc == 0 else 'inactive')


# ----------------------------------------------------------------------- inputs

def _open_workspace(upgrade_id, required):
    try:
        from cloudify_upgrade_plugin.engine.workspace import Workspace
    except ImportError:
        if required:
            raise
        return None
    try:
        return Workspace.open(upgrade_id)
    except UpgradeError:
        if required:
            raise
        return None


def _meta(workspace):
    if workspace is None:
        return {}
    meta = getattr(workspace, 'meta', None)
    if callable(meta):
        meta = meta()
    return dict(meta or {})


def resolve_inputs(options, workspace_opener=_open_workspace, clock=utcnow):
    """The window, the profiles and the workspace (if any) for one run."""
    upgrade_id = options.get('upgrade_id')
    old_profile = options.get('old_profile')
    new_profile = options.get('new_profile')
    since_text = options.get('since')
    until_text = options.get('until')
    since = parse_option(since_text, '--since') if since_text else None
    until = parse_option(until_text, '--until') if until_text else None

    workspace = None
    explicit = old_profile and new_profile and since
    if upgrade_id or not explicit:
        workspace = workspace_opener(upgrade_id, required=bool(upgrade_id))
    meta = _meta(workspace)
    cutover_text = meta.get('cutover_at')
    cutover = parse_timestamp(cutover_text) if cutover_text else None
    if cutover_text and cutover is None:
        raise InputError('The workspace records a cut-over time {0!r} that is not ISO '
                         '8601.'.format(cutover_text), error_id='bad-workspace-cutover',
                         hints=['Pass --since TIME explicitly.'])
    mode = meta.get('mode')
    old_profile = old_profile or (meta.get('source') or {}).get('profile')
    new_profile = new_profile or (meta.get('target') or {}).get('profile')
    since = since or cutover
    until = until or clock()
    missing = []
    if since is None:
        missing.append('--since TIME (no cut-over time is recorded{0})'.format(
            ' in workspace ' + str(meta.get('upgrade_id')) if workspace else
            ', and no upgrade workspace was found'))
    if new_profile is None:
        missing.append('--new-profile NAME')
    if old_profile is None and mode != 'in-place':
        missing.append('--old-profile NAME')
    if missing:
        raise InputError(
            'verify-heals needs {0}.'.format(' and '.join(missing)),
            error_id='heals-window-unknown',
            hints=['Run it with --upgrade-id ID of a workspace that went through '
                   'new-host / in-place, or give --old-profile, --new-profile and '
                   '--since (ISO 8601, UTC) for an upgrade done by hand.'])
    if since > until:
        raise InputError('The window is empty: --since {0} is after --until {1}.'.format(
            iso_millis(since), iso_millis(until)), error_id='bad-window',
            hints=['Give --since earlier than --until (both ISO 8601).'])
    return {
        'workspace': workspace, 'upgrade_id': meta.get('upgrade_id') or (
            upgrade_id if workspace else None),
        'mode': mode, 'old_profile': old_profile, 'new_profile': new_profile,
        'since': since, 'until': until, 'cutover': cutover or since,
        # Without --until nothing is cut at the top: a manager clock ahead of this
        # machine's must not hide a heal it just started.
        'until_bound': until if until_text else None,
        'cutover_recorded': cutover is not None,
        'healing_fenced': bool(meta.get('healing_fenced')),
        'source_version': (meta.get('source') or {}).get('version'),
    }


def _same_manager(old_profile, new_profile):
    if old_profile is None or new_profile is None:
        return False
    if old_profile == new_profile:
        return True
    try:
        from cloudify_cli import env
        old = env.get_profile_context(old_profile, suppress_error=True)
        new = env.get_profile_context(new_profile, suppress_error=True)
    except Exception:   # a missing profile is reported when it is used
        return False
    addresses = [(getattr(p, 'manager_ip', None), getattr(p, 'rest_port', None))
                 for p in (old, new) if p is not None]
    return len(addresses) == 2 and bool(addresses[0][0]) and addresses[0] == addresses[1]


# ------------------------------------------------------------------------- run

def verify(inputs, source_factory=rest_source, ssh_probe=ssh_riemann_probe,
           page_size=MAX_PAGE_SIZE):
    """Collect both managers' heals and analyse them -> the JSON document."""
    since, until = inputs['since'], inputs['until']
    bound = inputs.get('until_bound', until)
    old_profile, new_profile = inputs['old_profile'], inputs['new_profile']
    gaps = []
    if inputs.get('mode') == 'in-place' or _same_manager(old_profile, new_profile):
        old = {'profile': old_profile, 'reachable': False, 'version':
               inputs.get('source_version'), 'scope': None, 'tenants': None,
               'requests': 0, 'heals': [], 'gaps': [],
               'error': 'in-place upgrade: the old manager was replaced by the new one at '
                        'the same address, so it cannot heal any more and has no '
                        'executions to list'}
        old['healing'] = {'state': 'not-applicable', 'active': False,
                          'reason': 'the old manager no longer exists (in-place upgrade)'}
    else:
        old = inspect_manager('old', old_profile, source_factory, since, bound, page_size)
        gaps.extend(old.pop('gaps'))
        old['healing'] = healing_state(
            old_profile, old['version'] or inputs.get('source_version'),
            inputs.get('healing_fenced'), ssh_probe)
        old['healing']['fenced_by_upgrade'] = bool(inputs.get('healing_fenced'))
    old.pop('gaps', None)
    new = inspect_manager('new', new_profile, source_factory, since, bound, page_size)
    gaps.extend(new.pop('gaps'))

    old_checked = old['error'] is None
    new_checked = new['error'] is None
    if not old_checked and not new_checked:
        raise UpgradeError(
            'Neither manager could be queried, so no heal could be checked.',
            error_id='heals-not-verifiable',
            hints=gaps + ['Check the profiles (cfy profiles show-current / cfy profiles '
                          'list) and that the new manager is up, then run it again.'])
    if old['error'] is not None and inputs.get('mode') != 'in-place' and \
            not _same_manager(old_profile, new_profile):
        gaps.append('Heals the old manager may have run could not be checked; if it '
                    'still runs, check them with its own cfy (cfy executions list '
                    '--all-tenants) or bring it back to run this again.')
    if not new_checked and old['heals']:
        gaps.append('The new manager\'s heals could not be listed, so old-manager heals '
                    'before the cut-over were not compared with them.')

    findings = analyse(old['heals'], new['heals'], inputs['cutover'], new_profile)
    return {
        'upgrade_id': inputs.get('upgrade_id'),
        'since': iso_millis(since), 'until': iso_millis(until),
        'cutover_at': iso_millis(inputs['cutover']),
        'old_manager': old, 'new_manager': new,
        'suspected_duplicates': findings,
        'healing_active': old['healing'].get('active'),
        'gaps': gaps, 'complete': not gaps,
        'ok': not findings,
    }


def _heal_rows(heals):
    return [{'id': h['id'], 'tenant': h['tenant'] or '-', 'deployment': h['deployment_id'],
             'node_instance': h['node_instance_id'] or '-', 'status': h['status'],
             'created_at': h['created_at']} for h in heals]


def render(document):
    """Human output: a summary, both managers' heals, the findings and what to check."""
    from cloudify_cli.table import print_data
    logger = get_logger()
    logger.info('Heal executions created between %s and %s (cut-over %s)',
                document['since'], document['until'], document['cutover_at'])
    columns = ['id', 'tenant', 'deployment', 'node_instance', 'status', 'created_at']
    for key, title in (('old_manager', 'Old manager'), ('new_manager', 'New manager')):
        side = document[key]
        if side['error'] is not None:
            logger.warning('%s (%s): not checked - %s', title, side['profile'],
                           side['error'])
            continue
        print_data(columns, _heal_rows(side['heals']),
                   '{0} ({1}, {2}): {3} heal(s)'.format(
                       title, side['profile'], side['version'], len(side['heals'])))
    healing = document['old_manager'].get('healing') or {}
    if healing.get('state') == 'active':
        logger.warning('Auto-heal is STILL ACTIVE on the old manager (%s): the window is '
                       'open. Stop it now: sudo systemctl stop %s && sudo systemctl '
                       'disable %s, or disconnect the old manager from the networks it '
                       'heals in.', healing['reason'], RIEMANN_UNIT, RIEMANN_UNIT)
    elif healing:
        logger.info('Old manager healing: %s (%s)', healing.get('state'),
                    healing.get('reason'))
    findings = document['suspected_duplicates']
    if findings:
        rows = [{'tenant': f['tenant'] or '-', 'deployment': f['deployment_id'],
                 'node_instance': f['node_instance_id'] or '-',
                 'old_execution': f['old_execution_id'],
                 'new_execution': f['new_execution_id'] or '-',
                 'old_created_at': f['old_created_at'], 'reason': f['reason']}
                for f in findings]
        print_data(['tenant', 'deployment', 'node_instance', 'old_execution',
                    'new_execution', 'old_created_at', 'reason'], rows,
                   'Suspected duplicate VMs: {0}'.format(len(findings)))
        logger.info('What to check:')
        for finding in findings:
            for check in finding['check']:
                logger.info('  - %s', check)
    for gap in document['gaps']:
        logger.warning('Not verified: %s', gap)
    if findings:
        logger.error('%d heal execution(s) may have duplicated VMs.', len(findings))
    else:
        logger.info('No suspicious heal found%s.', '' if document['complete'] else
                    ' in what could be checked')


def _journal_details(document):
    return {
        'since': document['since'], 'until': document['until'],
        'old_heals': len(document['old_manager']['heals']),
        'new_heals': len(document['new_manager']['heals']),
        'suspected_duplicates': len(document['suspected_duplicates']),
        'old_reachable': document['old_manager']['reachable'],
        'healing_active': document['healing_active'],
        'complete': document['complete'], 'ok': document['ok'],
    }


def _left_to_do(document):
    items = []
    for finding in document['suspected_duplicates']:
        items.append('verify-heals: heal {0} on the old manager ({1}): check node instance '
                     '{2} of deployment {3} (tenant {4}) for a duplicate VM'.format(
                         finding['old_execution_id'], finding['reason'],
                         finding['node_instance_id'] or '(none given)',
                         finding['deployment_id'], finding['tenant'] or '-'))
    if document['healing_active']:
        items.append('verify-heals: auto-heal is still active on the old manager: stop '
                     '{0} there or disconnect it'.format(RIEMANN_UNIT))
    for gap in document['gaps']:
        items.append('verify-heals: not verified: {0}'.format(gap))
    return items


def _write_report(workspace, document):
    """Merge the findings into report.json / report.md (keeping the runbooks' document)."""
    section = {key: document[key] for key in (
        'since', 'until', 'cutover_at', 'suspected_duplicates', 'healing_active',
        'gaps', 'complete', 'ok')}
    section['old_manager'] = {k: v for k, v in document['old_manager'].items()}
    section['new_manager'] = {k: v for k, v in document['new_manager'].items()}
    try:
        from cloudify_upgrade_plugin.engine.report import REPORT_JSON, write_report
    except ImportError:
        workspace.write_json('verify-heals.json', section)
        return
    report = workspace.read_json(REPORT_JSON, default={}) or {}
    left = [item for item in report.get('left_to_do') or []
            if not str(item).startswith('verify-heals: ')]
    report['left_to_do'] = left + _left_to_do(document)
    report['verify_heals'] = section
    write_report(workspace, report)


def _record_failure(workspace, error):
    """Journal a run that could not check anything (both managers out of reach)."""
    if workspace is None:
        return
    lock = getattr(workspace, 'lock', None)
    try:
        with (lock() if callable(lock) else contextlib.nullcontext()):
            workspace.journal.append(STEP_ID, 'started', {})
            workspace.journal.append(STEP_ID, 'failed', {'error_id': error.error_id,
                                                         'message': error.message})
    except UpgradeError as busy:
        if busy.error_id != 'workspace-locked':
            raise


def _record(workspace, document):
    """Journal the run (step verify-heals) and write the findings into the report."""
    if workspace is None:
        return
    lock = getattr(workspace, 'lock', None)
    try:
        with (lock() if callable(lock) else contextlib.nullcontext()):
            journal = workspace.journal
            journal.append(STEP_ID, 'started', {'since': document['since'],
                                                'until': document['until']})
            _write_report(workspace, document)
            # The check ran to the end: 'succeeded'; what it found is in the details.
            journal.append(STEP_ID, 'succeeded', _journal_details(document))
    except UpgradeError as error:
        if error.error_id != 'workspace-locked':
            raise
        get_logger().warning('Upgrade %s is busy (another cfy upgrade runs on it): this '
                             'verify-heals run is not journaled.',
                             getattr(workspace, 'upgrade_id', '?'))


def run(options, source_factory=rest_source, ssh_probe=ssh_riemann_probe,
        workspace_opener=_open_workspace, clock=utcnow, page_size=MAX_PAGE_SIZE):
    """Entry point of `cfy upgrade verify-heals` (options from cli.py).

    Prints the table (or the JSON document), journals into the workspace if there is
    one, and exits 4 when a suspicious heal was found. Returns the document when clean.
    """
    inputs = resolve_inputs(options, workspace_opener, clock)
    try:
        document = verify(inputs, source_factory, ssh_probe, page_size)
    except UpgradeError as error:
        _record_failure(inputs['workspace'], error)
        raise
    _record(inputs['workspace'], document)
    if json_mode():
        emit_json(document)
    else:
        render(document)
    if not document['ok']:
        sys.exit(EXIT_HEALS_FOUND)
    return document
