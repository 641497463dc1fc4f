"""``--ignore-plugin-failure``: which targets take it, and which deployments it skipped.

behaviour §12.4: 4.5.0-5.0.x targets install the snapshot's plugins into every deployment's
environment during the restore, and one deployment whose plugins do not install (a wagon
built for another platform or Python) fails the whole restore unless the restore body says
``ignore_plugin_failure`` (``versions.has_ignore_plugin_failure``).  The restore then logs
a warning for each deployment it skipped (cloudify-manager@<tag>
``workflows/cloudify_system_workflows/snapshots/snapshot_restore.py``):

- 4.5.5-5.0.x (``_get_and_execute_task_graph``): "Failed to install plugins for deployment
  `<id>` under tenant `<tenant>`.  Proceeding since `ignore_plugin_failure` flag was used."
  The deployment is restored without its plugins (they must be installed by hand).
- 4.5.0-4.5.1 (``_restore_deployment_envs``): "Failed to create deployment: <id>,..." after
  the INFO line "Restoring deployment environments for <tenant>"; the deployment is then
  deleted ("Removing failed deployment <id> footprints",
  ``versions.ignore_plugin_failure_removes_deployments``), so reconcile reports it missing.

``record_skipped`` reads those lines from the restore execution's logs once the restore is
over (never while a 5.0.5-6.1 target swaps its database, behaviour §12.7), keeps them in
workspace.json (``restore_skipped_deployments``) for the output and the report, and warns.
"""
import re
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger

_KEPT = re.compile(r'Failed to install plugins for deployment `([^`]+)` under tenant '
                   r'`([^`]+)`')
_REMOVED = re.compile(r'Failed to create deployment: ([^,\s]+)\s*,')
_TENANT = re.compile(r'Restoring deployment environments for (\S+)')
_MAX_PAGES = 50


def validate_option(options, target) -> None:
    """``--ignore-plugin-failure`` on a target that does not read it: exit 2, before
    anything changed."""
    if not getattr(options, 'ignore_plugin_failure', False) or \
            versions.has_ignore_plugin_failure(target.version):
        return
    raise InputError(
        '--ignore-plugin-failure is only for {0} targets; {1} is {2}.'.format(
            versions.IGNORE_PLUGIN_FAILURE_RANGE, target.label, target.version),
        error_id='ignore-plugin-failure-unsupported',
        hints=['Drop --ignore-plugin-failure: 5.1+ targets install plugins only when a '
               'workflow needs them, and targets before 4.5 have no such switch.'])


def skipped_from_logs(records: List[dict]) -> List[dict]:
    """[{'deployment', 'tenant', 'removed'}] from the restore's log records, in order."""
    found = []
    tenant = None
    for record in records:
        message = record.get('message')
        if isinstance(message, dict):
            message = message.get('text')
        message = str(message or '')
        match = _TENANT.search(message)
        if match:
            tenant = match.group(1).rstrip('.')
            continue
        match = _KEPT.search(message)
        if match:
            found.append({'deployment': match.group(1), 'tenant': match.group(2),
                          'removed': False})
            continue
        match = _REMOVED.search(message)
        if match:
            found.append({'deployment': match.group(1), 'tenant': tenant, 'removed': True})
    return found


def read_skipped(manager, execution_id: str) -> Optional[List[dict]]:
    """The deployments the restore execution skipped, or None when its logs cannot be
    read."""
    records = []
    offset = 0
    try:
        for _ in range(_MAX_PAGES):
            items, total = manager.events(execution_id, offset=offset, size=1000,
                                          logs_of_levels=['info', 'warning'])
            records.extend(items)
            offset += len(items)
            if not items or total is None or offset >= int(total):
                break
    except UpgradeError as error:
        get_logger().warning('The logs of restore execution %s cannot be read (%s): which '
                             'deployments --ignore-plugin-failure skipped is unknown.',
                             execution_id, error.message)
        return None
    return skipped_from_logs(records)


def record_skipped(ctx, target, execution_id: str) -> Optional[List[dict]]:
    """Read, keep (workspace.json ``restore_skipped_deployments``) and report what the
    restore skipped; a resumed run keeps what an earlier one read."""
    recorded = ctx.workspace.meta.get('restore_skipped_deployments')
    if recorded is not None:
        return recorded
    skipped = read_skipped(target, execution_id)
    if skipped is None:
        return None
    ctx.workspace.update_meta(restore_skipped_deployments=skipped)
    logger = get_logger()
    if not skipped:
        logger.info('--ignore-plugin-failure: the restore skipped no deployment.')
    for item in skipped:
        logger.warning('--ignore-plugin-failure: deployment %s (tenant %s) %s.',
                       item['deployment'], item['tenant'] or 'unknown',
                       'was REMOVED by the restore: its plugins did not install'
                       if item['removed'] else 'was restored WITHOUT its plugins: install '
                       'them on the new manager before running its workflows')
    return skipped


def left_to_do(skipped: Optional[List[dict]]) -> List[str]:
    """What the operator must do about the deployments the restore skipped."""
    lines = []
    for item in skipped or []:
        where = 'deployment {0} (tenant {1})'.format(item['deployment'],
                                                     item.get('tenant') or 'unknown')
        if item.get('removed'):
            lines.append('Recreate {0} on the new manager: the restore removed it because '
                         'its plugins did not install (--ignore-plugin-failure).'.format(where))
        else:
            lines.append('Install the plugins of {0} on the new manager: the restore '
                         'restored it without them (--ignore-plugin-failure).'.format(where))
    return lines


def restore_failure_hints(target, error_text: str) -> List[str]:
    """A hint for a restore that failed on a plugin, where --ignore-plugin-failure helps."""
    text = str(error_text or '')
    if 'install_plugins' not in text and 'deployment environments were not' not in text:
        return []
    if not versions.has_ignore_plugin_failure(target.version):
        return []
    return ['A deployment\'s plugins did not install on the new manager. '
            'Reinstall it, then run the same command with --ignore-plugin-failure to '
            'restore the other deployments and report the skipped ones.']
