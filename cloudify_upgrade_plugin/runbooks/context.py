"""What the steps of prepare, new-host and in-place get: typed contexts, one per command.

Each extends the engine's ``Context`` (workspace, confirmation, logger, current step) with
named fields the command fills in before the runner starts; a step that learns something
later steps need sets a field (``ctx.downloaded``, ``ctx.target_manager`` after a
credential change), never a free-form key.
"""
from dataclasses import dataclass
from typing import Any, FrozenSet, Optional

from cloudify_upgrade_plugin.engine.checks import CheckSet
from cloudify_upgrade_plugin.engine.step import Context
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.options import PrepareOptions, RestoreOptions
from cloudify_upgrade_plugin.runbooks.estimates import Estimate
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreMode
from cloudify_upgrade_plugin.versions import Version


@dataclass(kw_only=True)
class PrepareContext(Context):
    """The steps of `prepare`."""

    options: PrepareOptions
    manager: Manager                       # the old manager
    mode: str                              # new-host | in-place
    target: Optional[Version]              # --target-version
    snapshot_id: str
    checks: Optional[CheckSet] = None      # run before the workspace existed (new upgrade)
    estimate: Optional[Estimate] = None    # the snapshot's estimate those checks used
    downloaded: Optional[dict] = None      # {'sha256', 'identity'} of this run's download


@dataclass(kw_only=True)
class RestoreContext(Context):
    """The steps of `new-host` and `in-place`."""

    options: RestoreOptions
    mode: RestoreMode
    target_manager: Manager                # replaced when its credentials change
    target_profile: str
    source_profile: Optional[str]          # the old manager's profile
    check_ids: FrozenSet[str] = frozenset()   # every id --waive may name
    target_checks: Optional[CheckSet] = None  # run before the runner (blocked: exit 3)
    cluster: Optional[Any] = None          # runbooks.cluster.ClusterTarget of a cluster target
