"""`cfy upgrade verify-heals` (issue 8): find heal executions that may have duplicated VMs.

Owns the command: resolving the window (workspace cut-over or --since/--until), listing
`heal` executions on the old and the new manager in every tenant (``analysis.py``:
server-side `workflow_id=heal` filter, newest first, paging only as far back as the
window), whether the old manager's riemann is still healing, the journal and report of
the workspace, and the output (a table, or the contract's JSON document with --json;
exit 4 when something is suspicious).

The network is reached through small seams (`source_factory`, `ssh_probe`, `clock`), so
the analysis is tested with fakes and the real managers are only touched in `run`.
"""
import contextlib
from typing import List

from cloudify_cli import env
from cloudify_cli.table import print_data

from cloudify_upgrade_plugin.clock import iso_millis, parse_option, utcnow
from cloudify_upgrade_plugin.clock import parse as parse_timestamp
from cloudify_upgrade_plugin.engine.command import Command, Outcome
from cloudify_upgrade_plugin.engine.report import REPORT_JSON, write_report
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import (
    EXIT_HEALS_FOUND, EXIT_OK, InputError, UpgradeError)
from cloudify_upgrade_plugin.heals.analysis import (
    DEFAULT_TENANT, MAX_PAGE_SIZE, RIEMANN_UNIT, analyse, healing_state, inspect_manager)
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.log import emit_json, get_logger, json_mode
from cloudify_upgrade_plugin.manager import profiles
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.options import VerifyHealsOptions

STEP_ID = 'verify-heals'


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
    return RestSource(Manager.from_profile(profile))


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
        old, new = (profiles.explicit_settings(old_profile),
                    profiles.explicit_settings(new_profile))
        old = old.profile if old else env.get_profile_context(old_profile, suppress_error=True)
        new = new.profile if new else env.get_profile_context(new_profile, suppress_error=True)
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
    """Journal a run that could not check anything (both managers out of reach)."""
    if workspace is None:
        return

    def journal():
        workspace.journal.append(STEP_ID, 'started', {})
        workspace.journal.append(STEP_ID, 'failed', {'error_id': error.error_id,
                                                     'message': error.message})
    _under_lock(workspace, journal)


def _record(workspace, document) -> None:
    """Journal the run (step verify-heals) and write the findings into the report."""
    if workspace is None:
        return

    def journal():
        workspace.journal.append(STEP_ID, 'started', {'since': document['since'],
                                                      'until': document['until']})
        _write_report(workspace, document)
        # The check ran to the end: 'succeeded'; what it found is in the details.
        workspace.journal.append(STEP_ID, 'succeeded', _journal_details(document))
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
        return EXIT_OK if document['ok'] else EXIT_HEALS_FOUND
