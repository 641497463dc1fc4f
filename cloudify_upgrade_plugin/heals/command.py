"""`cfy upgrade verify-heals` (issues 8, 15): what the old manager did after the cut-over.

Owns the command: resolving the window (workspace cut-over or --since/--until), listing
every execution of the old manager and the `heal` executions of the new one in every tenant
(``analysis.py``: newest first, paging only as far back as the window; read through
maintenance mode where an admin may, ``Manager.bypassing_maintenance``), whether the old
manager's riemann is still healing, the journal and report of the workspace, and the output
(a table, or the contract's JSON document with --json).  Exit 4 when something is
suspicious (a heal that may have duplicated a VM, or any other execution on the old manager
after the cut-over), else 5 when a manager or tenant could not be checked (``not_checked``).
The journal says ``succeeded`` only for a complete, clean run; an incomplete run keeps an
earlier suspicious result (``heals-suspicious``) standing, so ``status`` never hides it.

The network is reached through small seams (`source_factory`, `ssh_probe`, `clock`), so
the analysis is tested with fakes and the real managers are only touched in `run`.
"""
import contextlib
from typing import List

from cloudify_cli.table import print_data

from cloudify_upgrade_plugin.clock import iso_millis, parse_option, utcnow
from cloudify_upgrade_plugin.clock import parse as parse_timestamp
from cloudify_upgrade_plugin.engine.command import Command, Outcome
from cloudify_upgrade_plugin.engine.report import REPORT_JSON, write_report
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import (
    EXIT_HEALS_FOUND, EXIT_INCOMPLETE, EXIT_OK, InputError, UpgradeError)
from cloudify_upgrade_plugin.files import UnsafePath
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.heals.analysis import (
    DEFAULT_TENANT, MAX_PAGE_SIZE, RIEMANN_UNIT, analyse, healing_state, inspect_manager)
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.log import emit_json, get_logger, json_mode
from cloudify_upgrade_plugin.manager import profiles
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.options import VerifyHealsOptions

STEP_ID = 'verify-heals'
SUSPICIOUS = 'heals-suspicious'
INCOMPLETE = 'heals-incomplete'


# ------------------------------------------------------------------ real seams

class RestSource:
    """Adapter from the manager layer's Manager to what inspect_manager needs."""

    def __init__(self, manager):
        self.manager = manager
        self.version = manager.version
        self.tenant = getattr(manager, 'tenant', None) or DEFAULT_TENANT

    def list_tenants(self) -> List[str]:
        return self.manager.list_tenants()

    def list_executions(self, params, tenant) -> dict:
        """One page of the executions list (retried when transient, errors translated)."""
        return self.manager.list_page('executions', params, tenant,
                                      what='listing heal executions')


def rest_source(profile) -> 'RestSource':
    """The manager of ``profile``, reading through maintenance mode where an admin may."""
    return RestSource(Manager.from_profile(profile).bypassing_maintenance())


def ssh_riemann_probe(profile) -> str:
    """`systemctl is-active cloudify-riemann` on the old manager's host -> its word."""
    with Host.from_profile(profiles.profile_context(profile), connect_timeout=10) as host:
        rc, out = host.run(['systemctl', 'is-active', RIEMANN_UNIT], check=False,
                           timeout=30)
    return out.strip() or ('active' if rc == 0 else 'inactive')


# ----------------------------------------------------------------------- inputs

def _open_workspace(upgrade_id, required):
    try:
        return Workspace.open(upgrade_id)
    except UnsafePath:
        raise
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


def resolve_inputs(options: VerifyHealsOptions, workspace_opener=_open_workspace,
                   clock=utcnow) -> dict:
    """The window, the profiles and the workspace (if any) for one run."""
    upgrade_id = options.upgrade_id
    old_profile = options.old_profile
    new_profile = options.new_profile
    since_text = options.since
    until_text = options.until
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
        old, new = profiles.profile_context(old_profile), profiles.profile_context(new_profile)
    except Exception:   # a missing profile is reported when it is used
        return False
    addresses = [(getattr(p, 'manager_ip', None), getattr(p, 'rest_port', None))
                 for p in (old, new) if p is not None]
    return len(addresses) == 2 and bool(addresses[0][0]) and addresses[0] == addresses[1]


# ------------------------------------------------------------------------- run

def verify(inputs, source_factory=rest_source, ssh_probe=ssh_riemann_probe,
           page_size=MAX_PAGE_SIZE) -> dict:
    """Collect both managers' heals and analyse them -> the JSON document."""
    since, until = inputs['since'], inputs['until']
    bound = inputs.get('until_bound', until)
    old_profile, new_profile = inputs['old_profile'], inputs['new_profile']
    gaps = []
    in_place = inputs.get('mode') == 'in-place' or _same_manager(old_profile, new_profile)
    if in_place:
        old = {'profile': old_profile, 'reachable': False, 'version':
               inputs.get('source_version'), 'scope': None, 'tenants': None,
               'requests': 0, 'heals': [], 'executions': [], 'gaps': [], 'not_checked': [],
               'error': 'in-place upgrade: the old manager was replaced by the new one at '
                        'the same address, so it cannot heal any more and has no '
                        'executions to list'}
        old['healing'] = {'state': 'not-applicable', 'active': False,
                          'reason': 'the old manager no longer exists (in-place upgrade)'}
    else:
        old = inspect_manager('old', old_profile, source_factory, since, bound, page_size,
                              workflow=None)
        old['healing'] = healing_state(
            old_profile, old['version'] or inputs.get('source_version'),
            inputs.get('healing_fenced'), ssh_probe)
        old['healing']['fenced_by_upgrade'] = bool(inputs.get('healing_fenced'))
    new = inspect_manager('new', new_profile, source_factory, since, bound, page_size)
    not_checked = old.pop('not_checked') + new.pop('not_checked')
    gaps.extend(old.pop('gaps') + new.pop('gaps'))
    others = old.pop('executions')
    new.pop('executions')
    if old['error'] is not None and not in_place:
        gaps.append('What the old manager may have run could not be checked; if it still '
                    'runs, check it with its own cfy (cfy executions list --all-tenants) or '
                    'bring it back to run this again.')
    if new['error'] is not None and old['heals']:
        gaps.append('The new manager\'s heals could not be listed, so old-manager heals '
                    'before the cut-over were not compared with them.')

    findings = analyse(old['heals'], new['heals'], inputs['cutover'], new_profile)
    acted = acted_after(others, inputs['cutover'])
    return {
        'upgrade_id': inputs.get('upgrade_id'),
        'since': iso_millis(since), 'until': iso_millis(until),
        'cutover_at': iso_millis(inputs['cutover']),
        'old_manager': old, 'new_manager': new,
        'suspected_duplicates': findings,
        'acted_after_cutover': acted,
        'healing_active': old['healing'].get('active'),
        'gaps': gaps, 'not_checked': not_checked, 'complete': not not_checked,
        'ok': not findings and not acted,
        'earlier_result': None,     # set when journaled: an earlier suspicious run stands
    }


def acted_after(executions, cutover) -> List[dict]:
    """The old manager's executions (heals aside) created at or after the cut-over."""
    acted = []
    for execution in executions:
        created = parse_timestamp(execution.get('created_at'))
        if created is None or created >= cutover:
            acted.append(dict(execution, reason='the old manager acted after the cut-over'))
    return acted


def _heal_rows(heals):
    return [{'id': h['id'], 'tenant': h['tenant'] or '-', 'deployment': h['deployment_id'],
             'node_instance': h['node_instance_id'] or '-', 'status': h['status'],
             'created_at': h['created_at']} for h in heals]


def render(document) -> None:
    """Human output: a summary, both managers' heals, the findings and what to check."""
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
    acted = document.get('acted_after_cutover') or []
    if acted:
        print_data(['id', 'workflow', 'tenant', 'deployment', 'status', 'created_at'],
                   [dict(row, workflow=e['workflow_id']) for row, e in zip(
                       _heal_rows(acted), acted)],
                   'The old manager acted after the cut-over: {0} execution(s)'.format(
                       len(acted)))
    for gap in document['gaps']:
        logger.warning('Not verified: %s', gap)
    for item in document.get('not_checked') or []:
        logger.warning('Not checked: %s manager%s: %s', item['manager'],
                       ', tenant ' + item['tenant'] if item.get('tenant') else '',
                       item['reason'])
    earlier = document.get('earlier_result')
    if earlier:
        logger.error('An earlier verify-heals (%s) found something suspicious (%s); this '
                     'run could not check everything, so that result stands.',
                     earlier['at'], earlier['error_id'])
    if findings:
        logger.error('%d heal execution(s) may have duplicated VMs.', len(findings))
    if acted:
        logger.error('The old manager ran %d execution(s) after the cut-over: check what '
                     'each did to the VMs the new manager now manages.', len(acted))
    if not findings and not acted:
        logger.info('No suspicious heal found%s.', '' if document['complete'] else
                    ' in what could be checked (INCOMPLETE: exit 5)')


def _journal_details(document):
    return {
        'since': document['since'], 'until': document['until'],
        'old_heals': len(document['old_manager']['heals']),
        'new_heals': len(document['new_manager']['heals']),
        'suspected_duplicates': len(document['suspected_duplicates']),
        'acted_after_cutover': len(document.get('acted_after_cutover') or []),
        'old_reachable': document['old_manager']['reachable'],
        'healing_active': document['healing_active'],
        'not_checked': document.get('not_checked') or [],
        'complete': document['complete'], 'ok': document['ok'],
    }


def earlier_result(entries):
    """The suspicious result of an earlier run that no complete run replaced since, as
    ``{'at', 'error_id'}`` (None when the last complete run was clean, or none ran)."""
    for entry in reversed([e for e in entries if e['event'] in ('succeeded', 'failed')]):
        details = entry.get('details') or {}
        if details.get('error_id') == SUSPICIOUS or details.get('ok') is False:
            return {'at': details.get('carried_from') or entry['ts'], 'error_id': SUSPICIOUS}
        if details.get('complete'):
            return None
    return None


def outcome_of(document):
    """(journal event, error id) of a run: succeeded only when complete and clean."""
    if not document['ok'] or document.get('earlier_result'):
        return 'failed', SUSPICIOUS
    if not document['complete']:
        return 'failed', INCOMPLETE
    return 'succeeded', None


def _left_to_do(document):
    items = []
    for finding in document['suspected_duplicates']:
        items.append('verify-heals: heal {0} on the old manager ({1}): check node instance '
                     '{2} of deployment {3} (tenant {4}) for a duplicate VM'.format(
                         finding['old_execution_id'], finding['reason'],
                         finding['node_instance_id'] or '(none given)',
                         finding['deployment_id'], finding['tenant'] or '-'))
    for execution in document.get('acted_after_cutover') or []:
        items.append('verify-heals: {0} {1} on the old manager after the cut-over '
                     '(deployment {2}, tenant {3}, {4}): check what it did'.format(
                         execution['workflow_id'], execution['id'],
                         execution['deployment_id'], execution['tenant'] or '-',
                         execution['status']))
    if document['healing_active']:
        items.append('verify-heals: auto-heal is still active on the old manager: stop '
                     '{0} there or disconnect it'.format(RIEMANN_UNIT))
    for gap in document['gaps']:
        items.append('verify-heals: not verified: {0}'.format(gap))
    if document.get('earlier_result'):
        items.append('verify-heals: the suspicious result of {0} stands (this run could '
                     'not check everything)'.format(document['earlier_result']['at']))
    return items


def _write_report(workspace, document):
    """Merge the findings into report.json / report.md (keeping the runbooks' document)."""
    section = {key: document.get(key) for key in (
        'since', 'until', 'cutover_at', 'suspected_duplicates', 'acted_after_cutover',
        'healing_active', 'gaps', 'not_checked', 'complete', 'ok', 'earlier_result',
        'error')}
    section['old_manager'] = {k: v for k, v in document['old_manager'].items()}
    section['new_manager'] = {k: v for k, v in document['new_manager'].items()}
    report = workspace.read_json(REPORT_JSON, default={}) or {}
    left = [item for item in report.get('left_to_do') or []
            if not str(item).startswith('verify-heals: ')]
    report['left_to_do'] = left + _left_to_do(document)
    report['verify_heals'] = section
    write_report(workspace, report)


def _under_lock(workspace, body) -> bool:
    """Run ``body()`` holding the workspace lock; False (nothing done) when another
    `cfy upgrade` process holds it."""
    lock = getattr(workspace, 'lock', None)
    try:
        with (lock() if callable(lock) else contextlib.nullcontext()):
            body()
    except UpgradeError as error:
        if error.error_id != 'workspace-locked':
            raise
        return False
    return True


def _record_failure(workspace, error) -> None:
    """Journal and report a run that failed before it had a document."""
    if workspace is None:
        return

    def journal():
        workspace.journal.append(STEP_ID, 'started', {})
        workspace.journal.append(STEP_ID, 'failed', {'error_id': error.error_id,
                                                     'message': error.message})
        report = workspace.read_json(REPORT_JSON, default={}) or {}
        section = dict(report.get('verify_heals') or {}, error=error.to_dict(), ok=None,
                       complete=False)
        report['verify_heals'] = section
        write_report(workspace, report)         # last: it carries the journal's head
    _under_lock(workspace, journal)


def _record(workspace, document) -> None:
    """Journal the run (step verify-heals) and write the findings into the report."""
    if workspace is None:
        return

    def journal():
        previous = workspace.journal.step_entries(STEP_ID)
        if not document['complete'] and document['ok']:
            document['earlier_result'] = earlier_result(previous)
        workspace.journal.append(STEP_ID, 'started', {'since': document['since'],
                                                      'until': document['until']})
        event, error_id = outcome_of(document)
        details = _journal_details(document)
        if error_id:
            details['error_id'] = error_id
        if document.get('earlier_result'):
            details['carried_from'] = document['earlier_result']['at']
        workspace.journal.append(STEP_ID, event, details)
        # after the outcome is journaled: report.md's steps show this run's result, and
        # the report carries the journal's head
        _write_report(workspace, document)
    if not _under_lock(workspace, journal):
        get_logger().warning('Upgrade %s is busy (another cfy upgrade runs on it): this '
                             'verify-heals run is not journaled.',
                             getattr(workspace, 'upgrade_id', '?'))


def run(options: VerifyHealsOptions, source_factory=rest_source, ssh_probe=ssh_riemann_probe,
        workspace_opener=_open_workspace, clock=utcnow, page_size=MAX_PAGE_SIZE) -> Outcome:
    """Entry point of `cfy upgrade verify-heals`.

    Prints the table (or the JSON document), journals into the workspace if there is
    one; the outcome's exit code is 4 when a suspicious heal was found.
    """
    known_hosts.configure(accept_new=options.accept_new_host_keys)
    return VerifyHeals(options, source_factory, ssh_probe, workspace_opener, clock,
                       page_size).run()


class VerifyHeals(Command):
    """resolve the window -> query both managers -> journal and report -> render."""

    def __init__(self, options, source_factory, ssh_probe, workspace_opener, clock,
                 page_size):
        self.options = options
        self.source_factory = source_factory
        self.ssh_probe = ssh_probe
        self.workspace_opener = workspace_opener
        self.clock = clock
        self.page_size = page_size
        self.inputs = None
        self.result = None

    def check(self) -> None:
        self.inputs = resolve_inputs(self.options, self.workspace_opener, self.clock)
        self.workspace = self.inputs['workspace']

    def execute(self) -> None:
        self.result = verify(self.inputs, self.source_factory, self.ssh_probe,
                             self.page_size)

    def failed(self, error: UpgradeError) -> None:
        _record_failure(self.workspace, error)
        return None

    def document(self) -> dict:
        return self.result

    def report(self, document: dict) -> None:
        _record(self.workspace, document)

    def render(self, document: dict) -> None:
        if json_mode():
            emit_json(document)
        else:
            render(document)

    def exit_code(self, document: dict) -> int:
        if not document['ok']:
            return EXIT_HEALS_FOUND
        return EXIT_OK if document['complete'] else EXIT_INCOMPLETE
