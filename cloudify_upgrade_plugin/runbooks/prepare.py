"""`plan` and `prepare`: everything before the old manager is touched (issue 5).

``plan`` runs the source checks that need no snapshot and lists the steps of the chosen
mode; it sends only read requests.  ``prepare`` runs the same checks, then - journaled and
resumable - creates the snapshot, downloads and verifies it, takes the host backups the
version needs, records the source inventory, optionally freezes the old manager, and
prints the next command.  Nothing it does is irreversible.
"""
import os

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import evaluate
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, Runbook, Step
from cloudify_upgrade_plugin.engine.workspace import Workspace, list_upgrade_ids
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.runbooks import common, inventory
from cloudify_upgrade_plugin.runbooks.source_checks import (
    host_backups_needed, patch_check_from_snapshot, source_checks)


# -- plan -------------------------------------------------------------------------------

def plan(options):
    """`cfy upgrade plan`: checks and the ordered steps; read only."""
    mode = options['mode']
    manager = common.open_manager(options.get('from_profile'), role='source')
    target = common.parse_target(options.get('target_version'))
    checks = source_checks(manager, mode, target, options)
    evaluated = _evaluate_or_report(checks, options, manager, mode, plan_only=True)
    document = _base_document(manager, mode, evaluated)
    document['upgrade_id'] = None
    document['target_version'] = str(target) if target else None
    document['steps'] = describe_steps(manager, mode, target, options)
    document['next'] = 'cfy upgrade prepare --mode {0}{1}'.format(
        mode, ' --target-version {0}'.format(target) if target else '')
    common.render(document, _plan_lines(document))
    return document


def describe_steps(manager, mode, target, options):
    """The steps prepare and the chosen mode will run, with what each changes."""
    from cloudify_upgrade_plugin.runbooks import restore
    steps = [{'command': 'prepare', 'id': step.id, 'title': step.title,
              'changes': step.changes}
             for step in prepare_steps(manager, mode, options)]
    steps.extend({'command': mode, 'id': step['id'], 'title': step['title'],
                  'changes': step['changes']}
                 for step in restore.describe(mode, manager.version, target))
    return steps


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
    workspace = _existing_workspace(options, manager)
    precomputed = None
    if workspace is None:
        # a new upgrade: nothing, not even the workspace, exists until the checks pass
        precomputed = source_checks(manager, mode, target, options)
        _evaluate_or_report(precomputed, options, manager, mode, plan_only=False)
        workspace = Workspace.create(options.get('upgrade_id'), mode=mode)
    snapshot_id = options.get('snapshot_id') or \
        workspace.meta.get('snapshot', {}).get('id') or default_snapshot_id(workspace)
    problem = versions.snapshot_id_problem(snapshot_id)
    if problem:
        raise InputError('--snapshot-id {0}: {1}'.format(snapshot_id, problem),
                         error_id='bad-snapshot-id',
                         hints=['Use a letter first, then letters, digits, ".", "_" or "-" '
                                '(at most 256 characters).'])
    fingerprint = {'source': {'address': manager.address, 'version': str(manager.version)},
                   'mode': mode, 'snapshot_id': snapshot_id}
    ctx = Context(workspace, options=options)
    ctx.data.update(manager=manager, target=target, mode=mode, snapshot_id=snapshot_id,
                    checks=precomputed)
    workspace.update_meta(mode=mode, source=common.manager_meta(manager),
                          target_version=str(target) if target else None)
    runbook = Runbook('prepare', prepare_steps(manager, mode, options))
    get_logger().info('Upgrade %s: preparing %s %s for a %s upgrade',
                      workspace.upgrade_id, manager.version, manager.edition, mode)
    try:
        Runner(workspace, runbook, fingerprint).run(ctx)
    except UpgradeError as error:
        document = _document(workspace, manager, mode, ctx)
        document['error'] = error.to_dict()
        document.update(getattr(error, 'document', None) or {})
        error.document = document
        write_report(workspace, document)
        raise
    document = _document(workspace, manager, mode, ctx)
    write_report(workspace, document)
    common.render(document, _prepare_lines(document))
    return document


def default_snapshot_id(workspace):
    """A valid snapshot id derived from the upgrade id (letter first)."""
    candidate = workspace.upgrade_id.replace(':', '-')
    if not candidate[:1].isalpha():
        candidate = 'upg-' + candidate
    return candidate[:256]


def _existing_workspace(options, manager):
    """The workspace to resume, or None when prepare starts a new upgrade."""
    upgrade_id = options.get('upgrade_id')
    if upgrade_id:
        return Workspace.open(upgrade_id) if upgrade_id in list_upgrade_ids() else None
    resumable = _unfinished_prepare(manager)
    if resumable is not None:
        get_logger().info('Resuming upgrade %s (its prepare did not finish; pass '
                          '--upgrade-id NEW to start another one).', resumable.upgrade_id)
    return resumable


def _unfinished_prepare(manager):
    """The most recent workspace of this source whose prepare has not finished, if any."""
    try:
        workspace = Workspace.open()
    except UpgradeError:
        return None
    meta = workspace.meta
    if (meta.get('source') or {}).get('address') != manager.address:
        return None
    state = workspace.journal.state()
    if state.get('write-prepare-report') == 'succeeded':
        return None
    return workspace


def _evaluate_or_report(checks, options, manager, mode, plan_only, journal=None):
    try:
        return evaluate(checks, options.get('waivers') or (), journal=journal)
    except UpgradeError as error:
        document = _base_document(manager, mode, [])
        document.update(getattr(error, 'document', None) or {})
        error.document = document
        raise


def _base_document(manager, mode, checks):
    return {'mode': mode,
            'source': {'version': str(manager.version), 'edition': manager.edition,
                       'api_prefix': manager.api_prefix,
                       'address': manager.address},
            'checks': [check.to_dict() for check in checks]}


def _document(workspace, manager, mode, ctx):
    meta = workspace.meta
    document = _base_document(manager, mode, [])
    document['upgrade_id'] = workspace.upgrade_id
    document['checks'] = meta.get('checks') or []
    document['steps'] = common.step_states(workspace)
    snapshot = meta.get('snapshot')
    if snapshot:
        document['snapshot'] = snapshot
    document['backups'] = meta.get('backups') or []
    document['inventory'] = 'inventory/source.json' if workspace.exists(
        'inventory/source.json') else None
    document['next'] = next_command(workspace.upgrade_id, mode, manager.version)
    document['instructions'] = teardown_instructions(manager.version) \
        if mode == versions.MODE_IN_PLACE else []
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
    lines.extend(common.check_lines(document['checks']))
    for line in document.get('instructions') or []:
        lines.append('* ' + line)
    lines.append('Next: {0}'.format(document['next']))
    return lines


# -- the steps --------------------------------------------------------------------------

class PrepareStep(Step):
    """A prepare step; ``changes`` says what it changes (for plan and the report)."""
    changes = 'nothing'


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
        return {'sha256': result['sha256'], 'size': result['size']}


class VerifySnapshot(PrepareStep):
    id = 'verify-snapshot'
    title = 'Verify the snapshot archive and its version'
    changes = 'nothing (reads the local zip)'

    def run(self, ctx):
        manager = ctx.data['manager']
        snapshot = common.inspect_local_snapshot(ctx.workspace, ctx.data['snapshot_id'])
        check = patch_check_from_snapshot(manager.version, snapshot['snapshot_version'])
        evaluate([check], ctx.options.get('waivers') or (), journal=ctx.workspace.journal,
                 known_ids=common.all_check_ids(), step=self.id)
        ctx.workspace.update_meta(snapshot=snapshot)
        return {'snapshot_version': snapshot['snapshot_version'],
                'sha256': snapshot['sha256']}


class BackupHostFiles(PrepareStep):
    id = 'backup-host-files'
    title = 'Back up rest-security.conf and /etc/cloudify/ssl over SSH'
    changes = 'copies files from the old manager host into backups/'

    def check(self, ctx):
        return not host_backups_needed(ctx.data['manager'], ctx.data['mode'], ctx.options)

    def run(self, ctx):
        needed = host_backups_needed(ctx.data['manager'], ctx.data['mode'], ctx.options)
        backups = common.backup_host_files(ctx.data['manager'], ctx.workspace, needed)
        ctx.workspace.update_meta(backups=backups)
        return {'backups': [backup['kind'] for backup in backups]}


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

    def run(self, ctx):
        common.activate_maintenance(ctx.data['manager'], timeout=ctx.options.get('timeout'))
        return {'maintenance': 'activated'}


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
