"""What the restore steps and the two restore modes share.

``RestoreStep`` (a step that says what it ``changes``, for ``plan``), ``prepared_snapshot``
(the snapshot prepare verified, from workspace.json), ``restored_snapshot`` (the archive
that is uploaded and restored: the prepared one, or the copy the target's restore route
needs), the check registries of the restore side (``TARGET_CHECKS``, run by check-target;
``LATE_CHECKS``, the ids steps evaluate after the managers changed) and ``RestoreMode``:
everything new-host (``runbooks/new_host.py``) and in-place (``runbooks/in_place.py``) do
differently around the shared steps.  The base class is what a mode does when it has
nothing special to do.
"""
from typing import List, Optional

from cloudify_upgrade_plugin.engine.checks import BLOCK, CheckRegistry, CheckSet
from cloudify_upgrade_plugin.engine.step import Step
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.options import RestoreOptions
from cloudify_upgrade_plugin.versions import Version


# The checks on the target (check-target); their ids join the --waive catalogue.
TARGET_CHECKS = CheckRegistry('target')
# Checks a step builds after the managers changed (a failure is exit 1, not 3); declared
# here so that --waive accepts them up front.
LATE_CHECKS = CheckRegistry('after the restore')
RECONCILE_CHECK = LATE_CHECKS.declare('reconcile-differences', BLOCK).id
AGENTS_CHECK = LATE_CHECKS.declare('agents-not-eligible', BLOCK).id


class RestoreStep(Step):
    """A step of new-host / in-place; ``changes`` says what it changes (plan, report)."""
    changes = 'nothing'


def prepared_snapshot(workspace: Workspace) -> dict:
    """The snapshot document prepare recorded (``prepare-not-finished`` without one)."""
    snapshot = workspace.meta.get('snapshot')
    if not snapshot:
        raise InputError('Upgrade {0} has no verified snapshot: its prepare did not '
                         'finish.'.format(workspace.upgrade_id),
                         error_id='prepare-not-finished',
                         hints=['Run `cfy upgrade prepare --upgrade-id {0}` first.'.format(
                             workspace.upgrade_id)])
    return snapshot


def restored_snapshot(workspace: Workspace) -> dict:
    """The snapshot document of the archive uploaded and restored: the prepared snapshot,
    or - when the target's restore route needs it (``restore/route.py``) - the copy made
    beside it (its own ``id``, ``path``, ``sha256`` and ``size``; the rest is the
    prepared snapshot's)."""
    snapshot = prepared_snapshot(workspace)
    copy = (workspace.meta.get('restore_route') or {}).get('copy')
    if copy:
        snapshot = dict(snapshot, id=copy['id'], path=copy['path'], sha256=copy['sha256'],
                        size=copy['size'], original_id=snapshot['id'])
    return snapshot


class RestoreMode:
    """How one restore mode differs.  ``ctx`` arguments are ``RestoreContext``s."""

    name: str = ''
    # the mode's own checks on the target (their ids join the --waive catalogue)
    checks = CheckRegistry('restore mode')
    # --users when not given
    default_users_policy: Optional[str] = None

    def target_profile(self, options: RestoreOptions, meta: dict,
                       source_profile: Optional[str]) -> str:
        """The cfy profile of the manager the snapshot is restored on."""
        raise NotImplementedError

    def add_target_checks(self, checks: CheckSet, ctx, source_meta: dict,
                          snapshot: dict) -> None:
        """Run the mode's own target checks into ``checks``."""

    def host_needs(self, snapshot: dict) -> List[str]:
        """What this mode does on the target host over SSH (for the target-ssh check)."""
        return []

    def missing_backups(self, workspace: Workspace, snapshot: dict) -> List[str]:
        """Host backups this mode needs that are not in the workspace."""
        return []

    def steps_after_restore(self, source: Version) -> List[Step]:
        """Steps of this mode between wait-restore and the credentials."""
        return []

    def steps_after_cutover(self, source: Version) -> List[Step]:
        """Steps of this mode between cut-over and install-agents."""
        return []

    def restores_certificates(self, snapshot: dict) -> bool:
        """Whether the restore puts the snapshot's certificates on the target."""
        return False

    def certificate_differences(self, ctx, target) -> Optional[List[str]]:
        """Restored certificates that differ on the host; None when not compared."""
        return None

    def confirm_certificates(self, ctx, target) -> str:
        """After a restore with certificates: 'restored' or 'not checked' (or raise)."""
        return 'not checked'

    def fence(self, ctx, step_id: str) -> bool:
        """Stop the old manager's auto-heal at the cut-over; True when it was stopped."""
        return False

    def fence_plan(self, ctx, meta: dict) -> str:
        """What the cut-over will do about the old manager's auto-heal (said before it)."""
        raise NotImplementedError

    def left_to_do(self) -> List[str]:
        """What the operator still has to do by hand once the agents moved."""
        return []
