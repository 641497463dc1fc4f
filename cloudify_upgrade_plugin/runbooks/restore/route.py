"""route-copy: the snapshot copy a 7.0 target's restore route needs (issue 14 item 2).

check-target records in workspace.json what the target will do with the snapshot
(``restore_route``: ``versions.restore_route``'s plan).  When the plan is ``copy``, this
step writes ``snapshot/<id>-route.zip`` beside the original: the same members, copied as
they are, and a ``metadata.json`` that gains the missing schema revisions
(``snapshot/rewrite.py``: CRC-checked, its ``.sha256`` written before it is renamed into
place).  Its id, path, SHA-256 and size go into ``restore_route.copy``; upload-snapshot and
start-restore then upload and restore the copy (``base.restored_snapshot``).  The original
zip is never changed (its SHA-256 is checked before the copy is made).

The copy is uploaded under its own snapshot id, ``<id>-route``: the target's snapshot of the
original id (if an earlier run uploaded it) is never taken for the copy, the target's list
shows which archive was restored, and an upload that succeeded for another id is done again
for this one.  A resumed run uses an existing copy only when it matches its ``.sha256`` and
the SHA-256 recorded in the workspace; a half-written one is never under the final name.
"""
from typing import List, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.journal import DONE_EVENTS, LIFECYCLE_EVENTS
from cloudify_upgrade_plugin.errors import BlockedError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.restore import gates
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep, prepared_snapshot
from cloudify_upgrade_plugin.snapshot import rewrite, transfer

ROUTE_SUFFIX = '-route'
UPLOAD_STEP = 'upload-snapshot'


def route_snapshot_id(snapshot_id: str) -> str:
    """The id the copy is uploaded under (a valid snapshot id when the original is)."""
    return snapshot_id[:versions.MAX_SNAPSHOT_ID_LENGTH - len(ROUTE_SUFFIX)] + ROUTE_SUFFIX


def route_plan(ctx) -> dict:
    """The plan check-target recorded, or (a workspace checked before it was recorded)
    the plan for the target now."""
    recorded = ctx.workspace.meta.get('restore_route')
    if recorded:
        return recorded
    snapshot = prepared_snapshot(ctx.workspace)
    facts = gates.SourceFacts.of_workspace(ctx.workspace, snapshot)
    return gates.route_plan(facts, ctx.target_manager).to_dict()


class RouteCopy(RestoreStep):
    id = 'route-copy'
    title = 'Copy the snapshot with the metadata the target\'s restore route needs (7.0)'
    changes = 'writes snapshot/<id>-route.zip beside the snapshot when a 7.0 target needs ' \
              'it (the original is not changed)'

    def check(self, ctx) -> bool:
        plan = route_plan(ctx)
        if plan.get('action') != 'copy':
            return True
        copy = plan.get('copy')
        if not copy:
            return False
        try:
            digest = transfer.verify_file(ctx.workspace.path(copy['path']))
        except UpgradeError:
            return False
        return digest == copy['sha256']

    def run(self, ctx) -> dict:
        plan = dict(route_plan(ctx))
        if plan.get('action') == 'block':
            raise BlockedError('The snapshot cannot be restored on this target: {0}'.format(
                plan['reason']), error_id='target-restore-route',
                hints=['Nothing was uploaded; restore onto a target that can take it.'])
        workspace = ctx.workspace
        snapshot = prepared_snapshot(workspace)
        original = workspace.path(snapshot['path'])
        if transfer.verify_file(original) != snapshot['sha256']:
            raise UpgradeError('The local snapshot changed since prepare; no copy is made.',
                               error_id='snapshot-hash-mismatch',
                               hints=['Run prepare again for a new upgrade.'])
        copy_id = route_snapshot_id(snapshot['id'])
        relpath = common.snapshot_relpath(copy_id)
        added = plan.get('add') or {}
        result = rewrite.copy_with_metadata(original, workspace.path(relpath), added)
        copy = {'id': copy_id, 'path': relpath, 'sha256': result['sha256'],
                'size': result['size'], 'of': snapshot['id'], 'added': added}
        workspace.update_meta(restore_route=dict(plan, copy=copy))
        get_logger().info('Made %s: a copy of snapshot %s whose metadata.json adds %s (the '
                          'target\'s restore route needs them); it is uploaded and restored '
                          'as snapshot %s.', relpath, snapshot['id'],
                          ', '.join(sorted(added)), copy_id)
        _reopen_upload(workspace, copy_id)
        return {'snapshot_id': copy_id, 'path': relpath, 'sha256': result['sha256'],
                'size': result['size'], 'added': added}


def _reopen_upload(workspace, copy_id):
    """An upload done for another snapshot id (a run from before the copy existed) is
    done again for the copy."""
    journal = workspace.journal
    lifecycle = [e for e in journal.step_entries(UPLOAD_STEP)
                 if e['event'] in LIFECYCLE_EVENTS]
    if not lifecycle or lifecycle[-1]['event'] not in DONE_EVENTS:
        return
    if (lifecycle[-1].get('details') or {}).get('snapshot_id') == copy_id:
        return
    journal.append(UPLOAD_STEP, 'failed', {
        'error_id': 'restore-route-copy', 'reopened_by': RouteCopy.id,
        'message': 'The upload was for another snapshot id; the route copy {0} is uploaded '
                   'instead.'.format(copy_id)})


def explain_restore_failure(reason: str) -> Tuple[str, List[str]]:
    """(more message, hints) for a failed restore whose error is one the route rules know:
    a Kubernetes 7.0.3+ manager refusing a legacy snapshot (behaviour §12.1)."""
    if versions.DISTRIBUTED_REFUSAL not in (reason or ''):
        return '', []
    return (' The target runs on Kubernetes (a "distributed manager"): 7.0.3 and later '
            'refuse every legacy snapshot there, before anything is restored (behaviour §12.1).',
            ['Restore onto a 7.0 manager installed on a host (RPM) instead: start a new '
             'upgrade for it (`cfy upgrade prepare`); nothing was restored on this one.'])
