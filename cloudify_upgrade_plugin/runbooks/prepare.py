"""`plan` and `prepare`: everything before the old manager is touched (issue 5).

``plan`` runs the source checks that need no snapshot and lists the steps of the chosen
mode; it sends only read requests.  ``prepare`` runs the same checks, then - journaled and
resumable - creates the snapshot, downloads and verifies it, takes the host backups the
version needs, records the source inventory, optionally freezes the old manager, and
prints the next command.  Nothing it does is irreversible.
"""
import os
import time

from cloudify_upgrade_plugin import log, versions
from cloudify_upgrade_plugin.engine.checks import evaluate
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, Runbook, Step
from cloudify_upgrade_plugin.engine.workspace import (
    Workspace, list_upgrade_ids, validate_upgrade_id)
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.runbooks import common, inventory
from cloudify_upgrade_plugin.runbooks.source_checks import (
    PATCH_CHECK, host_backups_needed, patch_check_from_snapshot, source_checks)

# The check (and error) ids of a missing update-3 / patch-1 (versions.patch_problem).
PATCH_MISSING = ('update-3-missing', 'patch-1-missing')
PATCH_IDS = {PATCH_CHECK} | set(PATCH_MISSING)
# behaviour §2.5: from 4.5 maintenance mode lets snapshots (not executions) through
MAINTENANCE_ALLOWS_SNAPSHOTS = versions.Version.parse('4.5.0')


# -- plan -------------------------------------------------------------------------------

def plan(options):
    """`cfy upgrade plan`: checks and the ordered steps; read only (GETs, SSH reads)."""
    mode = options['mode']
    manager = common.open_manager(options.get('from_profile'), role='source')
    target = common.parse_target(options.get('target_version'))
    checks = source_checks(manager, mode, target, options)
    document = _base_document(manager, mode, checks)
    document['upgrade_id'] = None
    document['target_version'] = str(target) if target else None
    document['steps'] = describe_steps(manager, mode, target, options)
    document['next'] = _prepare_command(mode, target, options)
    try:
        evaluated = evaluate(checks, options.get('waivers') or ())
    except UpgradeError as error:
        document['checks'] = (getattr(error, 'document', None) or {}).get(
            'checks', document['checks'])
        document['next'] = None
        _report_blocked(error, document, _plan_lines(document))
        raise
    document['checks'] = [check.to_dict() for check in evaluated]
    common.render(document, _plan_lines(document))
    return document


def _prepare_command(mode, target, options):
    parts = ['cfy upgrade prepare --mode {0}'.format(mode)]
    if target:
        parts.append('--target-version {0}'.format(target))
    if options.get('from_profile'):
        parts.append('--from-profile {0}'.format(options['from_profile']))
    return ' '.join(parts)


def describe_steps(manager, mode, target, options):
    """The steps prepare and the chosen mode will run, with what each changes."""
    from cloudify_upgrade_plugin.runbooks import restore
    steps = []
    for step in prepare_steps(manager, mode, options):
        changes = step.changes
        if isinstance(step, BackupHostFiles):
            needed = host_backups_needed(manager, mode, options)
            changes = 'copies {0} from the old manager host into backups/'.format(
                ' and '.join(common.HOST_FILES[kind][0] for kind in needed)) \
                if needed else 'nothing (no host file is needed for {0} {1})'.format(
                    manager.version, mode)
        steps.append({'command': 'prepare', 'id': step.id, 'title': step.title,
                      'changes': changes})
    if mode == versions.MODE_IN_PLACE:
        steps.append({'command': 'manual', 'id': 'teardown-and-reinstall',
                      'title': 'By hand, after prepare: tear the old manager down and '
                               'install the new version at the same address (prepare prints '
                               'how for {0})'.format(manager.version),
                      'changes': 'deletes the old manager, its data and certificates'})
    steps.extend({'command': mode, 'id': step['id'], 'title': step['title'],
                  'changes': step['changes']}
                 for step in restore.describe(mode, manager.version, target))
    return steps


def _report_blocked(error, document, lines):
    """Attach the document to a BlockedError; print every check first (not with --json)."""
    merged = dict(document)
    merged.update(getattr(error, 'document', None) or {})
    error.document = merged
    if not log.json_mode():
        logger = get_logger()
        for line in lines:
            if not line.startswith('Next:'):
                logger.info(line)


def _plan_lines(document):
    lines = ['Source: {0} {1} (API {2})'.format(
        document['source']['version'], document['source']['edition'],
        document['source']['api_prefix'])]
    lines.extend(common.check_lines(document['checks']))
    lines.append('Steps ({0}):'.format(document['mode']))
    for number, step in enumerate(document['steps'], 1):
        lines.append('  {0:2}. [{1}] {2}: {3} - changes: {4}'.format(
            number, step['command'], step['id'], step['title'], step['changes']))
    lines.append('Next: {0}'.format(document['next']))
    return lines


# -- prepare ----------------------------------------------------------------------------

def prepare(options):
    """`cfy upgrade prepare`: run (or resume) the prepare runbook."""
    mode = options['mode']
    manager = common.open_manager(options.get('from_profile'), role='source')
    target = common.parse_target(options.get('target_version'))
    if options.get('snapshot_id'):
        _require_valid_snapshot_id(options['snapshot_id'])
    workspace = _existing_workspace(options, manager, mode)
    precomputed = None
    if workspace is None:
        # a new upgrade: nothing, not even the workspace, exists until the checks pass
        precomputed = source_checks(manager, mode, target, options)
        try:
            evaluate(precomputed, options.get('waivers') or ())
        except UpgradeError as error:
            document = _base_document(manager, mode, precomputed)
            document.update(upgrade_id=None, steps=[], next=None)
            _report_blocked(error, document, common.check_lines(document['checks']))
            raise
        if options.get('upgrade_id'):
            validate_upgrade_id(options['upgrade_id'])
        workspace = Workspace.create(options.get('upgrade_id'), mode=mode,
                                     source=common.manager_meta(manager),
                                     target_version=str(target) if target else None)
    snapshot_id = _snapshot_id(workspace, options)
    if precomputed is not None:
        workspace.update_meta(snapshot_id=snapshot_id)
    # not the snapshot id: a new --snapshot-id is how a failed snapshot is retried
    fingerprint = {'source': {'address': manager.address, 'version': str(manager.version)},
                   'mode': mode}
    ctx = Context(workspace, options=options)
    ctx.data.update(manager=manager, target=target, mode=mode, snapshot_id=snapshot_id,
                    checks=precomputed)
    runbook = Runbook('prepare', prepare_steps(manager, mode, options))
    get_logger().info('Upgrade %s: preparing %s for %s upgrade',
                      workspace.upgrade_id, _label(manager),
                      'an in-place' if mode == versions.MODE_IN_PLACE else 'a new-host')
    try:
        Runner(workspace, runbook, fingerprint).run(ctx)
    except UpgradeError as error:
        if error.error_id in ('fingerprint-changed', 'workspace-locked'):
            raise       # the workspace belongs to another upgrade / process: leave it be
        document = _document(workspace, manager, mode, options)
        document['error'] = error.to_dict()
        extra = dict(getattr(error, 'document', None) or {})
        extra.pop('checks', None)      # the workspace's merged checks are the full list
        document.update(extra)
        error.document = document
        write_report(workspace, document)
        raise
    document = _document(workspace, manager, mode, options)
    write_report(workspace, document)
    common.render(document, _prepare_lines(document))
    return document


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
    wanted = options.get('snapshot_id')
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


def default_snapshot_id(workspace):
    """A valid snapshot id derived from the upgrade id (letter first)."""
    candidate = workspace.upgrade_id.replace(':', '-')
    if not candidate[:1].isalpha():
        candidate = 'upg-' + candidate
    return candidate[:256]


def _existing_workspace(options, manager, mode):
    """The workspace to resume, or None when prepare starts a new upgrade."""
    upgrade_id = options.get('upgrade_id')
    if upgrade_id:
        return Workspace.open(upgrade_id) if upgrade_id in list_upgrade_ids() else None
    resumable = _unfinished_prepare(manager, mode)
    if resumable is not None:
        get_logger().info('Resuming upgrade %s (its prepare did not finish; pass '
                          '--upgrade-id NEW to start another one).', resumable.upgrade_id)
    return resumable


def _unfinished_prepare(manager, mode):
    """The most recent workspace of this source and mode whose prepare did not finish.

    Not one whose snapshot was refused for a missing patch: once the patch is applied a
    new snapshot (a new upgrade) is needed; `--upgrade-id` still resumes it explicitly.
    """
    try:
        workspace = Workspace.open()
    except UpgradeError:
        return None
    meta = workspace.meta
    if (meta.get('source') or {}).get('address') != manager.address or \
            meta.get('mode') != mode:
        return None
    journal = workspace.journal
    if journal.last_event(WriteReport.id) == 'succeeded':
        return None
    last = journal.last_entry(VerifySnapshot.id)
    if last and last['event'] == 'failed' and \
            (last.get('details') or {}).get('error_id') in PATCH_MISSING:
        return None
    return workspace


def _base_document(manager, mode, checks):
    return {'mode': mode,
            'source': {'version': str(manager.version), 'edition': manager.edition,
                       'api_prefix': manager.api_prefix,
                       'address': manager.address},
            'checks': [check.to_dict() if hasattr(check, 'to_dict') else check
                       for check in checks]}


def _document(workspace, manager, mode, options):
    meta = workspace.meta
    document = _base_document(manager, mode, meta.get('checks') or [])
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
    document['next'] = next_command(workspace.upgrade_id, mode, manager.version)
    instructions = []
    if document['frozen']:
        instructions.append(
            'The old manager is in maintenance mode (--freeze). Deactivate it (`cfy '
            'maintenance-mode deactivate`) if the upgrade is abandoned{0}.'.format(
                ', and before `cfy upgrade verify-heals` on a {0} manager (it blocks the '
                'executions list there)'.format(manager.version)
                if manager.version < MAINTENANCE_ALLOWS_SNAPSHOTS else ''))
    if mode == versions.MODE_IN_PLACE:
        instructions.extend(teardown_instructions(manager.version))
    document['instructions'] = instructions
    return document


def next_command(upgrade_id, mode, source_version):
    if mode == versions.MODE_IN_PLACE:
        return 'cfy upgrade in-place --upgrade-id {0}'.format(upgrade_id)
    return 'cfy upgrade new-host --upgrade-id {0} --to-profile <new manager profile>'.format(
        upgrade_id)


def teardown_instructions(source):
    """How to remove the old manager and install the new one, per source version (§7.5)."""
    source = versions.as_version(source)
    if source.base < versions.Version.parse('4.1.0'):
        remove = ('On the old manager host: `sudo bash cfy_teardown_4_0_0.sh -f` (the '
                  'cloudify-dev teardown script; `cfy teardown` does not work on 4.0.x).')
    elif source.base < versions.Version.parse('4.3.0'):
        remove = ('`cfy teardown -f` from the CLI that bootstrapped the manager (or '
                  '`cfy_teardown_4_1_0_and_higher.sh -f` on the host).')
    elif source.base < versions.Version.parse('6.4.0'):
        remove = 'On the old manager host: `sudo cfy_manager remove -f`.'
    else:
        remove = 'On the old manager host: `sudo cfy_manager remove -f -c <config.yaml>`.'
    return [
        'The teardown deletes /opt/manager (snapshots, rest-security.conf) and /etc/cloudify '
        '(certificates): the copies under this workspace are now the only ones - keep them.',
        remove,
        'Install the new manager version on the same host and address.',
        'If its admin password differs, update the profile: `cfy profiles set '
        '--manager-password ...`.',
    ]


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
    lines.extend(common.check_lines(document['checks']))
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

    def run(self, ctx):
        manager = ctx.data['manager']
        checks = ctx.data.get('checks') or source_checks(
            manager, ctx.data['mode'], ctx.data['target'], ctx.options)
        evaluated = evaluate(checks, ctx.options.get('waivers') or (),
                             journal=ctx.workspace.journal, step=self.id)
        ctx.workspace.update_meta(checks=[check.to_dict() for check in evaluated])
        return {'checks': {check.id: check.status for check in evaluated}}


class CreateSnapshot(PrepareStep):
    id = 'create-snapshot'
    title = 'Create a snapshot on the old manager'
    changes = 'adds one snapshot on the old manager'

    def check(self, ctx):
        return common.snapshot_status(ctx.data['manager'], ctx.data['snapshot_id']) \
            == 'created'

    def run(self, ctx):
        snapshot_id = ctx.data['snapshot_id']
        ctx.workspace.update_meta(snapshot_id=snapshot_id)     # before the PUT: a rerun
        execution_id = common.create_snapshot(
            ctx.data['manager'], snapshot_id, timeout=ctx.options.get('timeout'))
        return {'snapshot_id': snapshot_id, 'execution_id': execution_id}

    def verify(self, ctx):
        common.require_snapshot_created(ctx.data['manager'], ctx.data['snapshot_id'])


class DownloadSnapshot(PrepareStep):
    id = 'download-snapshot'
    title = 'Download the snapshot (streamed, hashed, resumable)'
    changes = 'writes the snapshot zip under the workspace'

    def check(self, ctx):
        return common.local_snapshot_intact(ctx.workspace, ctx.data['snapshot_id'])

    def run(self, ctx):
        result = common.download_snapshot(ctx.data['manager'], ctx.workspace,
                                          ctx.data['snapshot_id'])
        ctx.data['downloaded'] = {'sha256': result['sha256'],
                                  'identity': common.file_identity(result['path'])}
        return {'sha256': result['sha256'], 'size': result['size'],
                'resumes': result.get('resumes', 0)}


class VerifySnapshot(PrepareStep):
    id = 'verify-snapshot'
    title = 'Verify the snapshot archive and its version'
    changes = 'nothing (reads the local zip)'

    def run(self, ctx):
        manager = ctx.data['manager']
        snapshot = common.inspect_local_snapshot(ctx.workspace, ctx.data['snapshot_id'],
                                                 ctx.data.get('downloaded'))
        _require_source_version(manager, snapshot)
        check = patch_check_from_snapshot(manager.version, snapshot['snapshot_version'])
        try:
            evaluated = evaluate([check], ctx.options.get('waivers') or (),
                                 journal=ctx.workspace.journal,
                                 known_ids=common.all_check_ids(), step=self.id)
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
    snapshot_id = ctx.data['snapshot_id']
    upgrade_id = ctx.workspace.upgrade_id
    error = BlockedError(
        'The snapshot is not usable: {0}: {1} Nothing was changed on the old manager but '
        'the new snapshot {2}.'.format(check.id, check.message, snapshot_id),
        checks=checks, error_id=check.id, step=VerifySnapshot.id,
        details={'failed': [check.id]},
        hints=['Apply {0} on the old manager, then run `cfy upgrade prepare` again: it '
               'starts a new upgrade with a new snapshot (this one cannot be '
               'fixed).'.format(check.id.replace('-missing', '')),
               'Remove the unusable snapshot from the old manager: `cfy snapshots delete '
               '{0}`.'.format(snapshot_id),
               'Or, if agents restored without their tenant are acceptable, use this '
               'snapshot anyway: `cfy upgrade prepare --upgrade-id {0} --waive {1} --reason '
               'TEXT`.'.format(upgrade_id, check.id)])
    error.document = {'checks': checks}
    return error


class BackupHostFiles(PrepareStep):
    id = 'backup-host-files'
    title = 'Back up rest-security.conf and /etc/cloudify/ssl over SSH'
    changes = 'copies files from the old manager host into backups/'

    def check(self, ctx):
        return not host_backups_needed(ctx.data['manager'], ctx.data['mode'], ctx.options)

    def run(self, ctx):
        manager = ctx.data['manager']
        needed = host_backups_needed(manager, ctx.data['mode'], ctx.options)
        if not common.ssh_configured(manager) and _waived(ctx, 'ssh-access'):
            ctx.logger.warning('Not backing up %s: the profile has no SSH settings and the '
                               'ssh-access check was waived.', ', '.join(needed))
            return {'backups': [], 'not_backed_up': needed, 'reason': 'ssh-access waived'}
        backups = common.backup_host_files(manager, ctx.workspace, needed)
        ctx.workspace.update_meta(backups=backups)
        return {'backups': [backup['kind'] for backup in backups]}


def _waived(ctx, check_id):
    return any(waiver.get('check') == check_id for waiver in ctx.options.get('waivers') or ())


class SourceInventory(PrepareStep):
    id = 'source-inventory'
    title = 'Record the old manager\'s inventory'
    changes = 'writes inventory/source.json'

    def check(self, ctx):
        return ctx.workspace.exists('inventory/source.json')

    def run(self, ctx):
        data = inventory.collect(ctx.data['manager'])
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

    def check(self, ctx):
        return common.maintenance_state(ctx.data['manager']) == 'activated'

    def run(self, ctx):
        manager = ctx.data['manager']
        if not common.local_snapshot_intact(ctx.workspace, ctx.data['snapshot_id']):
            raise UpgradeError('The snapshot is not safe locally; the old manager is not '
                               'frozen.', error_id='snapshot-not-local',
                               hints=['Run prepare again: it downloads the snapshot first.'])
        common.activate_maintenance(manager, timeout=ctx.options.get('timeout'))
        state = _wait_for_maintenance(manager, ctx.options.get('timeout') or 3600,
                                      ctx.logger)
        return {'maintenance': state}


def _wait_for_maintenance(manager, timeout, logger, clock=time.monotonic, sleep=time.sleep):
    """Wait until maintenance mode is 'activated' (it stays 'activating' while executions
    run); raise ``maintenance-not-activated`` after ``timeout`` seconds."""
    deadline = clock() + timeout
    interval = 0.2
    reported = None
    while True:
        answer = manager.get('/maintenance', what='reading maintenance mode') or {}
        state = answer.get('status')
        if state == 'activated':
            logger.info('Maintenance mode is active on %s.', manager.label)
            return state
        remaining = answer.get('remaining_executions') or []
        if remaining and remaining != reported:
            reported = remaining
            logger.info('Maintenance mode is %s: waiting for %d execution(s) to end.',
                        state, len(remaining))
        if clock() >= deadline:
            raise UpgradeError(
                'Maintenance mode on {0} is still "{1}" after {2} s.'.format(
                    manager.label, state, timeout), error_id='maintenance-not-activated',
                hints=['Executions still running keep it "activating": see `cfy '
                       'maintenance-mode status`, then run prepare again.',
                       'The snapshot is safe locally; `cfy maintenance-mode deactivate` '
                       'undoes the freeze.'])
        sleep(interval)
        interval = min(interval * 2, 5.0)


class WriteReport(PrepareStep):
    id = 'write-prepare-report'
    title = 'Write the report'
    changes = 'writes report.json and report.md'

    def run(self, ctx):
        return {}


def prepare_steps(manager, mode, options):
    steps = [CheckSource(), CreateSnapshot(), DownloadSnapshot(), VerifySnapshot(),
             BackupHostFiles(), SourceInventory()]
    if options.get('freeze'):
        steps.append(Freeze())
    steps.append(WriteReport())
    return steps


def snapshot_path(workspace, snapshot_id):
    return workspace.path(os.path.join('snapshot', '{0}.zip'.format(snapshot_id)))
