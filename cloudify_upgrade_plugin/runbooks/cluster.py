"""Cluster managers in an upgrade (issue 16): layouts shown and recorded, the pinned node, the
cluster checks, the old cluster fenced at the cut-over, the vendor's RPM route in plan.

- **Layouts** (``manager/cluster.py``): ``plan`` and ``prepare`` show the source's, prepare
  records it (``source_layout``, and ``source_pin``: the node the snapshot is taken through);
  new-host / in-place record the target's (``target_layout``).
- **One node per sequence.** On a target cluster of several managers every step that must
  land on one manager (upload, restore, its wait, the credential switch) runs on one node,
  ``cluster_pin`` in workspace.json, chosen here (the profile's node when it answers) and
  journaled by the step ``cluster-pin``; later runs open the target at that address, never
  at the profile's ``manager_ip`` (cfy's own cluster client rewrites it when it fails over,
  behaviour §12.9).  A pinned node that stops answering is ``cluster-node-lost``, never
  followed to another node.  The steps are in ``cluster_steps.py``.
- **Checks** (``CLUSTER_CHECKS``): ``ha4-cluster-restore`` (behaviour §3.5: 4.1-4.6 refuse a
  restore on an HA cluster of more than one node; it cannot be waived), ``cluster-nodes``
  (the pinned node answers), ``cluster-ssh`` (SSH with sudo to every manager node).
- **The old cluster** is fenced as a whole after the cut-over (``cluster_fence.py``; what it
  will do is said here: ``fence_plan``).
- **Routes** (plan): for 5.1+ clusters going to 7.0 the vendor's in-place RPM route
  (``cfy_cluster_manager upgrade``, node order DB -> brokers -> managers; behaviour §12.9)
  is explained beside the snapshot route.
"""
from dataclasses import dataclass
from typing import List, Optional

from cloudify_upgrade_plugin import clock, versions
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, PASS, WARN, CheckOutcome, CheckRegistry, CheckSet)
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.manager.cluster import (
    ALL_IN_ONE, CLUSTER, HA4, Layout, Node, discover_layout, manager_at, node_answers,
    node_ssh_profile)

CLUSTER_CHECKS = CheckRegistry('cluster')
HA4_CHECK = 'ha4-cluster-restore'
# Checks whose failure no --waive can pass: the manager itself refuses what follows.
UNWAIVABLE = frozenset([HA4_CHECK])
LOST_ERRORS = ('manager-unreachable', 'manager-not-detected')
HA4_DOCS = ('the Cloudify 4.4-4.6 documentation, working_with/manager/'
            'high-availability-clusters.md "Upgrading Clusters"')
RPM_DISTRIBUTIONS = ('centos', 'rhel', 'redhat', 'rocky', 'almalinux', 'ol')


@dataclass
class ClusterTarget:
    """The target's layout and, on a cluster of several managers, the node pinned to."""

    layout: Layout
    pin: Optional[Node] = None

    @property
    def snapshot_route(self) -> bool:
        """The snapshot route into a new cluster (stop the others, restore on one, ...)."""
        return self.layout.kind == CLUSTER and self.layout.multi_manager and \
            self.pin is not None

    @property
    def others(self) -> List[Node]:
        return [n for n in self.layout.managers if self.pin is None or n.name != self.pin.name]


# -- showing layouts ---------------------------------------------------------------------

def layout_lines(layout: dict, role: str) -> List[str]:
    """Human lines for a recorded layout (``Layout.to_dict``)."""
    if not layout:
        return []
    managers = layout.get('managers') or []
    if layout.get('kind') == ALL_IN_ONE:
        return ['{0} layout: all-in-one ({1}).'.format(role.capitalize(), ', '.join(
            n.get('address') or n.get('name') or '?' for n in managers))]
    lines = ['{0} layout: {1} ({2})'.format(
        role.capitalize(), '4.x HA cluster (active/passive)' if layout.get('kind') == HA4
        else 'cluster', ', '.join(layout.get('detected_by') or []))]
    for kind, title in (('managers', 'manager'), ('brokers', 'broker'), ('db_nodes', 'DB node')):
        for node in layout.get(kind) or []:
            extra = [value for value in (node.get('role'), node.get('status')) if value]
            lines.append('  {0} {1} at {2}{3}'.format(
                title, node.get('name'), node.get('address'),
                ' ({0})'.format(', '.join(extra)) if extra else ''))
    return lines


def source_section(manager, target) -> dict:
    """What plan and prepare show about the source's layout: ``layout`` always, ``cluster``
    (snapshot node, fence, routes) for clusters."""
    layout = discover_layout(manager)
    section = {'layout': layout.to_dict(), 'cluster': None}
    if layout.is_cluster:
        node = layout.manager(manager.host)
        section['cluster'] = {
            'snapshot_through': {'name': node.name if node else None,
                                 'address': manager.host},
            'fence': fence_plan(layout, manager.version),
            'routes': routes(layout, manager.version, target)}
    return section


def section_lines(section: dict, role: str = 'source') -> List[str]:
    lines = layout_lines(section.get('layout'), role)
    cluster = section.get('cluster')
    if cluster:
        lines.append('  The snapshot is taken through {0} ({1}); at the cut-over: {2}.'.format(
            cluster['snapshot_through']['name'], cluster['snapshot_through']['address'],
            cluster['fence']))
        for route in cluster.get('routes') or []:
            lines.append('  Route {0}: {1}'.format(route['id'], route['summary']))
    return lines


def record_source(workspace, manager, target=None) -> dict:
    """prepare: record the source's layout and the node the snapshot is taken through."""
    meta = workspace.meta
    if meta.get('source_layout'):
        return {'layout': meta['source_layout'], 'cluster': meta.get('source_cluster')}
    section = source_section(manager, target)
    layout = Layout.from_dict(section['layout'])
    node = layout.manager(manager.host)
    workspace.update_meta(source_layout=section['layout'], source_cluster=section['cluster'],
                          source_pin={'name': node.name if node else manager.host,
                                      'address': manager.host} if layout.is_cluster else None)
    return section


def fence_plan(layout: Layout, version) -> str:
    if layout.kind == HA4:
        return 'cloudify-riemann is stopped on every node of the old HA cluster over SSH'
    if not layout.multi_manager:
        return 'the old manager is fenced as an all-in-one manager'
    if versions.maintenance_state_shared(version):
        return 'maintenance mode is activated on the old cluster (one call: {0} keeps it in ' \
               'the shared DB) and checked on each of its {1} managers'.format(
                   version, len(layout.managers))
    return 'maintenance mode is activated on each of the {0} managers of the old cluster ' \
           '({1} keeps it per manager)'.format(len(layout.managers), version)


def routes(layout: Layout, source, target) -> List[dict]:
    """The snapshot route (this plugin) and, for 5.1+ clusters going to 7.0, the vendor's
    in-place RPM route (behaviour §12.9, §12.8)."""
    found = [{'id': 'snapshot', 'summary':
              'this plugin: a snapshot of the old cluster, taken through one manager, is '
              'restored on one manager of a new cluster (the other new managers stopped '
              'meanwhile, then started), the old cluster is fenced, the agents move '
              '(`cfy upgrade prepare`, then `cfy upgrade new-host --to-profile NEW_CLUSTER`).'}]
    source = versions.as_version(source)
    to_7 = target is None or versions.as_version(target).major >= 7
    if layout.kind != CLUSTER or source.base < versions.Version((5, 1, 0)) or not to_7:
        return found
    distributions = {(n.distribution or '').split(' ')[0].lower() for n in layout.managers}
    distributions.discard('')
    rpm = bool(distributions & set(RPM_DISTRIBUTIONS))
    reported = ' (these managers report {0})'.format(', '.join(sorted(distributions))) \
        if distributions else ''
    order = [n.name for n in layout.db_nodes] + [n.name for n in layout.brokers] + \
        [n.name for n in layout.managers]
    found.append({
        'id': 'rpm-in-place', 'rpm_install': rpm if distributions else None,
        'command': 'cfy_cluster_manager upgrade --config-path cfy_cluster_config.yaml '
                   '--upgrade-rpm <cloudify-manager-install 7.0 RPM>',
        'order': ['db', 'broker', 'manager'], 'nodes': list(dict.fromkeys(order)),
        'summary':
            'the vendor\'s route for clusters installed from RPMs{0}: upgrade the nodes where '
            'they stand, one at a time - database nodes first, then brokers, then managers '
            '({1}) - with `cfy_cluster_manager upgrade` (cloudify-cluster-manager, 5.1.0+) '
            'or by hand with `cfy_manager upgrade -c <the node\'s config>` on each node; then '
            '`cfy agents install` once. It keeps the addresses, certificates and '
            'rest-security.conf; this plugin does not run it.'.format(
                reported, ' -> '.join(dict.fromkeys(order)))})
    return found


# -- the target ---------------------------------------------------------------------------

def pinned_address(workspace) -> Optional[str]:
    """The address of the node this upgrade's target is pinned to, once journaled."""
    return (workspace.meta.get('cluster_pin') or {}).get('address')


def attach_target(ctx) -> None:
    """Detect (or read back) the target's layout and, on a cluster of several managers,
    choose the pinned node (``ctx.cluster``; ``ctx.target_manager`` is moved onto it)."""
    workspace, target = ctx.workspace, ctx.target_manager
    meta = workspace.meta
    if meta.get('target_layout'):
        layout = Layout.from_dict(meta['target_layout'], target.profile)
    else:
        layout = discover_layout(target)
        workspace.update_meta(target_layout=layout.to_dict())
    if not layout.is_cluster:
        return
    pin = None
    if layout.kind == CLUSTER and layout.multi_manager:
        pin = _pin(layout, meta.get('cluster_pin'), target)
    ctx.cluster = ClusterTarget(layout, pin)
    if pin is not None and target.host != pin.address:
        ctx.target_manager = manager_at(target, pin.address)


def _pin(layout, recorded, target) -> Node:
    if recorded:
        node = layout.manager(recorded.get('name')) or layout.manager(recorded.get('address'))
        return node or Node('manager', recorded.get('name'), recorded.get('address'))
    here = layout.manager(target.host)
    if here is not None and node_answers(target, here):
        return here
    for node in layout.managers:
        if node_answers(target, node):
            return node
    return here or layout.managers[0]


def pin_record(pin: Node, target) -> dict:
    return {'name': pin.name, 'address': pin.address, 'chosen_at': clock.isoformat(),
            'reason': 'the target profile\'s node' if pin.address == target.host
            else 'the first manager that answered'}


def refuse_unwaivable(waivers) -> None:
    """A --waive naming a check no waiver can pass is bad input (exit 2)."""
    for waiver in waivers or ():
        if getattr(waiver, 'check', None) in UNWAIVABLE:
            raise InputError(
                '--waive {0}: this check cannot be waived: the manager itself refuses the '
                'restore it protects (behaviour §3.5).'.format(waiver.check),
                error_id='waiver-not-allowed',
                hints=['Restore on a single manager, then make the cluster again ({0}).'.format(
                    HA4_DOCS)])


def add_target_checks(checks: CheckSet, ctx) -> None:
    """The cluster checks on the target (none for an all-in-one target)."""
    target = getattr(ctx, 'cluster', None)
    if target is None:
        return
    checks.run_check(ha4_cluster_restore, ctx.target_manager, target.layout)
    if target.snapshot_route:
        checks.run_check(cluster_nodes, ctx.target_manager, target)
        checks.run_check(cluster_ssh, ctx.target_manager, target)


def blocked(error: BlockedError) -> BlockedError:
    """The blocked error's hints, when an unwaivable check is among the failures."""
    failed = set((error.details or {}).get('failed') or [])
    if failed & UNWAIVABLE:
        error.possible_solutions = [
            'A 4.x HA cluster of several managers refuses a snapshot restore: restore on a '
            'single manager (a new one, or this cluster\'s active manager once the others '
            'are removed with `cfy cluster nodes remove`), run `cfy cluster start` on it, '
            'then `cfy cluster join` the others ({0}).'.format(HA4_DOCS),
            '{0} cannot be waived.'.format(', '.join(sorted(failed & UNWAIVABLE)))]
        others = sorted(failed - UNWAIVABLE)
        if others:
            error.possible_solutions.append(
                'Other failed checks may be waived by name: --waive {0} --reason '
                'TEXT.'.format(others[0]))
    return error


@CLUSTER_CHECKS.check(HA4_CHECK, BLOCK)
def ha4_cluster_restore(target, layout) -> CheckOutcome:
    """behaviour §3.5: 4.1-4.6 refuse a restore on an HA cluster of more than one node."""
    if layout.kind != HA4 or not layout.multi_manager:
        return PASS, 'The target is not a 4.x HA cluster of several managers.'
    names = ', '.join('{0} ({1})'.format(n.name, n.role) for n in layout.managers)
    if not versions.refuses_restore_on_multi_node_cluster(target.version):
        return WARN, 'The target is a {0} HA cluster of {1} managers ({2}); the snapshot is ' \
                     'restored on its active manager only: re-join the others afterwards ' \
                     '({3}).'.format(target.version, len(layout.managers), names, HA4_DOCS)
    return FAIL, 'The target is a {0} HA cluster of {1} managers ({2}): {0} refuses a ' \
                 'snapshot restore on a cluster of more than one node ("Action `restore ' \
                 'snapshot` is not available on a cluster with more than one node", ' \
                 'behaviour §3.5), so nothing is uploaded. Restore on a single manager, then ' \
                 'run `cfy cluster start` on it and `cfy cluster join` the others ({3}). This ' \
                 'check cannot be waived.'.format(target.version, len(layout.managers), names,
                                                  HA4_DOCS)


@CLUSTER_CHECKS.check('cluster-nodes', BLOCK)
def cluster_nodes(target, cluster) -> CheckOutcome:
    """The pinned node answers; the others are stopped for the restore and started after."""
    pin = cluster.pin
    if not target.rest_answers()[0]:
        return FAIL, 'Manager {0} ({1}), the node this upgrade is pinned to, does not ' \
                     'answer.'.format(pin.name, pin.address)
    down = [n.name for n in cluster.others if not node_answers(target, n)]
    others = ', '.join(n.name for n in cluster.others)
    if down:
        return WARN, 'Managers {0} do not answer (stopped or down): the restore runs on {1} ' \
                     'alone, and every other manager ({2}) is started with `cfy_manager ' \
                     'start` once it is over.'.format(', '.join(down), pin.name, others)
    return PASS, 'Every manager answers; the snapshot is restored on {0} ({1}) while {2} are ' \
                 'stopped (`cfy_manager stop`), then started again (the vendor\'s 5.1 cluster ' \
                 'upgrade guide).'.format(pin.name, pin.address, others)


@CLUSTER_CHECKS.check('cluster-ssh', BLOCK)
def cluster_ssh(target, cluster) -> CheckOutcome:
    """SSH with sudo to every manager node: cfy_manager stop/start, rest-security.conf."""
    problems = []
    for node in cluster.layout.managers:
        try:
            with open_node_host(target, node) as host:
                host.run(['true'], sudo=True)
        except UpgradeError as error:
            problems.append('{0}: {1}'.format(node.name, error.message))
    if problems:
        return FAIL, 'The snapshot route into a cluster stops, starts and updates every ' \
                     'manager over SSH (with sudo): {0}. Set each node\'s SSH settings: `cfy ' \
                     'profiles set-cluster NODE --ssh-user USER --ssh-key KEY --ssh-port ' \
                     'PORT`.'.format('; '.join(problems))
    return PASS, 'SSH with sudo works on every manager ({0}).'.format(
        ', '.join(n.name for n in cluster.layout.managers))


def open_node_host(manager, node: Node) -> Host:
    """SSH to a manager node: its profile entry's settings, else the profile's own."""
    return Host.from_profile(node_ssh_profile(manager.profile, node.address, node.name))


def node_lost(ctx, error: UpgradeError) -> Optional[UpgradeError]:
    """``cluster-node-lost`` when the pinned node stopped answering, else None."""
    cluster = getattr(ctx, 'cluster', None)
    if cluster is None or cluster.pin is None:
        return None
    status = (error.details or {}).get('status_code')
    if error.error_id not in LOST_ERRORS and not (
            error.error_id == 'manager-request-failed' and status in (502, 503, 504)):
        return None
    target = ctx.target_manager
    if target.rest_answers()[0]:
        return None
    answering = [n.name for n in cluster.others if node_answers(target, n)]
    step = ctx.step.id if ctx.step is not None else 'this step'
    return lost_error(ctx.workspace, cluster.pin.name, cluster.pin.address, error, step,
                      answering)


def lost_error(workspace, name, address, error, step, answering=None,
               profile_address=None) -> UpgradeError:
    meta = workspace.meta
    stopped = meta.get('cluster_stopped') or []
    started = bool(meta.get('restore_execution_id'))
    followed = ''
    if answering:
        followed = ' Managers {0} answer: cfy\'s own cluster client would now send the next ' \
                   'request to one of them; this upgrade does not follow a failover.'.format(
                       ', '.join(answering))
    if profile_address and profile_address != address:
        followed += ' The target profile now names {0} (a cluster client moved it); the ' \
                    'upgrade stays on {1}.'.format(profile_address, address)
    hints = ['Bring {0} back (on its host: `sudo cfy_manager start`, or find why it '
             'stopped), then run the same command again: the upgrade goes on on {0} '
             '({1}).'.format(name, address)]
    if started:
        hints.append('The restore (execution {0}) ran on {1}: it must be finished and checked '
                     'there, never started again on another manager.'.format(
                         meta.get('restore_execution_id'), name))
    else:
        hints.append('If {0} cannot come back, nothing was restored: reinstall the new '
                     'cluster and start again with `cfy upgrade prepare --upgrade-id '
                     'NEW_ID`.'.format(name))
    if stopped:
        hints.append('Managers {0} were stopped by this upgrade; they are started again when '
                     'it goes on (to abandon it: `sudo cfy_manager start` on each).'.format(
                         ', '.join(stopped)))
    return UpgradeError(
        'Manager {0} ({1}), the one node this upgrade\'s upload, restore and credential '
        'switch are pinned to, stopped answering ({2}: {3}). Nothing was sent to another '
        'manager.{4}'.format(name, address, step, error.message, followed),
        error_id='cluster-node-lost', hints=hints,
        details={'node': name, 'address': address, 'step': step,
                 'answering': list(answering or [])})


def open_failure(workspace, error: UpgradeError, profile_address=None) -> UpgradeError:
    """The target could not be opened: ``cluster-node-lost`` when it is pinned to a node."""
    pin = workspace.meta.get('cluster_pin')
    if not pin or error.error_id not in LOST_ERRORS:
        return error
    return lost_error(workspace, pin.get('name'), pin.get('address'), error,
                      'opening the target', profile_address=profile_address)


# -- the result document -------------------------------------------------------------------

def result_section(meta: dict) -> Optional[dict]:
    """The ``cluster`` of the new-host / in-place document (None without a cluster)."""
    target = meta.get('target_layout') or {}
    source = meta.get('source_layout') or {}
    if target.get('kind', ALL_IN_ONE) == ALL_IN_ONE and \
            source.get('kind', ALL_IN_ONE) == ALL_IN_ONE:
        return None
    return {'target_layout': target or None, 'source_layout': source or None,
            'pinned': meta.get('cluster_pin'), 'stopped': meta.get('cluster_stopped') or [],
            'rest_security': meta.get('cluster_rest_security'),
            'verified': meta.get('cluster_verified'),
            'old_cluster_fenced': meta.get('old_cluster_fenced')}


def result_lines(section: Optional[dict]) -> List[str]:
    if not section:
        return []
    lines = []
    pinned = section.get('pinned')
    if pinned:
        lines.append('Cluster: restored on {0} ({1}); managers {2} were stopped for it and '
                     'started again; verified: {3}.'.format(
                         pinned.get('name'), pinned.get('address'),
                         ', '.join(section.get('stopped') or []) or 'none',
                         ', '.join('{0} {1}'.format(name, '/'.join(state.values()))
                                   for name, state in (section.get('verified') or {}).items())
                         or 'not yet'))
    fenced = section.get('old_cluster_fenced')
    if fenced:
        lines.append('Old cluster fenced: {0} ({1}).'.format(fenced.get('how'), ', '.join(
            '{0}: {1}'.format(n, s) for n, s in (fenced.get('nodes') or {}).items())))
    return lines


def left_to_do(meta: dict) -> List[str]:
    """What the operator still has to know about the clusters of this upgrade."""
    fenced = meta.get('old_cluster_fenced') or {}
    if 'maintenance' not in (fenced.get('how') or ''):
        return []
    return ['The old cluster stays in maintenance mode (its fence) until it is shut down; '
            'meanwhile `cfy upgrade verify-heals` cannot list its executions and reports that '
            'as a gap.']
