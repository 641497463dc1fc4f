"""`cfy upgrade prepare`: everything before the old manager is touched (issue 5).

Runs the source checks (``source_checks.py``; for a new upgrade before even the workspace
exists), then - journaled and resumable - creates the snapshot, downloads and verifies it,
takes the host backups the version needs, records the source inventory, optionally
freezes the old manager, and prints the next command.  Nothing it does is irreversible.
``plan`` (``plan.py``) runs the same checks and lists these steps.
"""
from typing import List, Optional

from cloudify_upgrade_plugin import log, versions
from cloudify_upgrade_plugin.engine.checks import evaluate, validate_waivers
from cloudify_upgrade_plugin.engine.command import Command, Outcome
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Runbook, Step
from cloudify_upgrade_plugin.engine.workspace import Workspace, validate_upgrade_id
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.options import PrepareOptions
from cloudify_upgrade_plugin.runbooks import cluster, common, estimates, inventory
from cloudify_upgrade_plugin.runbooks.context import PrepareContext
from cloudify_upgrade_plugin.runbooks.in_place import teardown_instructions
from cloudify_upgrade_plugin.runbooks.reuse import existing_workspace, latest_of, supersede
from cloudify_upgrade_plugin.runbooks.source_checks import (
    PATCH_CHECK, SOURCE_CHECKS, host_backups_needed, patch_check_from_snapshot,
    source_checks)

# The check (and error) ids of a missing update-3 / patch-1 (versions.patch_problem).
PATCH_IDS = {PATCH_CHECK} | set(versions.PATCH_PROBLEM_IDS)


def run(options: PrepareOptions) -> Outcome:
    """`cfy upgrade prepare`: run (or resume) the prepare runbook."""
    known_hosts.configure(accept_new=options.accept_new_host_keys)
    return PrepareCommand(options).run()


def source_host_profiles(manager, mode) -> list:
    """The old manager's profile when the profile has SSH settings: the checks use SSH to
    its host (source-disk runs `df` there; backups, or stopping riemann at a new-host
    cut-over, come later)."""
    return [manager.profile] if common.ssh_configured(manager) else []


class PrepareCommand(Command):
    """Check the old manager, then run the prepare steps in the workspace."""

    def __init__(self, options: PrepareOptions):
        self.options = options
        self.manager = None
        self.ctx = None

    def check(self) -> None:
        options, mode = self.options, self.options.mode
        # every waiver checked once, before anything changes (issue 14 item 7)
        validate_waivers(options.waivers, SOURCE_CHECKS.ids, SOURCE_CHECKS.unwaivable)
        manager = self.manager = common.open_manager(options.from_profile, role='source')
        target = common.parse_target(options.target_version)
        if options.snapshot_id:
            _require_valid_snapshot_id(options.snapshot_id)
        common.verify_host_keys(source_host_profiles(manager, mode))
        # the latest upgrade of this manager and mode: resumed, reused, or superseded
        previous = None if options.upgrade_id else \
            latest_of(manager, mode, options.workdir)
        workspace = existing_workspace(options, previous)
        precomputed = estimate = None
        if workspace is None:
            # a new upgrade: nothing, not even the workspace, exists until the checks pass
            estimate = estimates.for_manager(manager, options.link_mbps)
            precomputed = source_checks(manager, mode, target, estimate)
            try:
                evaluate(precomputed, options.waivers)
            except UpgradeError as error:
                document = base_document(manager, mode, precomputed)
                document.update(upgrade_id=None, steps=[], next=None,
                                estimates=estimates.section(estimate, precomputed))
                lines = common.check_lines(document['checks']) + \
                    estimates.lines(document['estimates'])
                report_blocked(error, document, lines)
                raise
            if options.upgrade_id:
                validate_upgrade_id(options.upgrade_id)
            workspace = Workspace.create(options.upgrade_id, mode=mode, base=options.workdir,
                                         source=common.manager_meta(manager),
                                         target_version=str(target) if target else None,
                                         supersedes=previous.upgrade_id if previous else None)
            if previous is not None:
                supersede(previous, workspace)
        self.workspace = workspace
        cluster.record_source(workspace, manager, target)     # the layout, non-secret
        snapshot_id = _snapshot_id(workspace, options)
        if precomputed is not None:
            workspace.update_meta(snapshot_id=snapshot_id)
        self.ctx = PrepareContext(workspace, options=options, manager=manager, mode=mode,
                                  target=target, snapshot_id=snapshot_id, checks=precomputed,
                                  estimate=estimate)
        common.journal_host_keys(workspace)

    def execute(self) -> None:
        manager, mode = self.manager, self.options.mode
        # not the snapshot id: a new --snapshot-id is how a failed snapshot is retried
        fingerprint = {'source': {'address': manager.address,
                                  'version': str(manager.version)},
                       'mode': mode}
        runbook = Runbook('prepare', prepare_steps(self.options.freeze))
        get_logger().info('Upgrade %s: preparing %s for %s upgrade',
                          self.workspace.upgrade_id, _label(manager),
                          'an in-place' if mode == versions.MODE_IN_PLACE else 'a new-host')
        Runner(self.workspace, runbook, fingerprint).run(self.ctx)

    def failed(self, error: UpgradeError) -> Optional[dict]:
        if error.error_id in ('fingerprint-changed', 'workspace-locked'):
            return None     # the workspace belongs to another upgrade / process: leave it be
        document = self.document()
        document['error'] = error.to_dict()
        extra = dict(error.document or {})
        extra.pop('checks', None)      # the workspace's merged checks are the full list
        document.update(extra)
        error.document = document
        return document

    def document(self) -> dict:
        return _document(self.workspace, self.manager, self.options.mode)

    def render(self, document: dict) -> None:
        common.render(document, _prepare_lines(document))


def report_blocked(error: UpgradeError, document: dict, lines: List[str]) -> None:
    """Put the document on a BlockedError; print every check first (not with --json)."""
    merged = dict(document)
    merged.update(error.document or {})
    error.document = merged
    if not log.json_mode():
        logger = get_logger()
        for line in lines:
            if not line.startswith('Next:'):
                logger.info(line)


def _label(manager):
    return '{0} {1}'.format(manager.version, manager.edition) if manager.edition \
        else str(manager.version)


def _require_valid_snapshot_id(snapshot_id):
    problem = versions.snapshot_id_problem(snapshot_id)
    if problem:
        raise InputError('--snapshot-id {0}: {1}'.format(snapshot_id, problem),
                         error_id='bad-snapshot-id',
                         hints=['Use a letter first, then letters, digits, ".", "_" or "-" '
                                '(at most 256 characters).'])


def _snapshot_id(workspace, options):
    """--snapshot-id, else the id this upgrade already uses, else one from the upgrade id.

    Another --snapshot-id than the recorded one is accepted until the snapshot exists
    (after a failed snapshot: "run prepare again with a new --snapshot-id").
    """
    meta = workspace.meta
    recorded = meta.get('snapshot_id') or (meta.get('snapshot') or {}).get('id') or \
        (meta.get('fingerprint') or {}).get('snapshot_id')
    wanted = options.snapshot_id
    if wanted and recorded and wanted != recorded:
        if workspace.journal.last_event(CreateSnapshot.id) in ('succeeded', 'skipped'):
            raise InputError(
                'Upgrade {0} already has its snapshot {1}; --snapshot-id {2} cannot replace '
                'it.'.format(workspace.upgrade_id, recorded, wanted),
                error_id='snapshot-id-changed',
                hints=['Leave --snapshot-id out to go on with {0}.'.format(recorded),
                       'Or start a new upgrade: `cfy upgrade prepare --upgrade-id NEW_ID '
                       '--snapshot-id {0}`.'.format(wanted)])
        get_logger().info('Upgrade %s: snapshot id %s replaces %s (no snapshot was made '
                          'with it).', workspace.upgrade_id, wanted, recorded)
    snapshot_id = wanted or recorded or default_snapshot_id(workspace)
    _require_valid_snapshot_id(snapshot_id)
    return snapshot_id


def default_snapshot_id(workspace) -> str:
    """A valid snapshot id derived from the upgrade id (letter first)."""
    candidate = workspace.upgrade_id.replace(':', '-')
    if not candidate[:1].isalpha():
        candidate = 'upg-' + candidate
    return candidate[:256]


def base_document(manager, mode, checks) -> dict:
    return {'mode': mode,
            'source': {'version': str(manager.version), 'edition': manager.edition,
                       'api_prefix': manager.api_prefix,
                       'address': manager.address},
            'checks': [check.to_dict() if hasattr(check, 'to_dict') else check
                       for check in checks]}


def _document(workspace, manager, mode):
    meta = workspace.meta
    document = base_document(manager, mode, meta.get('checks') or [])
    document['upgrade_id'] = workspace.upgrade_id
    document['target_version'] = meta.get('target_version')
    document['steps'] = common.step_states(workspace)
    snapshot = meta.get('snapshot')
    if snapshot:
        document['snapshot'] = snapshot
    document['backups'] = meta.get('backups') or []
    document['inventory'] = 'inventory/source.json' if workspace.exists(
        'inventory/source.json') else None
    document['frozen'] = workspace.journal.last_event(Freeze.id) in ('succeeded', 'skipped')
    document['maintenance'] = _maintenance_left(workspace, document['frozen'])
    if document['frozen']:
        document['checks'] = [_after_freeze(check) for check in document['checks']]
    document['next'] = next_command(workspace.upgrade_id, mode)
    document['layout'] = meta.get('source_layout')
    document['cluster'] = meta.get('source_cluster')
    if meta.get('estimates'):
        document['estimates'] = dict(meta['estimates'])
        if snapshot:      # the estimate next to what the snapshot really weighs
            document['estimates']['actual_snapshot_bytes'] = snapshot.get('size')
    instructions = []
    if document['frozen']:
        instructions.append(
            'The old manager is in maintenance mode (--freeze). Deactivate it (`cfy '
            'maintenance-mode deactivate`) if the upgrade is abandoned{0}.'.format(
                ', and before `cfy upgrade verify-heals` on a {0} manager (it blocks the '
                'executions list there)'.format(manager.version)
                if not versions.maintenance_allows_snapshots(manager.version) else ''))
    if mode == versions.MODE_IN_PLACE:
        instructions.extend(teardown_instructions(manager.version))
    document['instructions'] = instructions
    return document


def _maintenance_left(workspace, frozen) -> Optional[str]:
    """The old manager's maintenance state as prepare left it: what freeze-source saw at
    its end, else what the maintenance-mode check saw (prepare changed nothing since);
    None when not known (the check was waived or failed)."""
    if frozen:
        details = workspace.journal.last_entry(Freeze.id).get('details') or {}
        return details.get('maintenance') or 'activated'
    checks = {check['id']: check for check in workspace.meta.get('checks') or []}
    if (checks.get('maintenance-mode') or {}).get('status') == 'pass':
        return 'deactivated'
    return None


def _after_freeze(check: dict) -> dict:
    """The maintenance-mode check saw the state before --freeze: say what followed."""
    if check.get('id') != 'maintenance-mode' or check.get('status') != 'pass':
        return check
    return dict(check, message='Maintenance mode was off when checked; --freeze activated '
                               'it once the snapshot was safe locally.')


def next_command(upgrade_id: str, mode: str) -> str:
    if mode == versions.MODE_IN_PLACE:
        return 'cfy upgrade in-place --upgrade-id {0}'.format(upgrade_id)
    return 'cfy upgrade new-host --upgrade-id {0} --to-profile <new manager profile>'.format(
        upgrade_id)


def _prepare_lines(document):
    lines = ['Upgrade id: {0}'.format(document['upgrade_id'])]
    snapshot = document.get('snapshot') or {}
    if snapshot:
        lines.append('Snapshot: {0} ({1} bytes, sha256 {2}, snapshot version {3})'.format(
            snapshot.get('path'), snapshot.get('size'), snapshot.get('sha256'),
            snapshot.get('snapshot_version')))
    for backup in document.get('backups') or []:
        lines.append('Backup: {0} -> {1}'.format(backup['kind'], backup['path']))
    if document.get('inventory'):
        lines.append('Inventory: {0}'.format(document['inventory']))
    lines.extend(cluster.section_lines(document))
    lines.extend(common.check_lines(document['checks']))
    if document.get('estimates'):
        lines.extend(estimates.lines(document['estimates']))
    if document.get('maintenance') == 'activated':
        lines.append('Maintenance mode: activated on the old manager (--freeze); it stays on '
                     'until `cfy maintenance-mode deactivate`.')
    elif document.get('maintenance') == 'deactivated':
        lines.append('Maintenance mode: off on the old manager (not frozen: changes made '
                     'there from now on are not in the snapshot).')
    for line in document.get('instructions') or []:
        lines.append('* ' + line)
    lines.append('Next: {0}'.format(document['next']))
    return lines


# -- the steps --------------------------------------------------------------------------

class PrepareStep(Step):
    """A prepare step; ``changes`` says what it changes (for plan and the report)."""
    changes = 'nothing'


def _merge_checks(workspace, checks):
    """Replace the workspace's checks of the same ids (or of the patch family) by ``checks``."""
    ids = {check.id for check in checks}
    if ids & PATCH_IDS:
        ids |= PATCH_IDS
    kept = [check for check in workspace.meta.get('checks') or [] if check['id'] not in ids]
    merged = kept + [check.to_dict() for check in checks]
    workspace.update_meta(checks=merged)
    return merged


class CheckSource(PrepareStep):
    id = 'check-source'
    title = 'Check the old manager'
    changes = 'nothing (read only)'

    def run(self, ctx) -> dict:
        if ctx.checks is None:
            ctx.estimate = estimates.for_manager(ctx.manager, ctx.options.link_mbps)
        checks = ctx.checks or source_checks(ctx.manager, ctx.mode, ctx.target, ctx.estimate)
        evaluated = evaluate(checks, ctx.options.waivers,
                             journal=ctx.workspace.journal, step=self.id)
        ctx.workspace.update_meta(checks=[check.to_dict() for check in evaluated],
                                  estimates=estimates.section(ctx.estimate, evaluated))
        return {'checks': {check.id: check.status for check in evaluated}}


class CreateSnapshot(PrepareStep):
    id = 'create-snapshot'
    title = 'Create a snapshot on the old manager'
    changes = 'adds one snapshot on the old manager'

    def check(self, ctx) -> bool:
        return common.snapshot_status(ctx.manager, ctx.snapshot_id) == 'created'

    def run(self, ctx) -> dict:
        snapshot_id = ctx.snapshot_id
        ctx.workspace.update_meta(snapshot_id=snapshot_id)     # before the PUT: a rerun
        execution_id = common.create_snapshot(ctx.manager, snapshot_id,
                                              timeout=ctx.options.timeout)
        return {'snapshot_id': snapshot_id, 'execution_id': execution_id}

    def verify(self, ctx) -> None:
        common.require_snapshot_created(ctx.manager, ctx.snapshot_id)


class DownloadSnapshot(PrepareStep):
    id = 'download-snapshot'
    title = 'Download the snapshot (streamed, hashed, resumable)'
    changes = 'writes the snapshot zip under the workspace'

    def check(self, ctx) -> bool:
        return common.local_snapshot_intact(ctx.workspace, ctx.snapshot_id)

    def run(self, ctx) -> dict:
        result = common.download_snapshot(ctx.manager, ctx.workspace, ctx.snapshot_id)
        ctx.downloaded = {'sha256': result['sha256'],
                          'identity': common.file_identity(result['path'])}
        return {'sha256': result['sha256'], 'size': result['size'],
                'resumes': result.get('resumes', 0)}


class VerifySnapshot(PrepareStep):
    id = 'verify-snapshot'
    title = 'Verify the snapshot archive and its version'
    changes = 'nothing (reads the local zip)'

    def run(self, ctx) -> dict:
        manager = ctx.manager
        snapshot = common.inspect_local_snapshot(ctx.workspace, ctx.snapshot_id,
                                                 ctx.downloaded)
        _require_source_version(manager, snapshot)
        check = patch_check_from_snapshot(manager.version, snapshot['snapshot_version'])
        try:
            evaluated = evaluate([check], ctx.options.waivers,
                                 journal=ctx.workspace.journal,
                                 known_ids=SOURCE_CHECKS.ids, step=self.id)
        except BlockedError as error:
            checks = _merge_checks(ctx.workspace, [check])
            raise _patch_blocked(ctx, manager, check, checks) from error
        _merge_checks(ctx.workspace, evaluated)
        ctx.workspace.update_meta(snapshot=snapshot)
        return {'snapshot_version': snapshot['snapshot_version'],
                'sha256': snapshot['sha256']}


def _require_source_version(manager, snapshot):
    """The zip's metadata.json must name the manager it came from (a patched 4.0.x writes
    "4.1.0-p3-4.0.1", whose base is the manager's 4.0.1; behaviour §3.7, §7.3)."""
    found = versions.Version.parse(snapshot['snapshot_version'])
    if found.base != manager.version.base:
        raise UpgradeError(
            'Snapshot {0} says it was made by a {1} manager, but {2} is {3}.'.format(
                snapshot['id'], snapshot['snapshot_version'], manager.label,
                manager.version),
            error_id='snapshot-version-mismatch',
            hints=['Check that the profile points at the manager you mean to upgrade, '
                   'then run prepare again with a new --upgrade-id.'])


def _patch_blocked(ctx, manager, check, checks):
    snapshot_id = ctx.snapshot_id
    upgrade_id = ctx.workspace.upgrade_id
    error = BlockedError(
        'The snapshot is not usable: {0}: {1} Nothing was changed on the old manager but '
        'the new snapshot {2}.'.format(check.id, check.message, snapshot_id),
        checks=checks, error_id=check.id, step=VerifySnapshot.id,
        details={'failed': [check.id]}, document={'checks': checks},
        hints=['Apply {0} on the old manager, then run `cfy upgrade prepare` again: it '
               'starts a new upgrade with a new snapshot (this one cannot be '
               'fixed).'.format(check.id.replace('-missing', '')),
               'Remove the unusable snapshot from the old manager: `cfy snapshots delete '
               '{0}`.'.format(snapshot_id),
               'Or, if agents restored without their tenant are acceptable, use this '
               'snapshot anyway: `cfy upgrade prepare --upgrade-id {0} --waive {1} --reason '
               'TEXT`.'.format(upgrade_id, check.id)])
    return error


class BackupHostFiles(PrepareStep):
    id = 'backup-host-files'
    title = 'Back up rest-security.conf and /etc/cloudify/ssl over SSH'
    changes = 'copies files from the old manager host into backups/'

    def check(self, ctx) -> bool:
        return not host_backups_needed(ctx.manager, ctx.mode)

    def run(self, ctx) -> dict:
        manager = ctx.manager
        needed = host_backups_needed(manager, ctx.mode)
        if not common.ssh_configured(manager) and _waived(ctx, 'ssh-access'):
            ctx.logger.warning('Not backing up %s: the profile has no SSH settings and the '
                               'ssh-access check was waived.', ', '.join(needed))
            return {'backups': [], 'not_backed_up': needed, 'reason': 'ssh-access waived'}
        backups = common.backup_host_files(manager, ctx.workspace, needed)
        ctx.workspace.update_meta(backups=backups)
        return {'backups': [backup['kind'] for backup in backups]}


def _waived(ctx, check_id):
    return any(waiver.check == check_id for waiver in ctx.options.waivers)


class SourceInventory(PrepareStep):
    id = 'source-inventory'
    title = 'Record the old manager\'s inventory'
    changes = 'writes inventory/source.json'

    def check(self, ctx) -> bool:
        return ctx.workspace.exists('inventory/source.json')

    def run(self, ctx) -> dict:
        data = inventory.collect(ctx.manager)
        ctx.workspace.makedirs('inventory')
        ctx.workspace.write_json('inventory/source.json', data)
        for line in inventory.summary(data):
            ctx.logger.info('  %s', line)
        return {'tenants': len(data['tenants'])}


class Freeze(PrepareStep):
    id = 'freeze-source'
    title = 'Put the old manager in maintenance mode'
    changes = 'activates maintenance mode on the old manager (undo: cfy maintenance-mode ' \
              'deactivate)'

    def check(self, ctx) -> bool:
        return ctx.manager.maintenance_state() == 'activated'

    def run(self, ctx) -> dict:
        manager = ctx.manager
        if not common.local_snapshot_intact(ctx.workspace, ctx.snapshot_id):
            raise UpgradeError('The snapshot is not safe locally; the old manager is not '
                               'frozen.', error_id='snapshot-not-local',
                               hints=['Run prepare again: it downloads the snapshot first.'])
        manager.activate_maintenance()
        state = waits.wait_for_maintenance(manager, ctx.options.timeout)
        return {'maintenance': state}


class WriteReport(PrepareStep):
    id = 'write-prepare-report'
    title = 'Write the report'
    changes = 'writes report.json and report.md'

    def run(self, ctx) -> dict:
        return {}


def prepare_steps(freeze: bool) -> List[Step]:
    steps = [CheckSource(), CreateSnapshot(), DownloadSnapshot(), VerifySnapshot(),
             BackupHostFiles(), SourceInventory()]
    if freeze:
        steps.append(Freeze())
    steps.append(WriteReport())
    return steps
