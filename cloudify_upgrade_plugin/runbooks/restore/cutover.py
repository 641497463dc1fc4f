"""After the restore: credentials, reconciliation, the cut-over, agents, the active profile.

follow-credentials / restore-users (``runbooks/credentials.py``), reconcile (the restored
data against the source inventory), cut-over (the point of no return: the mode fences the
old manager's auto-heal, the time is recorded for verify-heals), fence-old-manager
(new-host from 5.x and later: maintenance mode, 5.2.x schedules; ``runbooks/fence.py``),
install-agents (``runbooks/agents.py``: moved, verified) and finish (the target becomes the
active cfy profile).
"""
from cloudify_cli import env

from cloudify_upgrade_plugin import clock
from cloudify_upgrade_plugin.engine.checks import BLOCK, FAIL, PASS, Check
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.manager import profiles
from cloudify_upgrade_plugin.runbooks import (
    agents, cluster_fence, common, credentials, fence, inventory, old_users, reconcile)
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep


class FollowCredentials(RestoreStep):
    id = 'follow-credentials'
    title = 'Follow the admin credential change (the source admin\'s password now works)'
    changes = 'updates the target profile\'s password'

    def run(self, ctx) -> dict:
        target, changed = credentials.follow(ctx)
        ctx.target_manager = target
        return {'profile_updated': changed}


class RestoreUsers(RestoreStep):
    id = 'restore-users'
    title = 'Restore old users (rest-security, reset-passwords or skip)'
    changes = 'rest-security.conf on the target host, or user passwords'

    def run(self, ctx) -> dict:
        return old_users.restore_users(ctx)


class Reconcile(RestoreStep):
    id = 'reconcile'
    title = 'Compare the restored data with the source inventory'
    changes = 'writes inventory/target.json'

    def run(self, ctx) -> dict:
        source = ctx.workspace.read_json('inventory/source.json')
        if source is None:
            raise InputError('inventory/source.json is missing from upgrade {0}.'.format(
                ctx.workspace.upgrade_id), error_id='prepare-not-finished',
                hints=['Run prepare again for this upgrade id.'])
        target = inventory.collect(ctx.target_manager)
        ctx.workspace.makedirs('inventory')
        ctx.workspace.write_json('inventory/target.json', target)
        result = reconcile.compare(source, target)
        diffs = result['differences']
        ctx.workspace.update_meta(reconciliation=result)
        if diffs:
            for line in reconcile.table_lines(result):
                ctx.logger.info(line)
            check = Check('reconcile-differences', BLOCK, FAIL,
                          '{0} difference(s) between the source and the restored target: '
                          '{1}'.format(len(diffs), '; '.join(
                              reconcile.difference_lines(result))[:2000]))
        else:
            check = Check('reconcile-differences', BLOCK, PASS, 'The target holds every '
                          'item of the source inventory.')
        common.evaluate_late([check], ctx, self.id, ['reconcile-differences'])
        return {'differences': len(diffs), 'expected': len(result['expected']),
                'attention': len(result['attention'])}


class CutOver(RestoreStep):
    id = 'cut-over'
    title = 'Point of no return: record the cut-over, fence the old manager\'s auto-heal'
    changes = 'stops cloudify-riemann on the old manager (3.x/4.x new-host) and on every ' \
              'node of a 4.x HA cluster; from here the old manager is fenced and the agents ' \
              'move'
    point_of_no_return = True

    def run(self, ctx) -> dict:
        meta = ctx.workspace.meta
        fenced = ctx.mode.fence(ctx, self.id)
        cluster_fence.fence_old_cluster(ctx, self.id, ha4=True)   # every node of a 4.x HA one
        # a run killed inside this step already recorded one: keep the earliest (the
        # widest window for verify-heals)
        cutover_at = meta.get('cutover_at') or clock.isoformat()
        ctx.workspace.update_meta(cutover_at=cutover_at, healing_fenced=fenced)
        return {'cutover_at': cutover_at, 'healing_fenced': fenced}


class FenceOldManager(RestoreStep):
    id = 'fence-old-manager'
    title = 'Fence the old manager: maintenance mode (5.2.x: its schedules disabled first)'
    changes = 'disables the enabled execution schedules of a 5.2.x old manager and puts ' \
              'the old manager (every manager of an old cluster) in maintenance mode ' \
              '(undo: the commands in the report)'

    def run(self, ctx) -> dict:
        result = fence.fence(ctx, self.id)
        cluster = cluster_fence.fence_old_cluster(ctx, self.id, ha4=False)  # every manager
        if cluster:
            result = dict(result or {}, old_cluster=cluster['how'])
        return result


class InstallAgents(RestoreStep):
    id = 'install-agents'
    title = 'Install new agents in every tenant and verify them'
    changes = 'moves every agent installed by the manager (init_script, plugin, remote) ' \
              'to the target manager'

    def run(self, ctx) -> dict:
        summary = agents.install_all(ctx)
        return {'deployments': summary['deployments'], 'succeeded': summary['succeeded'],
                'failed': len(summary['failed']), 'hosts_moved': summary['hosts_moved'],
                'not_moved': len(summary['not_moved'])}


class Finish(RestoreStep):
    id = 'finish'
    title = 'Make the target the active profile'
    changes = 'the active cfy profile'

    def run(self, ctx) -> dict:
        name = ctx.target_profile
        if profiles.explicit_settings(name) is not None:
            return {'active_profile': None}     # no cfy profile involved (issue 19)
        env.set_active_profile(name)
        return {'active_profile': name}
