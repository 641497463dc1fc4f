"""check-target: every check on the target manager, run and reported together.

The checks are registered in ``TARGET_CHECKS`` (``base.py``; their ids are the catalogue
``--waive`` may name, with the modes' own checks, the late ones and prepare's); the command
runs them before the runner so that a blocking failure stops with exit 3 before anything
is uploaded, and ``CheckTarget`` evaluates (and journals the waivers of) the same results
and records the restore route (``gates.py``, ``route.py``).  The licence check runs first:
when the target's licence gate is closed, the checks that read what the gate refuses are
reported as not checked rather than as failures of their own.  ``plan_target_checks`` is
the read-only subset ``plan --to-profile`` runs before any snapshot exists.
"""
import os
import re
import zipfile
from typing import List

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, PASS, WARN, Check, CheckOutcome, CheckSet, evaluate)
from cloudify_upgrade_plugin.engine.workspace import Workspace, list_upgrade_ids, upgrades_dir
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import restore_wait
from cloudify_upgrade_plugin.runbooks import common, estimates, old_users
from cloudify_upgrade_plugin.runbooks.restore import gates
from cloudify_upgrade_plugin.runbooks.restore.base import (
    TARGET_CHECKS, RestoreStep, prepared_snapshot)
from cloudify_upgrade_plugin.snapshot import transfer

__all__ = ['TARGET_CHECKS', 'CheckTarget', 'target_checks', 'plan_target_checks']
UNLICENSED = 'manager-unlicensed'


class CheckTarget(RestoreStep):
    id = 'check-target'
    title = 'Check the target manager (licence, version, route, clean, admin, networks, ' \
            'checksum)'

    def run(self, ctx) -> dict:
        checks = ctx.target_checks or target_checks(ctx)
        evaluated = evaluate(checks, ctx.options.waivers,
                             journal=ctx.workspace.journal, step=self.id)
        route = next((c.details for c in evaluated if c.id == gates.target_restore_route.id),
                     None)
        ctx.workspace.update_meta(target_checks=[c.to_dict() for c in evaluated],
                                  restore_route=route)
        return {'checks': {c.id: c.status for c in evaluated},
                'route': route and {k: route[k] for k in ('route', 'action', 'add')}}


class _Gated:
    """Runs checks into a CheckSet; once the licence gate is known closed, the checks that
    read what the gate refuses are reported as not checked (WARN), never as failures."""

    def __init__(self, checks: CheckSet, target):
        self.checks = checks
        self.closed = False
        self.licence = checks.run_check(gates.target_licence, target)
        self.closed = gates.licence_closed(self.licence)

    def rest(self, spec, *args) -> Check:
        """A check that reads the target's REST service beyond the licence allow-list."""
        if self.closed:
            return self.checks.add(_not_checked(spec.id, spec.severity))
        return self.run(spec, *args)

    def run(self, spec, *args) -> Check:
        check = self.checks.run_check(spec, *args)
        if check.status == FAIL and check.details.get('error_id') == UNLICENSED:
            results = self.checks.results
            index = results.index(check)
            check = results[index] = _not_checked(check.id, check.severity)
        return check


def _not_checked(check_id, severity):
    return Check(check_id, severity, WARN, 'Not checked: the target has no usable licence '
                                           '(see target-licence), so it refuses what this '
                                           'check reads.')


def target_checks(ctx) -> CheckSet:
    """Every check on the target, run and reported together (a CheckSet)."""
    target = ctx.target_manager
    snapshot = prepared_snapshot(ctx.workspace)
    source_meta = ctx.workspace.meta.get('source') or {}
    facts = gates.SourceFacts.of_workspace(ctx.workspace, snapshot)
    policy = old_users.users_policy(ctx)
    checks = CheckSet(catalogue=ctx.check_ids)
    gated = _Gated(checks, target)
    _path_checks(checks, facts.version, target, ctx.mode.name)
    _route_and_edition(gated, facts, target)
    if gated.closed:
        _mode_checks_gated(gated, ctx, source_meta, snapshot)
    else:
        ctx.mode.add_target_checks(checks, ctx, source_meta, snapshot)
    checks.run_check(host_backups, ctx.workspace, snapshot, ctx.mode, policy)
    checks.run_check(target_ssh, target, host_steps(ctx, snapshot))
    checks.run_check(target_disk, target, ctx.workspace, snapshot)
    gated.rest(target_not_clean, target)
    gated.rest(target_in_use, ctx.workspace, target)
    gated.rest(not_bootstrap_admin, target)
    gated.rest(agent_networks, snapshot, target)
    checks.run_check(snapshot_checksum, ctx.workspace, snapshot)
    checks.run_check(users_policy, ctx.workspace, snapshot, policy)
    return checks


def plan_target_checks(source, target, mode, catalogue=()) -> CheckSet:
    """``plan --to-profile``: the target checks that need no snapshot and no workspace
    (read only); the route is predicted from what the source's snapshot will hold."""
    facts = gates.SourceFacts.of_manager(source)
    checks = CheckSet(catalogue=catalogue)
    gated = _Gated(checks, target)
    _path_checks(checks, source.version, target, mode)
    _route_and_edition(gated, facts, target)
    gated.rest(target_not_clean, target)
    gated.rest(not_bootstrap_admin, target)
    return checks


def _route_and_edition(gated, facts, target):
    gated.run(gates.target_edition, facts, target)
    gated.run(gates.target_restore_route, facts, target)
    gated.run(gates.target_distributed, facts, target)
    gated.run(gates.agents_too_old_for_ssl, facts, target)


def _mode_checks_gated(gated, ctx, source_meta, snapshot):
    """The mode's own checks with the licence gate closed (refused reads not failures)."""
    own = CheckSet()
    ctx.mode.add_target_checks(own, ctx, source_meta, snapshot)
    for check in own:
        if check.status == FAIL and check.details.get('error_id') == UNLICENSED:
            check = _not_checked(check.id, check.severity)
        gated.checks.add(check)


def _path_checks(checks, source, target, mode):
    checks.run_check(target_path, source, target, mode)
    for pid, message in versions.path_advice(source, target.version):
        checks.add(Check(pid, WARN, WARN, message))


@TARGET_CHECKS.check('users-policy', BLOCK)
def users_policy(workspace, snapshot, policy) -> CheckOutcome:
    """behaviour §7.2: users of a pre-4.2 snapshot need a decision before anything changes."""
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


@TARGET_CHECKS.check('target-path', BLOCK, also=versions.PATH_ADVICE_IDS)
def target_path(source, target, mode) -> CheckOutcome:
    """The upgrade path to the real target (problem ids in the message and details); not
    waivable when one of its problems is refused by the manager whatever the options say."""
    problems = versions.upgrade_problems(source, target.version, mode)
    if problems:
        fixed = [versions.PATH_UNWAIVABLE[pid] for pid, _ in problems
                 if pid in versions.PATH_UNWAIVABLE]
        return Check('target-path', BLOCK, FAIL,
                     ' '.join('{0}: {1}'.format(pid, message) for pid, message in problems),
                     {'problems': [pid for pid, _ in problems]},
                     not_waivable=fixed[0] if fixed else None)
    return PASS, '{0} -> {1} ({2}) is supported.'.format(source, target.version, mode)


def host_steps(ctx, snapshot) -> List[str]:
    """What this run will do on the target host over SSH (for the target-ssh check)."""
    needs = []
    if old_users.users_policy(ctx) == 'rest-security' and \
            not versions.snapshot_carries_passwords(snapshot['snapshot_version']):
        needs.append('install the old rest-security values')
    return needs + ctx.mode.host_needs(snapshot)


@TARGET_CHECKS.check('host-backups', BLOCK)
def host_backups(workspace, snapshot, mode, policy) -> CheckOutcome:
    """The backups prepare took that this run needs (behaviour §7.1, §7.2)."""
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


@TARGET_CHECKS.check('target-disk', BLOCK)
def target_disk(target, workspace, snapshot) -> CheckOutcome:
    """The upload lands under the file server root, the restore unzips it into a temporary
    folder and copies the files under that root (estimates.py): `df -Pk` over SSH."""
    try:
        needs = estimates.for_snapshot(workspace.path(snapshot['path'])).needs['new_host']
    except (OSError, zipfile.BadZipFile) as error:
        return WARN, 'Not checked: the local snapshot cannot be read ({0}; see ' \
                     'snapshot-checksum).'.format(error)
    wanted = ', '.join('{0} in {1}'.format(estimates.human_bytes(size), path)
                       for path, size in needs.items())
    if not common.ssh_configured(target):
        return WARN, 'Not checked: the target profile has no SSH settings to run `df` on ' \
                     'its host; the restore needs about {0}.'.format(wanted), {'needs': needs}
    try:
        with common.open_host(target) as host:
            free = estimates.host_free_space(host, list(needs))
    except (UpgradeError, ValueError) as error:
        return WARN, 'Not checked: `df` on the target host failed ({0}); the restore ' \
                     'needs about {1}.'.format(getattr(error, 'message', error), wanted), \
            {'needs': needs}
    rows, problems = estimates.shortfalls(needs, free)
    if problems:
        return FAIL, 'Too little free space on the target host for the upload and the ' \
                     'restore: {0}. Free space there, or waive target-disk.'.format(
                         '; '.join(problems)), {'filesystems': rows}
    return PASS, 'Enough free space on the target host: {0}.'.format('; '.join(
        '{0} ({1}) {2} free, needs {3}'.format(
            ', '.join(row['paths']), row['mount'], estimates.human_bytes(row['free_bytes']),
            estimates.human_bytes(row['needed_bytes'])) for row in rows)), \
        {'filesystems': rows}


@TARGET_CHECKS.check('target-not-clean', BLOCK)
def target_not_clean(target) -> CheckOutcome:
    """behaviour §3.6: a v4+ snapshot needs a manager with no blueprints in any tenant."""
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


# The snapshot id prepare derives from a generated upgrade id (engine.workspace.new_upgrade_id).
PLUGIN_SNAPSHOT_ID = re.compile(r'upg-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}')
# Steps after which a workspace has put something on its target.
TARGET_CHANGING_STEPS = ('upload-snapshot', 'start-restore')


@TARGET_CHECKS.check('target-in-use', BLOCK)
def target_in_use(workspace, target) -> CheckOutcome:
    """Another upgrade is restoring onto this target, or has uploaded its snapshot there.

    Read from the target itself, since the other upgrade may run on another machine: a
    restore execution not ended and not this upgrade's, the 5.0.5+ restore flag
    (facts §2.3), and snapshots on the target named like this plugin's (a generated upgrade
    id) or like another workspace of this machine, other than this upgrade's own.  Also,
    locally: another workspace of this machine that started uploading to or restoring on
    the same address and did not finish.  This upgrade's own snapshot (a resumed run) is
    never counted.
    """
    own = prepared_snapshot(workspace)['id']
    meta = workspace.meta
    own_restores = set(meta.get('failed_restore_execution_ids') or [])
    own_restores.add(meta.get('restore_execution_id'))
    local = _other_workspaces(workspace)
    found, details = [], {}
    running = [e for e in target.list_all(
        'executions', workflow_id='restore_snapshot', include=['id', 'status', 'parameters'],
        status=versions.active_execution_states(target.version))
        if e.get('id') not in own_restores]
    if running:
        details['executions'] = [e.get('id') for e in running]
        found.append('restore execution(s) running: {0}'.format(', '.join(
            '{0} (snapshot {1})'.format(e.get('id'), (e.get('parameters') or {}).get(
                'snapshot_id')) for e in running)))
    elif restore_wait.restore_flag(target) == 'running':
        details['restore_flag'] = 'running'
        found.append('its snapshot-status says a restore is running')
    theirs = {sid: uid for uid, (sid, _, _) in local.items() if sid}
    others = [snap.get('id') for snap in target.list_all('snapshots', include=['id'])
              if snap.get('id') != own and (snap.get('id') in theirs or
                                            PLUGIN_SNAPSHOT_ID.fullmatch(snap.get('id') or ''))]
    if others:
        details['snapshots'] = others
        found.append('snapshot(s) of another upgrade uploaded: {0}'.format(', '.join(
            '{0}{1}'.format(sid, ' (upgrade {0} on this machine)'.format(theirs[sid])
                            if sid in theirs else '') for sid in others)))
    busy = sorted(uid for uid, (_, address, started) in local.items()
                  if started and address == target.address)
    if busy:
        details['workspaces'] = busy
        found.append('upgrade(s) {0} on this machine started uploading to or restoring on '
                     'it and did not finish'.format(', '.join(busy)))
    if found:
        return FAIL, 'The target manager is in use by another upgrade: {0}. Restoring this ' \
                     'snapshot as well would mix two upgrades; nothing was uploaded. Let ' \
                     'the other upgrade finish, or abandon it (delete its snapshot from the ' \
                     'target: `cfy snapshots delete ID`) and reinstall the target if a ' \
                     'restore ran.'.format('; '.join(found)), details
    return PASS, 'No other upgrade uses the target manager.'


def _other_workspaces(workspace) -> dict:
    """{upgrade_id: (snapshot id, target address, started uploading or restoring and not
    finished)} of the other workspaces of this machine (read only; unreadable ones are
    left out)."""
    found = {}
    base = os.path.dirname(os.path.dirname(workspace.root))     # <base>/upgrades/<id>
    for upgrade_id in list_upgrade_ids(base):
        if upgrade_id == workspace.upgrade_id:
            continue
        other = Workspace(os.path.join(upgrades_dir(base), upgrade_id), upgrade_id)
        try:
            meta = other.meta
            state = other.journal.state()
        except (UpgradeError, OSError, ValueError):
            continue
        snapshot_id = (meta.get('snapshot') or {}).get('id') or meta.get('snapshot_id')
        started = any(step in state for step in TARGET_CHANGING_STEPS) and \
            state.get('finish') != 'succeeded'
        found[upgrade_id] = (snapshot_id, (meta.get('target') or {}).get('address'), started)
    return found


@TARGET_CHECKS.check('not-bootstrap-admin', BLOCK)
def not_bootstrap_admin(target) -> CheckOutcome:
    """behaviour §3.6: only the bootstrap admin (user id 0) may restore a v4+ snapshot."""
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
    """behaviour §3.6: from 4.2 every agent network in the snapshot must exist on the target."""
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


@TARGET_CHECKS.check('snapshot-checksum', BLOCK)
def snapshot_checksum(workspace, snapshot) -> CheckOutcome:
    digest = transfer.verify_file(workspace.path(snapshot['path']))
    if digest != snapshot['sha256']:
        return FAIL, 'The local snapshot changed since prepare (sha256 {0}, expected ' \
                     '{1}).'.format(digest, snapshot['sha256'])
    return PASS, 'The local snapshot still matches its SHA-256.'
