"""Which workspace `cfy upgrade prepare` works in: resume, reuse or a new upgrade (issue 17
item 16).

Without ``--upgrade-id`` prepare looks at the most recent workspace (``latest_of``): when it
is of the same old manager and mode, an unfinished prepare is resumed and a finished one is
reused (said so, nothing redone: no second snapshot); ``--new`` starts another upgrade, and
``supersede`` marks the earlier workspace ``superseded_by`` the new one - never removing it,
since its snapshot may be the only copy.
"""
from typing import Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.workspace import Workspace, list_upgrade_ids
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.files import UnsafePath
from cloudify_upgrade_plugin.log import get_logger

# prepare's step ids (runbooks/prepare.py) this module reads in the journal
WRITE_REPORT = 'write-prepare-report'
VERIFY_SNAPSHOT = 'verify-snapshot'


def existing_workspace(options, latest) -> Optional[Workspace]:
    """The workspace to resume or reuse, or None when prepare starts a new upgrade.

    ``latest``: the most recent workspace, when it is of this old manager and mode.  Its
    unfinished prepare is resumed; a finished one is reused (said so; nothing is redone);
    ``--new`` starts another upgrade instead, and so does a prepare refused for a missing
    patch (once the patch is applied a new snapshot is needed).  ``--upgrade-id`` names
    the workspace explicitly.
    """
    upgrade_id = options.upgrade_id
    if upgrade_id:
        exists = upgrade_id in list_upgrade_ids(options.workdir)
        if exists and options.new:
            raise InputError(
                'Upgrade {0} already exists; --new starts another upgrade.'.format(upgrade_id),
                error_id='workspace-exists',
                hints=['Leave --upgrade-id out (a new id is generated), or name a new one.',
                       'Or leave --new out to go on with upgrade {0}.'.format(upgrade_id)])
        return Workspace.open(upgrade_id, base=options.workdir) if exists else None
    if latest is None or options.new:
        return None
    journal = latest.journal
    if journal.last_event(WRITE_REPORT) == 'succeeded':
        snapshot = latest.meta.get('snapshot') or {}
        get_logger().info(
            'Upgrade %s is already prepared (snapshot %s, %s): reusing it, nothing is redone. '
            'To start another upgrade with a new snapshot, run prepare with --new (this one '
            'is kept).', latest.upgrade_id, snapshot.get('id'),
            latest.meta.get('created_at'))
        return latest
    last = journal.last_entry(VERIFY_SNAPSHOT)
    if last and last['event'] == 'failed' and \
            (last.get('details') or {}).get('error_id') in versions.PATCH_PROBLEM_IDS:
        return None
    get_logger().info('Resuming upgrade %s (its prepare did not finish; pass --new to start '
                      'another one).', latest.upgrade_id)
    return latest


def latest_of(manager, mode, base=None) -> Optional[Workspace]:
    """The most recent workspace (under ``base``: the cfy workdir when None) when it is of
    this old manager and mode, else None."""
    try:
        workspace = Workspace.open(base=base)
    except UnsafePath:
        raise       # never silently start another upgrade next to a tampered one
    except UpgradeError:
        return None
    meta = workspace.meta
    if (meta.get('source') or {}).get('address') != manager.address or \
            meta.get('mode') != mode:
        return None
    return workspace


def supersede(previous: Workspace, workspace: Workspace) -> None:
    """Mark ``previous`` as replaced by the new upgrade ``workspace``.  Nothing of it is
    removed: its snapshot (the only local copy) stays, and ``--upgrade-id`` still opens
    it."""
    try:
        with previous.lock():
            previous.update_meta(superseded_by=workspace.upgrade_id)
    except UpgradeError as error:       # another process works on it: leave it as it is
        get_logger().warning('Upgrade %s could not be marked as superseded (%s).',
                             previous.upgrade_id, error.message)
        return
    get_logger().info('Upgrade %s starts; the earlier upgrade %s is kept as it is '
                      '(workspace, snapshot, journal), marked superseded.',
                      workspace.upgrade_id, previous.upgrade_id)
