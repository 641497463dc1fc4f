"""check-target: every check on the target manager, run and reported together.

The checks are registered in ``TARGET_CHECKS`` (their ids are the catalogue ``--waive``
may name, with the modes' own checks and prepare's); the command runs them before the
runner so that a blocking failure stops with exit 3 before anything is uploaded, and
``CheckTarget`` evaluates (and journals the waivers of) the same results.
"""
import os
from typing import List

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, PASS, WARN, CheckOutcome, CheckRegistry, CheckSet, evaluate)
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.runbooks import common, credentials
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep, prepared_snapshot
from cloudify_upgrade_plugin.snapshot import transfer

TARGET_CHECKS = CheckRegistry('target')


class CheckTarget(RestoreStep):
    id = 'check-target'
    title = 'Check the target manager (version, clean, admin, networks, checksum)'

    def run(self, ctx) -> dict:
        checks = ctx.target_checks or target_checks(ctx)
        evaluated = evaluate(checks, ctx.options.waivers,
                             journal=ctx.workspace.journal, step=self.id)
        ctx.workspace.update_meta(target_checks=[c.to_dict() for c in evaluated])
        return {'checks': {c.id: c.status for c in evaluated}}


def target_checks(ctx) -> CheckSet:
    """Every check on the target, run and reported together (a CheckSet)."""
    target = ctx.target_manager
    snapshot = prepared_snapshot(ctx.workspace)
    source_meta = ctx.workspace.meta.get('source') or {}
    policy = credentials.users_policy(ctx)
    checks = CheckSet(catalogue=ctx.check_ids)
    checks.run_check(target_path, source_meta, snapshot, target, ctx.mode.name)
    ctx.mode.add_target_checks(checks, ctx, source_meta, snapshot)
    checks.run_check(host_backups, ctx.workspace, snapshot, ctx.mode, policy)
    checks.run_check(target_ssh, target, host_steps(ctx, snapshot))
    checks.run_check(target_not_clean, target)
    checks.run_check(not_bootstrap_admin, target)
    checks.run_check(agent_networks, snapshot, target)
    checks.run_check(target_licence, target)
    checks.run_check(plugins_python, ctx.workspace, source_meta, snapshot, target)
    checks.run_check(snapshot_checksum, ctx.workspace, snapshot)
    checks.run_check(users_policy, ctx.workspace, snapshot, policy)
    return checks


@TARGET_CHECKS.check('users-policy', BLOCK)
def users_policy(workspace, snapshot, policy) -> CheckOutcome:
    """facts §7.2: users of a pre-4.2 snapshot need a decision before anything changes."""
    if versions.snapshot_carries_passwords(snapshot['snapshot_version']):
        return PASS, 'Users and their passwords travel with a >= 4.2 snapshot.'
    users = [u for u in ((workspace.read_json('inventory/source.json') or {}).get('users')
                         or []) if u != 'admin']
    if not users or policy:
        return PASS, 'Old users: {0}.'.format(
            'none besides the admin' if not users else '--users ' + policy)
    return FAIL, '{0} user(s) of this pre-4.2 snapshot ({1}) cannot log in after the ' \
                 'restore until their passwords work again: choose --users rest-security ' \
                 '(copy the old hash salt and keys), --users reset-passwords, or --users ' \
                 'skip.'.format(len(users), ', '.join(users[:10]))


@TARGET_CHECKS.check('target-path', BLOCK)
def target_path(source_meta, snapshot, target, mode) -> CheckOutcome:
    source = versions.Version.parse(source_meta.get('version') or snapshot['snapshot_version'])
    problems = versions.upgrade_problems(source, target.version, mode)
    if problems:
        return FAIL, ' '.join(message for _, message in problems), \
            {'problems': [pid for pid, _ in problems]}
    return PASS, '{0} -> {1} ({2}) is supported.'.format(source, target.version, mode)


def host_steps(ctx, snapshot) -> List[str]:
    """What this run will do on the target host over SSH (for the target-ssh check)."""
    needs = []
    if credentials.users_policy(ctx) == 'rest-security' and \
            not versions.snapshot_carries_passwords(snapshot['snapshot_version']):
        needs.append('install the old rest-security values')
    return needs + ctx.mode.host_needs(snapshot)


@TARGET_CHECKS.check('host-backups', BLOCK)
def host_backups(workspace, snapshot, mode, policy) -> CheckOutcome:
    """The backups prepare took that this run needs (facts §7.1, §7.2)."""
    missing = []
    if policy == 'rest-security' and \
            not versions.snapshot_carries_passwords(snapshot['snapshot_version']) and \
            not workspace.exists(os.path.join('backups', 'rest-security.conf')):
        missing.append('backups/rest-security.conf (for --users rest-security)')
    missing.extend(mode.missing_backups(workspace, snapshot))
    if missing:
        return FAIL, 'Host backups this upgrade needs are missing from the workspace: {0}. ' \
                     'They can only be taken from the old manager host.'.format(
                         '; '.join(missing))
    return PASS, 'Every host backup this upgrade needs is in the workspace.'


@TARGET_CHECKS.check('target-ssh', BLOCK)
def target_ssh(target, needs) -> CheckOutcome:
    if not needs:
        return PASS, 'No step needs SSH to the target host.'
    if not common.ssh_configured(target):
        return FAIL, 'SSH to the target host is needed to {0}, but its profile has no SSH ' \
                     'settings: `cfy profiles set --ssh-user USER --ssh-key KEY --ssh-port ' \
                     'PORT`.'.format(' and '.join(needs))
    common.ssh_probe(target)
    return PASS, 'SSH to the target host works (to {0}).'.format(' and '.join(needs))


@TARGET_CHECKS.check('target-not-clean', BLOCK)
def target_not_clean(target) -> CheckOutcome:
    """facts §3.6: a v4+ snapshot needs a manager with no blueprints in any tenant."""
    found = []
    for tenant in target.list_tenants() or [None]:
        names = [b['id'] for b in target.list_all('blueprints', tenant=tenant,
                                                  include=['id'], page_size=20)]
        if names:
            found.append('{0}: {1}'.format(tenant or '-', ', '.join(names[:5])))
    if found:
        return FAIL, 'The target manager is not clean (a restore would refuse it, or ' \
                     'with force delete its data): blueprints in {0}.'.format('; '.join(found))
    return PASS, 'The target manager holds no blueprint.'


@TARGET_CHECKS.check('not-bootstrap-admin', BLOCK)
def not_bootstrap_admin(target) -> CheckOutcome:
    """facts §3.6: only the bootstrap admin (user id 0) may restore a v4+ snapshot."""
    try:
        user = target.current_user()
    except UpgradeError as error:
        if error.error_id in ('not-found', 'manager-bad-answer'):
            return WARN, 'This version cannot tell who the current user is.'
        raise
    role = user.get('role')
    if role != 'sys_admin':
        return FAIL, 'The profile\'s user {0} has role {1}; the restore must run as the ' \
                     'manager\'s bootstrap admin.'.format(user.get('username'), role)
    return PASS, 'Connected as {0} (sys_admin); it must be the bootstrap admin account.'.format(
        user.get('username'))


@TARGET_CHECKS.check('agent-networks', BLOCK)
def agent_networks(snapshot, target) -> CheckOutcome:
    """facts §3.6: from 4.2 every agent network in the snapshot must exist on the target."""
    wanted = set(snapshot.get('agent_networks') or [])
    if not wanted:
        return PASS, 'The snapshot names no agent network beyond the default.'
    have = set(_target_networks(target))
    missing = sorted(wanted - have)
    if missing:
        return FAIL, 'Agent networks of the snapshot missing on the target: {0} (the ' \
                     'restore would stop with "Upgrade is not allowed!"). Add them to the ' \
                     'new manager first.'.format(', '.join(missing))
    return PASS, 'Every agent network of the snapshot exists on the target.'


def _target_networks(target):
    networks = set()
    try:
        for manager in target.list_all('managers'):
            networks.update((manager.get('networks') or {}).keys())
    except UpgradeError:
        pass
    if networks:
        return networks
    try:
        context = target.provider_context()
        agent = (((context or {}).get('context') or {}).get('cloudify') or {}).get(
            'cloudify_agent') or {}
        networks.update((agent.get('networks') or {}).keys())
    except UpgradeError:
        pass
    return networks or {'default'}


@TARGET_CHECKS.check('plugins-python', WARN)
def plugins_python(workspace, source_meta, snapshot, target) -> CheckOutcome:
    """manager-behaviour §12.4: wagons built for the old manager's Python do not run on a
    target with another one; from 5.1 this shows only when a workflow first needs the
    plugin (the first heal, scale or uninstall after the cut-over)."""
    source = versions.Version.parse(source_meta.get('version') or snapshot['snapshot_version'])
    old, new = versions.plugin_python(source), versions.plugin_python(target.version)
    inventory = workspace.read_json('inventory/source.json') or {}
    plugins = sorted({name for entry in (inventory.get('tenants') or {}).values()
                      if isinstance(entry, dict)
                      for name in ((entry.get('plugins') or {}).get('names') or [])})
    if old == new or not plugins:
        return PASS, 'No plugin to rebuild ({0}).'.format(
            'both managers run Python {0}'.format(new) if old == new else 'no plugin')
    return WARN, '{0} plugin(s) of the old manager ({1}) are built for Python {2}; the {3} ' \
                 'manager runs Python {4}: upload wagons built for it, then run `cfy ' \
                 'plugins update <blueprint>` for each blueprint, before the first heal, ' \
                 'scale or uninstall.'.format(len(plugins), ', '.join(plugins[:5]) + (
                     ', ...' if len(plugins) > 5 else ''), old, target.version, new), \
        {'plugins': plugins, 'source_python': old, 'target_python': new}


@TARGET_CHECKS.check('target-licence', WARN)
def target_licence(target) -> CheckOutcome:
    """facts §2.5 [U]: a fresh premium 5.x+ probably needs a licence before restore."""
    if not versions.may_need_licence(target.version, target.edition):
        return PASS, 'No licence needed.'
    try:
        target.licence()
    except UpgradeError as error:
        return WARN, 'Could not read the licence ({0}); if the restore is refused, upload ' \
                     'one with `cfy license upload`.'.format(error.message)
    return PASS, 'Licence readable.'


@TARGET_CHECKS.check('snapshot-checksum', BLOCK)
def snapshot_checksum(workspace, snapshot) -> CheckOutcome:
    digest = transfer.verify_file(workspace.path(snapshot['path']))
    if digest != snapshot['sha256']:
        return FAIL, 'The local snapshot changed since prepare (sha256 {0}, expected ' \
                     '{1}).'.format(digest, snapshot['sha256'])
    return PASS, 'The local snapshot still matches its SHA-256.'
