"""The old cluster fenced as a whole after the cut-over (issue 16 item 4).

``old_manager_nodes(workspace)`` lists the manager nodes of the old cluster that a cut-over
fences (every manager of a cluster source recorded by prepare; [] for an all-in-one source).
``fence_old_cluster`` (called by the fence-old-manager step after ``runbooks/fence.py`` fenced
the profile's manager, honouring ``--no-fence-old-manager``) puts every manager of a 5.x+
cluster in maintenance mode - one
call through the shared DB from 5.1.1 (then checked on each manager), one call per manager
before (``versions.maintenance_state_shared``; cloudify-manager commit 868e6ba78) - and stops
cloudify-riemann on every node of a 4.x HA cluster (called by the cut-over step, honouring
``--no-stop-old-healing``; behaviour §7.4: a standby may become the
active manager and heal).  Unreachable managers of a 5.1.1+ cluster are accepted (the DB row
applies when they start); before 5.1.1 they fail the step.
"""
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.manager.cluster import HA4, Layout, Node, node_manager
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.cluster import LOST_ERRORS, open_node_host

RIEMANN_UNIT = 'cloudify-riemann'


def old_manager_nodes(workspace) -> List[Node]:
    """The manager nodes of the old cluster a cut-over fences (every manager of a cluster
    source; [] for an all-in-one source)."""
    recorded = workspace.meta.get('source_layout')
    if not recorded:
        return []
    layout = Layout.from_dict(recorded)
    if not layout.is_cluster or not layout.multi_manager:
        return []
    return list(layout.managers)


def fence_old_cluster(ctx, step_id: str, ha4: bool) -> Optional[dict]:
    """Fence every manager of an old cluster (module docstring): a 4.x HA cluster when
    ``ha4``, a 5.x+ one otherwise; None for other sources."""
    nodes = old_manager_nodes(ctx.workspace)
    if not nodes or ctx.mode.name == versions.MODE_IN_PLACE:
        return None         # in place, the old cluster is gone: its addresses are the new one
    meta = ctx.workspace.meta
    kind = (meta.get('source_layout') or {}).get('kind')
    address = (meta.get('source_pin') or {}).get('address')
    if (kind == HA4) != ha4:
        return None         # the other step's
    if kind == HA4 and ctx.options.no_stop_old_healing:
        return None         # the mode's fence journaled the waiver
    if kind != HA4 and ctx.options.no_fence_old_manager:
        return None         # runbooks/fence.py journaled the waiver
    old = common.open_manager(ctx.source_profile, role='old', host=address)
    if kind == HA4:
        result = _stop_riemann_everywhere(old, nodes)
    else:
        result = _maintenance_everywhere(old, nodes, ctx.options.timeout)
    ctx.workspace.update_meta(old_cluster_fenced=result)
    get_logger().info('The old cluster is fenced: %s.', result['how'])
    return result


def _maintenance_everywhere(old, nodes, timeout) -> dict:
    shared = versions.maintenance_state_shared(old.version)
    logger = get_logger()
    if shared and old.maintenance_state() != 'activated':
        old.activate_maintenance()
        waits.wait_for_maintenance(old, timeout)
    states = {}
    for node in nodes:
        manager = node_manager(old, node)
        try:
            state = manager.maintenance_state()
            if not shared and state != 'activated':
                manager.activate_maintenance()
                state = waits.wait_for_maintenance(manager, timeout)
        except UpgradeError as error:
            if error.error_id not in LOST_ERRORS:
                raise
            state = 'unreachable'
        states[node.name] = state
    unfenced = [name for name, state in states.items() if state != 'activated' and
                not (shared and state == 'unreachable')]
    if unfenced:
        raise UpgradeError(
            'Maintenance mode could not be activated on managers {0} of the old cluster '
            '({1}).'.format(', '.join(unfenced), ', '.join(
                '{0}: {1}'.format(n, s) for n, s in states.items())),
            error_id='old-cluster-not-fenced',
            hints=['Activate it on each of them (`cfy maintenance-mode activate` against '
                   'that manager), then run the same command again.'])
    for name, state in states.items():
        if state == 'unreachable':
            logger.warning('Old manager %s does not answer; maintenance mode is kept in the '
                           'shared DB, so it is in force when %s starts.', name, name)
    return {'how': 'maintenance mode on every manager', 'shared_db': shared,
            'nodes': states}


def _stop_riemann_everywhere(old, nodes) -> dict:
    """behaviour §7.4: auto-heal runs where riemann runs; a standby may become active."""
    states = {}
    for node in nodes:
        with open_node_host(old, node) as host:
            host.systemctl('stop', RIEMANN_UNIT)
            host.systemctl('disable', RIEMANN_UNIT)
            if host.is_active(RIEMANN_UNIT):
                raise UpgradeError('cloudify-riemann is still active on old manager {0} '
                                   '({1}).'.format(node.name, node.address),
                                   error_id='healing-not-fenced',
                                   hints=['Stop it on that host: `sudo systemctl stop '
                                          'cloudify-riemann`, then run the same command '
                                          'again.'])
        states[node.name] = 'riemann stopped'
    return {'how': 'cloudify-riemann stopped on every node', 'nodes': states}
