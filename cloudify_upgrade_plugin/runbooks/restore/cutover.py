"""After the restore: credentials, reconciliation, the cut-over, agents, the active profile.

follow-credentials / restore-users (``runbooks/credentials.py``), reconcile (the restored
data against the source inventory), cut-over (the point of no return: the mode fences the
old manager's auto-heal, the time is recorded for verify-heals), install-agents
(``runbooks/agents.py``) and finish (the target becomes the active cfy profile).
"""
import json

from cloudify_cli import env

from cloudify_upgrade_plugin import clock
from cloudify_upgrade_plugin.engine.checks import BLOCK, FAIL, PASS, Check
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.manager import profiles
from cloudify_upgrade_plugin.runbooks import agents, common, credentials, inventory
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
        return credentials.restore_users(ctx)


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
        diffs = inventory.differences(source, target)
        ctx.workspace.update_meta(reconciliation={'ok': not diffs, 'differences': diffs})
        if diffs:
            check = Check('reconcile-differences', BLOCK, FAIL,
                          '{0} difference(s) between the source and the restored target: '
                          '{1}'.format(len(diffs), json.dumps(diffs)[:2000]))
        else:
            check = Check('reconcile-differences', BLOCK, PASS, 'The target holds every '
                          'item of the source inventory.')
        common.evaluate_late([check], ctx, self.id, ['reconcile-differences'])
        return {'differences': len(diffs)}


class CutOver(RestoreStep):
    id = 'cut-over'
    title = 'Point of no return: fence the old manager\'s auto-heal, record the cut-over'
    changes = 'stops cloudify-riemann on the old manager (3.x/4.x new-host); from here ' \
              'agents move'
    point_of_no_return = True

    def run(self, ctx) -> dict:
        meta = ctx.workspace.meta
        fenced = ctx.mode.fence(ctx, self.id)
        # a run killed inside this step already recorded one: keep the earliest (the
        # widest window for verify-heals)
        cutover_at = meta.get('cutover_at') or clock.isoformat()
        ctx.workspace.update_meta(cutover_at=cutover_at, healing_fenced=fenced)
        return {'cutover_at': cutover_at, 'healing_fenced': fenced}


class InstallAgents(RestoreStep):
    id = 'install-agents'
    title = 'Install new agents in every tenant'
    changes = 'moves every agent to the target manager'

    def run(self, ctx) -> dict:
        summary = agents.install_all(ctx)
        return {'deployments': summary['deployments'], 'succeeded': summary['succeeded'],
                'failed': len(summary['failed'])}


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
