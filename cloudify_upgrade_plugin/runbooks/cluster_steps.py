"""The snapshot route into a new cluster, as steps (issue 16 items 2 and 3).

The vendor's way (behaviour §12.9; docs.getcloudify.org 5.1 ha_cluster_upgrade.md): stop every
manager of the new cluster but one (`cfy_manager stop`), upload and restore the snapshot on
that one, start the others again (`cfy_manager start`), reinstall the agents.  The restore
writes the snapshot's rest-security.conf on its own node only (behaviour §12.9), so the others
would refuse the restored users: this route makes every manager's file equal to the restored
one first.  Steps, around the shared restore steps (``with_cluster_steps``):

- ``cluster-pin`` (first): journals the node every pinned sequence runs on (``cluster.py``);
- ``cluster-stop-others`` (after check-target): `sudo cfy_manager stop` on every other
  manager, each name recorded in ``cluster_stopped`` *before* it is stopped, so a run killed
  anywhere after this knows which managers to start;
- upload-snapshot, start-restore, wait-restore, restore-ssl, follow-credentials /
  restore-users run wrapped in ``Pinned``: a failure because the pinned node stopped
  answering becomes ``cluster-node-lost`` (never followed to another node), and the restore
  starts only while the other managers are stopped;
- ``cluster-sync-rest-security``: the restored /opt/manager/rest-security.conf (read over
  SSH from the pinned node into memory, never into a local file) is compared by SHA-256 with
  every other manager's and written where it differs (``host/private.py``: private from the
  first byte); a manager already running is restarted (`cfy_manager restart`) to read it;
- ``cluster-start-others``: `sudo cfy_manager start` on each recorded manager, then its REST
  service must answer;
- ``cluster-verify-nodes``: every manager's file has the restored hash and every manager
  accepts the restored admin credentials.

Then reconcile, cut-over, install-agents and finish run as for one manager.
"""
import hashlib
import json
from typing import List

from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host.private import put_private, remote_sha256
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.manager.cluster import node_answers, node_manager
from cloudify_upgrade_plugin.runbooks import cluster
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep

REST_SECURITY = '/opt/manager/rest-security.conf'
REST_SECURITY_OWNER = 'cfyuser'
# The steps of the shared restore that must land on the pinned node.
PINNED_IDS = ('upload-snapshot', 'start-restore', 'wait-restore', 'restore-ssl',
              'follow-credentials', 'restore-users')


def _short(digest):
    return (digest or '')[:16] or None


class Pinned(RestoreStep):
    """A shared restore step run on the pinned node (module docstring)."""

    def __init__(self, inner: RestoreStep):
        self.inner = inner
        self.changes = inner.changes
        super().__init__(id=inner.id, title=inner.title, rerunnable=inner.rerunnable,
                         point_of_no_return=inner.point_of_no_return)

    def _guard(self, ctx, func):
        try:
            return func(ctx)
        except UpgradeError as error:
            lost = cluster.node_lost(ctx, error)
            if lost is not None:
                raise lost from error
            raise

    def check(self, ctx) -> bool:
        return self._guard(ctx, self.inner.check)

    def run(self, ctx):
        if self.id == 'start-restore':
            self._guard(ctx, _others_still_stopped)
        return self._guard(ctx, self.inner.run)

    def verify(self, ctx) -> None:
        return self._guard(ctx, self.inner.verify)


def _register_values(data: bytes) -> None:
    """The file's secret values are masked in every log line from here on."""
    try:
        values = json.loads(data.decode('utf-8'))
    except ValueError:
        return
    for value in (values.values() if isinstance(values, dict) else ()):
        if isinstance(value, str) and len(value) >= 8:
            register_secret(value)


class PinTarget(RestoreStep):
    id = 'cluster-pin'
    title = 'Pin the upload, the restore and the credential switch to one manager of the ' \
            'new cluster'
    changes = 'nothing (records the pinned manager)'

    def run(self, ctx) -> dict:
        pin = ctx.cluster.pin
        recorded = ctx.workspace.meta.get('cluster_pin')
        if not recorded:
            recorded = cluster.pin_record(pin, ctx.target_manager)
            ctx.workspace.update_meta(cluster_pin=recorded)
        get_logger().info('The upgrade is pinned to manager %s (%s) of the new cluster.',
                          recorded['name'], recorded['address'])
        return dict(recorded)


def _stop(ctx, nodes) -> List[str]:
    """`sudo cfy_manager stop` on ``nodes``; every name recorded before its stop."""
    target, timeout = ctx.target_manager, ctx.options.timeout
    stopped = list(ctx.workspace.meta.get('cluster_stopped') or [])
    done = []
    for node in nodes:
        if node.name not in stopped:
            stopped.append(node.name)
            ctx.workspace.update_meta(cluster_stopped=stopped)
        if not node_answers(target, node):
            continue
        get_logger().info('Stopping manager %s (%s): cfy_manager stop.', node.name,
                          node.address)
        with cluster.open_node_host(target, node) as host:
            host.run(['cfy_manager', 'stop'], sudo=True, timeout=timeout)
        if not waits.wait_for_outage(node_manager(target, node), timeout):
            raise UpgradeError('Manager {0} ({1}) still answers after `cfy_manager '
                               'stop`.'.format(node.name, node.address),
                               error_id='cluster-node-not-stopped',
                               hints=['Stop it on its host (`sudo cfy_manager stop`), then '
                                      'run the same command again.'])
        done.append(node.name)
    return done


def _others_still_stopped(ctx) -> None:
    """Before the restore: every other manager stays stopped (one started meanwhile is
    stopped again), so no other management worker can take the restore."""
    running = [n for n in ctx.cluster.others if node_answers(ctx.target_manager, n)]
    if running:
        get_logger().warning('Managers %s answer again; stopping them before the restore.',
                             ', '.join(n.name for n in running))
        _stop(ctx, running)


class StopOtherManagers(RestoreStep):
    id = 'cluster-stop-others'
    title = 'Stop every other manager of the new cluster (cfy_manager stop)'
    changes = 'stops the other managers of the new cluster (started again by ' \
              'cluster-start-others)'

    def check(self, ctx) -> bool:
        recorded = set(ctx.workspace.meta.get('cluster_stopped') or [])
        others = ctx.cluster.others
        return {n.name for n in others} <= recorded and \
            not any(node_answers(ctx.target_manager, n) for n in others)

    def run(self, ctx) -> dict:
        return {'stopped_now': _stop(ctx, ctx.cluster.others),
                'stopped': list(ctx.workspace.meta.get('cluster_stopped') or [])}


class SyncRestSecurity(RestoreStep):
    id = 'cluster-sync-rest-security'
    title = 'Make every manager\'s rest-security.conf equal to the restored one'
    changes = '/opt/manager/rest-security.conf on the other managers (written privately)'

    def run(self, ctx) -> dict:
        target, pin = ctx.target_manager, ctx.cluster.pin
        with cluster.open_node_host(target, pin) as host:
            data = host.read_file(REST_SECURITY, sudo=True)
        _register_values(data)
        wanted = hashlib.sha256(data).hexdigest()
        result = {}
        for node in ctx.cluster.others:
            with cluster.open_node_host(target, node) as host:
                if remote_sha256(host, REST_SECURITY) == wanted:
                    result[node.name] = 'equal'
                    continue
                put_private(host, data, REST_SECURITY, ctx.workspace.upgrade_id,
                            owner=REST_SECURITY_OWNER)
                if remote_sha256(host, REST_SECURITY) != wanted:
                    raise UpgradeError(
                        'rest-security.conf on manager {0} does not match the restored one '
                        'after the copy.'.format(node.name), error_id='cluster-sync-failed',
                        hints=['Check /opt/manager on {0}, then run the same command '
                               'again.'.format(node.address)])
                result[node.name] = 'copied'
                if node_answers(target, node):
                    # a running manager reads the file when its REST service starts
                    host.run(['cfy_manager', 'restart'], sudo=True,
                             timeout=ctx.options.timeout)
                    result[node.name] = 'copied, restarted'
            get_logger().info('rest-security.conf on %s: %s.', node.name, result[node.name])
        ctx.workspace.update_meta(cluster_rest_security={'sha256': _short(wanted),
                                                         'nodes': result})
        return {'sha256': _short(wanted), 'nodes': result}


class StartOtherManagers(RestoreStep):
    id = 'cluster-start-others'
    title = 'Start the other managers again (cfy_manager start)'
    changes = 'starts the managers cluster-stop-others stopped'

    def _stopped(self, ctx):
        names = ctx.workspace.meta.get('cluster_stopped') or []
        return [n for n in ctx.cluster.layout.managers if n.name in names]

    def check(self, ctx) -> bool:
        return all(node_answers(ctx.target_manager, n) for n in self._stopped(ctx))

    def run(self, ctx) -> dict:
        target, timeout = ctx.target_manager, ctx.options.timeout
        started = []
        for node in self._stopped(ctx):
            if not node_answers(target, node):
                get_logger().info('Starting manager %s (%s): cfy_manager start.', node.name,
                                  node.address)
                with cluster.open_node_host(target, node) as host:
                    host.run(['cfy_manager', 'start'], sudo=True, timeout=timeout)
                started.append(node.name)
            waits.wait_for_rest(node_manager(target, node), timeout)
        return {'started': started}


class VerifyClusterNodes(RestoreStep):
    id = 'cluster-verify-nodes'
    title = 'Check that every manager has the restored rest-security.conf and accepts the ' \
            'restored credentials'
    changes = 'nothing (read only)'

    def run(self, ctx) -> dict:
        target, timeout = ctx.target_manager, ctx.options.timeout
        with cluster.open_node_host(target, ctx.cluster.pin) as host:
            wanted = remote_sha256(host, REST_SECURITY)
        problems, result = [], {}
        for node in ctx.cluster.layout.managers:
            with cluster.open_node_host(target, node) as host:
                same = remote_sha256(host, REST_SECURITY) == wanted
                answer = waits.wait_for_rest(node_manager(target, node), timeout)
                if same and not answer['auth_ok'] and node.name != ctx.cluster.pin.name:
                    # the file was copied by a run that stopped before restarting it
                    host.run(['cfy_manager', 'restart'], sudo=True, timeout=timeout)
                    answer = waits.wait_for_rest(node_manager(target, node), timeout)
            result[node.name] = {'rest_security': 'restored' if same else 'differs',
                                 'login': 'accepted' if answer['auth_ok'] else 'refused'}
            if not same or not answer['auth_ok']:
                problems.append('{0} ({1}): rest-security.conf {2}, admin login {3}'.format(
                    node.name, node.address, result[node.name]['rest_security'],
                    result[node.name]['login']))
        ctx.workspace.update_meta(cluster_verified=result)
        if problems:
            raise UpgradeError(
                'Not every manager of the new cluster serves the restored data with the '
                'restored credentials: {0}.'.format('; '.join(problems)),
                error_id='cluster-node-not-restored',
                hints=['Run the same command again: cluster-sync-rest-security is checked '
                       'again on the managers that differ.',
                       'Check the manager\'s REST service (`sudo cfy_manager restart` on '
                       'it).'])
        return {'nodes': result}


def with_cluster_steps(steps: List[RestoreStep], target) -> List[RestoreStep]:
    """The restore steps with the snapshot route into a cluster around them (or unchanged)."""
    if target is None or not target.snapshot_route:
        return steps
    out = [PinTarget()]
    for step in steps:
        if step.id in PINNED_IDS:
            step = Pinned(step)
        if step.id == 'reconcile':
            out.extend([SyncRestSecurity(), StartOtherManagers(), VerifyClusterNodes()])
        out.append(step)
        if step.id == 'check-target':
            out.append(StopOtherManagers())
    return out


def describe() -> List[dict]:
    """What a target cluster of several managers adds (for plan)."""
    return [{'id': step.id, 'title': step.title, 'changes': step.changes}
            for step in (PinTarget(), StopOtherManagers(), SyncRestSecurity(),
                         StartOtherManagers(), VerifyClusterNodes())]
