"""The restore side shared by new-host and in-place (issues 6 and 7), built once.

Steps, in order (ids are stable; ``describe`` lists them for ``plan``):
check-target, upload-snapshot, start-restore, wait-restore, restore-ssl (in-place from
4.0.0), follow-credentials (>= 4.2 snapshots) or restore-users (older ones), reconcile,
cut-over (the point of no return: fence the old manager's auto-heal, record the time),
install-agents, finish.

Version rules (facts): restore body per target (§3.5, via ``Manager.restore_snapshot``);
after ``terminated`` the REST service restarts on 4.2-4.5 targets and the admin password
becomes the source admin's for >= 4.2 snapshots (§3.8); 5.0.5+ report the end of the
post-restore work at ``snapshot-status`` (§2.3); certificates are restored only in place
(§3.8); riemann exists on 3.x/4.x sources only (§7.4).

Failures and resumes: a restore execution that fails is recorded
(``failed_restore_execution_ids``) and reopens start-restore in the journal, so the next
run starts a new restore - only after checking that the target is still clean and runs no
restore.  A run that died inside start-restore adopts the restore it left on the target
(never a second one).  After ``terminated`` an announced outage (the 4.2-4.5 restart, the
reboot after restoring certificates) is watched for, never slept through: it must begin
within a grace (counted by the manager's clock from the execution's end) and end within
``--timeout``; a resumed run waits for a target that is still restarting.
"""
import json
import os

from cloudify_upgrade_plugin import clock, versions
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, PASS, WARN, Check, CheckSet, evaluate)
from cloudify_upgrade_plugin.engine.step import Step
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.runbooks import agents, common, credentials, inventory

V4_0_1 = versions.Version.parse('4.0.1')
V4_2 = versions.Version.parse('4.2.0')
V4_6 = versions.Version.parse('4.6.0')
V5_0 = versions.Version.parse('5.0.0')
V6_3 = versions.Version.parse('6.3.0')

TARGET_CHECK_IDS = ('users-policy', 'target-path', 'target-not-clean', 'not-bootstrap-admin',
                    'agent-networks', 'snapshot-checksum', 'target-is-source',
                    'target-licence', 'target-reachable', 'host-backups', 'target-ssh')


def describe(mode, source, target):
    """[{'id', 'title', 'changes'}] in order, for this mode and version pair (for plan)."""
    return [{'id': step.id, 'title': step.title, 'changes': step.changes}
            for step in steps_for(mode, versions.as_version(source), {})]


def steps_for(mode, source, options):
    """The restore-side steps of `mode` for a source of version `source`."""
    in_place = mode == versions.MODE_IN_PLACE
    steps = [CheckTarget(), UploadSnapshot(), StartRestore(), WaitRestore()]
    if in_place and source.base < V4_0_1:
        steps.append(RestoreSsl())
    if source.base >= V4_2:
        steps.append(FollowCredentials())
    else:
        steps.append(RestoreUsers())
    steps.extend([Reconcile(), CutOver(), InstallAgents(), Finish()])
    return steps


class RestoreStep(Step):
    changes = 'nothing'


def _snapshot(ctx):
    snapshot = ctx.workspace.meta.get('snapshot')
    if not snapshot:
        raise InputError('Upgrade {0} has no verified snapshot: its prepare did not '
                         'finish.'.format(ctx.workspace.upgrade_id),
                         error_id='prepare-not-finished',
                         hints=['Run `cfy upgrade prepare --upgrade-id {0}` first.'.format(
                             ctx.workspace.upgrade_id)])
    return snapshot


# -- check-target -----------------------------------------------------------------------

class CheckTarget(RestoreStep):
    id = 'check-target'
    title = 'Check the target manager (version, clean, admin, networks, checksum)'

    def run(self, ctx):
        checks = ctx.data.get('target_checks') or target_checks(ctx)
        evaluated = evaluate(checks, ctx.options.get('waivers') or (),
                             journal=ctx.workspace.journal, step=self.id)
        ctx.workspace.update_meta(target_checks=[c.to_dict() for c in evaluated])
        return {'checks': {c.id: c.status for c in evaluated}}


def target_checks(ctx):
    """Every check on the target, run and reported together (a CheckSet)."""
    target = ctx.data['target_manager']
    snapshot = _snapshot(ctx)
    source_meta = ctx.workspace.meta.get('source') or {}
    mode = ctx.data['mode']
    checks = CheckSet(catalogue=TARGET_CHECK_IDS + tuple(
        common.all_check_ids()))
    checks.run('target-path', BLOCK, _path, source_meta, snapshot, target, mode)
    if mode == versions.MODE_IN_PLACE:
        checks.run('target-is-source', BLOCK, _not_the_old_manager, source_meta, snapshot,
                   target)
    checks.run('host-backups', BLOCK, _host_backups, ctx.workspace, snapshot, mode,
               credentials.users_policy(ctx))
    checks.run('target-ssh', BLOCK, _target_ssh, target, _host_steps(ctx, snapshot))
    checks.run('target-not-clean', BLOCK, _clean, target)
    checks.run('not-bootstrap-admin', BLOCK, _bootstrap_admin, target)
    checks.run('agent-networks', BLOCK, _networks, snapshot, target)
    checks.run('target-licence', WARN, _licence, target)
    checks.run('snapshot-checksum', BLOCK, _checksum, ctx.workspace, snapshot)
    checks.run('users-policy', BLOCK, _users_policy, ctx.workspace, snapshot,
               credentials.users_policy(ctx))
    return checks


def _users_policy(workspace, snapshot, policy):
    """behaviour §7.2: users of a pre-4.2 snapshot need a decision before anything changes."""
    if versions.as_version(snapshot['snapshot_version']).base >= V4_2:
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


def _path(source_meta, snapshot, target, mode):
    source = versions.Version.parse(source_meta.get('version') or snapshot['snapshot_version'])
    problems = versions.upgrade_problems(source, target.version, mode)
    if problems:
        return FAIL, ' '.join(message for _, message in problems), \
            {'problems': [pid for pid, _ in problems]}
    return PASS, '{0} -> {1} ({2}) is supported.'.format(source, target.version, mode)


def _not_the_old_manager(source_meta, snapshot, target):
    """In place: the manager at the address must be the new install, not the old one."""
    if str(target.version) == source_meta.get('version'):
        return FAIL, 'The manager at {0} still runs {1}, the old version: tear it down and ' \
                     'install the new version first (see the instructions prepare ' \
                     'printed).'.format(target.address, target.version)
    if common.snapshot_status(target, snapshot['id']) == 'created':
        # a fresh install holds no snapshot; the old manager holds the one prepare made
        return FAIL, 'The manager at {0} holds snapshot {1} created by prepare: it is the ' \
                     'old manager, not a fresh install. Tear it down and install the new ' \
                     'version first.'.format(target.address, snapshot['id'])
    return PASS, 'The manager at {0} now runs {1}.'.format(target.address, target.version)


def _host_steps(ctx, snapshot):
    """What this run will do on the target host over SSH (for the target-ssh check)."""
    needs = []
    source = versions.as_version(snapshot['snapshot_version'])
    if credentials.users_policy(ctx) == 'rest-security' and source.base < V4_2:
        needs.append('install the old rest-security values')
    if ctx.data['mode'] == versions.MODE_IN_PLACE and not snapshot.get('has_ssl'):
        needs.append('put back /etc/cloudify/ssl')
    return needs


def _host_backups(workspace, snapshot, mode, policy):
    """The backups prepare took that this run needs (behaviour §7.1, §7.2)."""
    missing = []
    source = versions.as_version(snapshot['snapshot_version'])
    if policy == 'rest-security' and source.base < V4_2 and \
            not workspace.exists(os.path.join('backups', 'rest-security.conf')):
        missing.append('backups/rest-security.conf (for --users rest-security)')
    if mode == versions.MODE_IN_PLACE and not snapshot.get('has_ssl') and \
            not os.path.isdir(workspace.path(os.path.join('backups', 'ssl'))):
        missing.append('backups/ssl (the {0} snapshot has no certificates)'.format(source))
    if missing:
        return FAIL, 'Host backups this upgrade needs are missing from the workspace: {0}. ' \
                     'They can only be taken from the old manager host.'.format(
                         '; '.join(missing))
    return PASS, 'Every host backup this upgrade needs is in the workspace.'


def _target_ssh(target, needs):
    if not needs:
        return PASS, 'No step needs SSH to the target host.'
    if not common.ssh_configured(target):
        return FAIL, 'SSH to the target host is needed to {0}, but its profile has no SSH ' \
                     'settings: `cfy profiles set --ssh-user USER --ssh-key KEY --ssh-port ' \
                     'PORT`.'.format(' and '.join(needs))
    common.ssh_probe(target)
    return PASS, 'SSH to the target host works (to {0}).'.format(' and '.join(needs))


def _clean(target):
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


def _bootstrap_admin(target):
    """behaviour §3.6: only the bootstrap admin (user id 0) may restore a v4+ snapshot."""
    try:
        user = target.get('/user', what='reading the current user')
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


def _networks(snapshot, target):
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
        context = target.get('/provider/context', what='reading the provider context')
        agent = (((context or {}).get('context') or {}).get('cloudify') or {}).get(
            'cloudify_agent') or {}
        networks.update((agent.get('networks') or {}).keys())
    except UpgradeError:
        pass
    return networks or {'default'}


def _licence(target):
    """behaviour §2.5 [U]: a fresh premium 5.x+ probably needs a licence before restore."""
    if target.edition != 'premium' or target.version < V5_0:
        return PASS, 'No licence needed.'
    try:
        target.get('/license', what='reading the licence')
    except UpgradeError as error:
        return WARN, 'Could not read the licence ({0}); if the restore is refused, upload ' \
                     'one with `cfy license upload`.'.format(error.message)
    return PASS, 'Licence readable.'


def _checksum(workspace, snapshot):
    from cloudify_upgrade_plugin.snapshot.transfer import verify_file
    digest = verify_file(workspace.path(snapshot['path']))
    if digest != snapshot['sha256']:
        return FAIL, 'The local snapshot changed since prepare (sha256 {0}, expected ' \
                     '{1}).'.format(digest, snapshot['sha256'])
    return PASS, 'The local snapshot still matches its SHA-256.'


# -- upload / restore / wait ------------------------------------------------------------

class UploadSnapshot(RestoreStep):
    id = 'upload-snapshot'
    title = 'Upload the snapshot'
    changes = 'adds the snapshot to the target manager'

    def check(self, ctx):
        status = common.snapshot_status(ctx.data['target_manager'], _snapshot(ctx)['id'])
        return status in ('uploaded', 'created')

    def run(self, ctx):
        from cloudify_upgrade_plugin.snapshot import transfer
        snapshot = _snapshot(ctx)
        path = ctx.workspace.path(snapshot['path'])
        params = None
        target = ctx.data['target_manager']
        if target.version < V4_2 and target.version.major == 4:
            params = {'private_resource': 'false'}     # behaviour §3.4: 4.0-4.2 only
        try:
            transfer.upload_snapshot(target, snapshot['id'], path, params=params,
                                     progress=transfer.progress_reporter(path, 'Uploading'))
        except UpgradeError as error:
            if error.error_id != 'snapshot-already-exists':
                raise
        return {'snapshot_id': snapshot['id'], 'size': snapshot['size']}


class StartRestore(RestoreStep):
    id = 'start-restore'
    title = 'Start the restore'
    changes = 'replaces the target manager\'s data with the snapshot\'s'
    # Re-run after an interruption only once `check` found no restore of this snapshot on
    # the target and `run` found the target unchanged: a second restore is never started.
    rerunnable = True

    def check(self, ctx):
        """Done when a restore of this upgrade runs or ran, and it did not fail.

        A restore that failed (wait-restore reopens this step) is not done: the next run
        starts another one once the target is found unchanged.  A process killed between
        the POST and recording its answer left a restore execution on the target: it is
        adopted, never started twice (if it failed, wait-restore reports it as any failed
        restore).
        """
        meta = ctx.workspace.meta
        failed = set(meta.get('failed_restore_execution_ids') or [])
        recorded = meta.get('restore_execution_id')
        if recorded and recorded not in failed:
            return True
        if _last_lifecycle_event(ctx.workspace, self.id) != 'started':
            # only a run that died inside this step can have left a restore unrecorded (a
            # refused POST may leave a row that never runs, observed-7.0 §3.2: never adopt that)
            return False
        execution = common._snapshot_execution(ctx.data['target_manager'], _snapshot(ctx)['id'],
                                               workflow='restore_snapshot')
        if execution is not None and execution['id'] not in failed:
            ctx.workspace.update_meta(restore_execution_id=execution['id'])
            get_logger().info('Restore execution %s found on the target: adopted.',
                              execution['id'])
            return True
        return False

    def run(self, ctx):
        snapshot = _snapshot(ctx)
        target = ctx.data['target_manager']
        failed = ctx.workspace.meta.get('failed_restore_execution_ids') or []
        attempts = [e for e in ctx.workspace.journal.step_entries(self.id)
                    if e['event'] == 'started']
        if failed or len(attempts) > 1:
            # a failed restore, or a run that died in here without a trace on the target
            _ready_for_another_restore(ctx, target, snapshot, failed)
        in_place = ctx.data['mode'] == versions.MODE_IN_PLACE
        execution_id = target.restore_snapshot(
            snapshot['id'], restore_certificates=_restores_certificates(ctx),
            force=False, snapshot_version=snapshot['snapshot_version'])
        ctx.workspace.update_meta(restore_execution_id=execution_id,
                                  restore_started_at=clock.isoformat(), restore_outage_seen=None,
                                  restore_ended_seen_at=None)
        get_logger().info('Restore started (execution %s%s).', execution_id,
                          ', with certificates' if in_place and _restores_certificates(ctx)
                          else '')
        return {'execution_id': execution_id, 'attempt': len(failed) + 1,
                'previous_failed': list(failed)}


def _last_lifecycle_event(workspace, step_id):
    from cloudify_upgrade_plugin.engine.journal import LIFECYCLE_EVENTS
    events = [e['event'] for e in workspace.journal.step_entries(step_id)
              if e['event'] in LIFECYCLE_EVENTS]
    return events[-1] if events else None


def _restores_certificates(ctx):
    """In place only, and only when the snapshot carries ssl/ (not 4.0.0, behaviour §7.1)."""
    return ctx.data['mode'] == versions.MODE_IN_PLACE and \
        bool(_snapshot(ctx).get('has_ssl'))


def _ready_for_another_restore(ctx, target, snapshot, failed):
    """After a failed restore: refuse a new one unless the target is as it was before."""
    logger = get_logger()
    logger.info('%s; checking that the target is unchanged before starting the restore.',
                'Restore execution(s) {0} failed earlier'.format(', '.join(failed)) if failed
                else 'An earlier run stopped while starting the restore')
    running = [e for e in target.list_all(
        'executions', workflow_id='restore_snapshot', include=['id', 'status'],
        status=common.active_states(target.version)) if e['id'] not in failed]
    if running:
        raise UpgradeError(
            'A restore is already running on {0} ({1}).'.format(
                target.label, ', '.join(e['id'] for e in running)),
            error_id='restore-running',
            hints=['Wait for it to end, then run the same command again.'])
    status, message = _clean(target)[:2]
    if status == FAIL:
        raise UpgradeError(
            'The target changed since the restore was first started: {0} Another restore '
            'would be refused, or with force wipe what is there.'.format(message),
            error_id='target-changed-by-failed-restore' if failed else
            'target-changed-since-restore-started',
            hints=['Reinstall the new manager (it holds nothing of value yet), then run the '
                   'same command again: the snapshot is uploaded and restored anew.',
                   'Or start a new upgrade (`cfy upgrade prepare`) onto another manager.'])
    if common.snapshot_status(target, snapshot['id']) is None:
        logger.info('The snapshot is no longer on the target; uploading it again.')
        UploadSnapshot().run(ctx)


def _restore_failed(ctx, execution_id, error):
    """The restore execution failed: record it, reopen start-restore, explain what next."""
    workspace = ctx.workspace
    failed = list(workspace.meta.get('failed_restore_execution_ids') or [])
    if execution_id not in failed:
        failed.append(execution_id)
    workspace.update_meta(failed_restore_execution_ids=failed)
    reason = (error.details or {}).get('error') or error.message
    workspace.journal.append(StartRestore.id, 'failed', {
        'error_id': 'restore-failed', 'execution_id': execution_id,
        'message': 'Restore execution {0} {1}; the next run starts another restore once the '
                   'target is found unchanged.'.format(
                       execution_id, (error.details or {}).get('status') or 'failed'),
        'reopened_by': WaitRestore.id})
    return UpgradeError(
        '{0} No agent was touched and the old manager is unchanged.'.format(error.message),
        error_id='restore-failed',
        details={'execution_id': execution_id, 'error': str(reason)[-2000:]},
        hints=list(error.possible_solutions) + [
            'Fix the cause on the new manager (the restore\'s events say what it was), then '
            'run the same command again: it checks that the new manager is still clean and '
            'starts a new restore (the failed one is recorded in the journal).',
            'If the failed restore left data on the new manager, reinstall it first.'])


RESTORE_POLL_CAP = 1.0
# How long after a restore ends an announced REST outage (the 4.2-4.5 restart, the reboot
# after restoring certificates: behaviour §3.8 "a few seconds", docs "at least 10 seconds") may
# take to begin before it is considered missed.
OUTAGE_GRACE = 60.0
# ... and once the restored certificates are seen on the host (the reboot follows them).
REBOOT_SOON = 10.0
POST_RESTORE_SLEEP = 3.0   # behaviour §3.8: the detached post-restore shell's `sleep 3`


class WaitRestore(RestoreStep):
    id = 'wait-restore'
    title = 'Wait for the restore, the REST restart and any reboot'

    def run(self, ctx):
        from cloudify_upgrade_plugin.manager import waits
        meta = ctx.workspace.meta
        execution_id = meta['restore_execution_id']
        snapshot = _snapshot(ctx)
        timeout = ctx.options.get('timeout') or 3600
        target = ctx.data['target_manager']
        candidates = credentials.candidates(ctx)
        target = credentials.working(target, candidates, wait=True) or target
        alternatives = credentials.alternatives(target, candidates)
        current = {'manager': target}
        # 4.6+ switch the admin password inside the workflow (behaviour §3.8)
        try:
            # poll at least every second: the end must be seen before the post-restore
            # shell's `sleep 3` is over and it restarts / reboots the manager (behaviour §3.8)
            execution = waits.wait_for_execution(
                target, execution_id, timeout=timeout, alternatives=alternatives,
                on_switch=lambda m: current.update(manager=m), poll_cap=RESTORE_POLL_CAP)
        except UpgradeError as error:
            if error.error_id in ('execution-failed', 'execution-cancelled'):
                raise _restore_failed(ctx, execution_id, error)
            if error.error_id == 'execution-timeout' and not _answers(target)[0]:
                raise _not_back(target, timeout, execution_id, error, snapshot, ctx)
            if credentials.working(target, candidates, wait=True) is None and \
                    _answers(target)[0]:
                raise _credentials_refused(ctx, target, execution_id, error)
            raise
        target = current['manager']
        snapshot_version = versions.as_version(snapshot['snapshot_version'])
        post = _post_restore_expectations(target.version, snapshot_version, ctx.data['mode'],
                                          snapshot)
        outage = _outage_after_terminated(target.version, post)
        ended_seen = meta.get('restore_ended_seen_at') or clock.isoformat()
        if not meta.get('restore_ended_seen_at'):
            ctx.workspace.update_meta(restore_ended_seen_at=ended_seen)
        if outage and meta.get('restore_outage_seen') is None:
            # never a fixed sleep: see the outage begin, then wait for its end below.  Only
            # what is left of the grace since the restore ended is waited (a resumed run may
            # come long after the outage, while no process was watching)
            ago = _ended_ago(target, execution)
            grace = min(float(timeout), OUTAGE_GRACE) - (
                ago if ago is not None else clock.seconds_since(ended_seen))
            if post['reboot'] and grace > 0 and _certificate_differences(ctx, target) == []:
                # the certificates are already moved: `shutdown -r now` comes right after
                # them in the post-restore shell (`sleep 3` after the end, behaviour §3.8), or
                # came already
                grace = min(grace, REBOOT_SOON if ago is None else
                            POST_RESTORE_SLEEP + REBOOT_SOON - ago)
            seen = _wait_for_outage(target, grace) if grace > 0 else False
            ctx.workspace.update_meta(restore_outage_seen=seen)
        if post['flag']:
            waits.wait_for_restore_flag(target, timeout)
        alternatives = credentials.alternatives(target, candidates)
        if outage or post['restart']:
            answer = waits.wait_for_rest(target, timeout, alternatives=alternatives)
            target = answer.get('manager') or target
        if post['credentials_change'] and len(candidates) > 1:
            target = credentials.wait_for_switch(target, candidates, timeout)
        ctx.data['target_manager'] = target
        health = _confirm_healthy(target, min(float(timeout), HEALTH_GRACE))
        ctx.workspace.update_meta(target_health=health)
        details = {'execution_id': execution_id, 'post_restore': post, 'health': health,
                   'outage': outage and ctx.workspace.meta.get('restore_outage_seen')}
        if post['reboot']:
            details['certificates'] = _confirm_certificates(ctx, target)
        return details


# How long the services of a restored manager may take to all report active.
HEALTH_GRACE = 60.0


def _confirm_healthy(target, grace, sleep=None, clock=None):
    """'ok', or 'degraded: <services>' (a warning) when they are not all active in time."""
    import time
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    deadline = clock() + grace
    interval = 0.1
    while True:
        try:
            state, failing = common.health(target)
        except UpgradeError as error:
            state, failing = 'fail', [error.message]
        if state == 'ok':
            return 'ok'
        if clock() >= deadline:
            get_logger().warning('%s reports services that are not running after the '
                                 'restore: %s. Check them before the agents move.',
                                 target.label, ', '.join(failing) or state)
            return '{0}: {1}'.format(state, ', '.join(failing))
        sleep(interval)
        interval = min(interval * 1.5, 2.0)


def _post_restore_expectations(target, snapshot, mode, snapshot_doc):
    """What happens after the restore execution ends, per target version (behaviour §3.8)."""
    certificates = mode == versions.MODE_IN_PLACE and bool(snapshot_doc.get('has_ssl'))
    return {'credentials_change': snapshot.base >= V4_2,
            'restart': snapshot.base >= V4_2 or certificates,
            'reboot': certificates,
            'flag': target >= versions.Version.parse('5.0.5')}


def _outage_after_terminated(target, post):
    """behaviour §3.8: the reboot after moving certificates; the REST restart of the detached
    post-restore shell on 4.2-4.5 targets (4.6+ restart inside the workflow)."""
    return bool(post['reboot'] or (post['credentials_change'] and target < V4_6))


def _answers(target, session=None):
    """True when the REST service answers JSON (200 or 401) to an unauthenticated
    ``<prefix>/version``; False for refused connections, 5xx pages and non-JSON answers."""
    import requests

    from cloudify_upgrade_plugin.manager import discovery
    verify = False if target.trust_all else (target.cert or True)
    result = discovery.probe(session or requests.Session(), target.address,
                             target.api_prefix + '/version', verify=verify, timeout=5)
    return bool(result.is_json and (result.status or 0) < 500), result


def _ended_ago(target, execution):
    """Seconds since the execution ended, by the manager's own clock: its ``ended_at``
    (4.4+) against the ``Date`` header of an answer now.  None when either is unknown."""
    import requests
    ended = clock.parse((execution or {}).get('ended_at'))
    if ended is None:
        return None
    verify = False if target.trust_all else (target.cert or True)
    try:
        answer = requests.get(target.address + target.api_prefix + '/version', timeout=5,
                              verify=verify, allow_redirects=False)
    except requests.exceptions.RequestException:
        return None
    now = clock.parse_http_date(answer.headers.get('Date'))
    if now is None:
        return None
    return max(0.0, (now - ended).total_seconds())


def _credentials_refused(ctx, target, execution_id, error):
    """Every known password is refused while the restore runs: after a >= 4.2 snapshot the
    admin password is the old manager's (behaviour §3.8), which an in-place profile may not hold
    any more (the operator set the fresh install's)."""
    return UpgradeError(
        '{0} refuses the credentials of profile {1} while restore execution {2} runs: a '
        'restore of a {3} snapshot gives the admin the OLD manager\'s password.'.format(
            target.label, ctx.data['target_profile'], execution_id,
            _snapshot(ctx)['snapshot_version']),
        error_id='credentials-changed-by-restore', details=error.details,
        hints=['Set the old manager\'s admin password on the profile: `cfy profiles set '
               '--manager-password <old admin password> --skip-credentials-validation`, '
               'then run the same command again (the restore is not started again).'])


def _not_back(target, timeout, execution_id, error, snapshot, ctx):
    """The manager went away while the restore ran and did not come back in time."""
    reboot = _restores_certificates(ctx)
    ctx.workspace.update_meta(restore_outage_seen=True)
    return UpgradeError(
        '{0} stopped answering while restore execution {1} ran (the restore restarts its '
        'REST service{2}) and did not come back within {3}s; the end of the restore was not '
        'seen.'.format(target.label, execution_id,
                       ' and reboots the host after restoring the certificates'
                       if reboot else '', timeout),
        error_id='rest-timeout', details=error.details,
        hints=['Check the manager host (is it up? `sudo systemctl status nginx '
               'cloudify-restservice`); a reboot can take several minutes.',
               'Then run the same command again to keep waiting: the restore is not started '
               'again (its execution id is in the workspace).'])


def _wait_for_outage(target, grace, sleep=None, clock=None):
    """Poll the REST port until it stops answering (True), or `grace` seconds pass (False).

    Unauthenticated ``<prefix>/version`` answers JSON (200 or 401) while the service is up;
    refused connections, 5xx pages and non-JSON answers mean it went down.
    """
    import time

    import requests
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    session = requests.Session()
    deadline = clock() + grace
    interval = 0.05
    while True:
        up, result = _answers(target, session)
        if not up:
            get_logger().info('%s stopped answering (%s); waiting for it to come back.',
                              target.label, result.error or result.status)
            return True
        if clock() >= deadline:
            get_logger().warning('No restart or reboot of %s was seen within %.0fs after the '
                                 'restore ended; going on.', target.label, grace)
            return False
        sleep(interval)
        interval = min(interval * 1.5, 0.5)


CERTIFICATES_CHECKED = ('cloudify_internal_ca_cert.pem', 'cloudify_internal_cert.pem')


def _certificate_differences(ctx, target):
    """Public internal certificates (never the keys) of the snapshot's ssl/ that differ on
    the host over SSH: a list; None when there is nothing to compare or no SSH."""
    import zipfile
    path = ctx.workspace.path(_snapshot(ctx)['path'])
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        wanted = {name: archive.read('ssl/' + name) for name in CERTIFICATES_CHECKED
                  if 'ssl/' + name in names}
    if not wanted or not common.ssh_configured(target):
        return None
    differ = []
    with common._closing(common.open_host(target)) as host:
        for name, content in sorted(wanted.items()):
            try:
                remote = host.read_file('/etc/cloudify/ssl/' + name, sudo=True)
            except UpgradeError:
                remote = None
            if remote != content:
                differ.append(name)
    return differ


def _confirm_certificates(ctx, target):
    """After an in-place restore with certificates: the host holds the snapshot's
    (without SSH settings it is only logged)."""
    differ = _certificate_differences(ctx, target)
    if differ is None:
        get_logger().warning('Cannot confirm over SSH that the certificates were restored '
                             '(no SSH settings, or none in the snapshot).')
        return 'not checked'
    if differ:
        raise UpgradeError(
            'The restore ended but {0} on {1} are not the snapshot\'s: the certificates were '
            'not restored, and the agents would not trust this manager.'.format(
                ', '.join(differ), target.label), error_id='certificates-not-restored',
            hints=['Put the ssl directory of the workspace backup (backups/ssl) into '
                   '/etc/cloudify/ssl on the host, reboot it, then run the same command again.'])
    get_logger().info('The restored certificates are in place on %s.', target.label)
    return 'restored'


class RestoreSsl(RestoreStep):
    id = 'restore-ssl'
    title = 'Put /etc/cloudify/ssl back from the backup (4.0.0 snapshots have none)'
    changes = 'replaces the certificates on the manager host and restarts its services'

    def check(self, ctx):
        return not _ssl_differences(ctx, ctx.data['target_manager'])

    def run(self, ctx):
        target = ctx.data['target_manager']
        local = _ssl_backup(ctx)
        with common._closing(common.open_host(target)) as host:
            host.put_dir(local, SSL_DIR, sudo=True)
            for unit in ('nginx', 'cloudify-rabbitmq', 'cloudify-restservice'):
                host.systemctl('restart', unit)
        from cloudify_upgrade_plugin.manager import waits
        answer = waits.wait_for_rest(target, ctx.options.get('timeout') or 3600)
        ctx.data['target_manager'] = answer.get('manager') or target
        return {'restored': SSL_DIR}

    def verify(self, ctx):
        differ = _ssl_differences(ctx, ctx.data['target_manager'])
        if differ:
            raise UpgradeError('After copying the ssl backup, {0} on the host still differ '
                               'from it.'.format(', '.join(differ)),
                               error_id='ssl-not-restored',
                               hints=['Copy backups/ssl to /etc/cloudify/ssl on the host by '
                                      'hand, then run the same command again.'])


SSL_DIR = '/etc/cloudify/ssl'


def _ssl_backup(ctx):
    local = ctx.workspace.path(os.path.join('backups', 'ssl'))
    if not os.path.isdir(local):
        raise UpgradeError('No ssl backup in upgrade {0}.'.format(
            ctx.workspace.upgrade_id), error_id='ssl-backup-missing',
            hints=['Re-run prepare with SSH settings on the old profile (before the '
                   'teardown), or restore /etc/cloudify/ssl by hand.'])
    return local


def _ssl_differences(ctx, target):
    """Files of backups/ssl whose SHA-256 on the host differs (or that are missing)."""
    import hashlib
    local = _ssl_backup(ctx)
    wanted = {}
    for base, _, names in os.walk(local):
        for name in names:
            full = os.path.join(base, name)
            rel = os.path.relpath(full, local).replace(os.sep, '/')
            with open(full, 'rb') as stream:
                wanted[rel] = hashlib.sha256(stream.read()).hexdigest()
    if not wanted:
        return []
    with common._closing(common.open_host(target)) as host:
        _, out = host.run(['sha256sum'] + ['{0}/{1}'.format(SSL_DIR, rel)
                                           for rel in sorted(wanted)], sudo=True, check=False)
    remote = {}
    for line in out.splitlines():
        digest, _, name = line.strip().partition('  ')
        if name.startswith(SSL_DIR + '/'):
            remote[name[len(SSL_DIR) + 1:]] = digest
    return sorted(rel for rel, digest in wanted.items() if remote.get(rel) != digest)


class FollowCredentials(RestoreStep):
    id = 'follow-credentials'
    title = 'Follow the admin credential change (the source admin\'s password now works)'
    changes = 'updates the target profile\'s password'

    def run(self, ctx):
        target, changed = credentials.follow(ctx)
        ctx.data['target_manager'] = target
        return {'profile_updated': changed}


class RestoreUsers(RestoreStep):
    id = 'restore-users'
    title = 'Restore old users (rest-security, reset-passwords or skip)'
    changes = 'rest-security.conf on the target host, or user passwords'

    def run(self, ctx):
        return credentials.restore_users(ctx)


# -- reconcile / cut-over / agents / finish ---------------------------------------------

class Reconcile(RestoreStep):
    id = 'reconcile'
    title = 'Compare the restored data with the source inventory'
    changes = 'writes inventory/target.json'

    def run(self, ctx):
        source = ctx.workspace.read_json('inventory/source.json')
        if source is None:
            raise InputError('inventory/source.json is missing from upgrade {0}.'.format(
                ctx.workspace.upgrade_id), error_id='prepare-not-finished',
                hints=['Run prepare again for this upgrade id.'])
        target = inventory.collect(ctx.data['target_manager'])
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

    def run(self, ctx):
        meta = ctx.workspace.meta
        fenced = False
        source = versions.Version.parse((meta.get('source') or {}).get('version'))
        mode = ctx.data['mode']
        if mode == versions.MODE_NEW_HOST and source.major < 5:
            if ctx.options.get('no_stop_old_healing'):
                ctx.workspace.journal.append(self.id, 'waived', {
                    'check': 'fence-healing', 'reason': '--no-stop-old-healing'})
                get_logger().warning('Auto-heal on the old manager is NOT stopped '
                                     '(--no-stop-old-healing): heals there may duplicate '
                                     'VMs until it is shut down.')
            else:
                fenced = _stop_riemann(ctx.data['source_manager_profile'])
        # a run killed inside this step already recorded one: keep the earliest (the
        # widest window for verify-heals)
        cutover_at = meta.get('cutover_at') or clock.isoformat()
        ctx.workspace.update_meta(cutover_at=cutover_at, healing_fenced=fenced)
        return {'cutover_at': cutover_at, 'healing_fenced': fenced}


def _stop_riemann(source_profile_name):
    """behaviour §7.4: `systemctl stop` + `disable` cloudify-riemann on the old 3.x/4.x host."""
    manager = common.open_manager(source_profile_name, role='old')
    if not common.ssh_configured(manager):
        raise UpgradeError(
            'Cannot stop cloudify-riemann on the old manager: its profile has no SSH '
            'settings, and its auto-heal could duplicate VMs once the agents move.',
            error_id='ssh-not-configured',
            hints=['`cfy profiles set --ssh-user USER --ssh-key KEY --ssh-port PORT` on the '
                   'old manager\'s profile, then re-run.',
                   'Or stop it yourself and re-run with --no-stop-old-healing.'])
    with common._closing(common.open_host(manager)) as host:
        host.systemctl('stop', 'cloudify-riemann')
        host.systemctl('disable', 'cloudify-riemann')
        if host.is_active('cloudify-riemann'):
            raise UpgradeError('cloudify-riemann is still active on the old manager.',
                               error_id='healing-not-fenced',
                               hints=['Stop it on the host: `sudo systemctl stop '
                                      'cloudify-riemann`, then re-run.'])
    get_logger().info('Auto-heal fenced: cloudify-riemann stopped on the old manager.')
    return True


class InstallAgents(RestoreStep):
    id = 'install-agents'
    title = 'Install new agents in every tenant'
    changes = 'moves every agent to the target manager'

    def run(self, ctx):
        summary = agents.install_all(ctx)
        return {'deployments': summary['deployments'], 'succeeded': summary['succeeded'],
                'failed': len(summary['failed'])}


class Finish(RestoreStep):
    id = 'finish'
    title = 'Make the target the active profile'
    changes = 'the active cfy profile'

    def run(self, ctx):
        from cloudify_cli import env
        name = ctx.data['target_profile']
        env.set_active_profile(name)
        return {'active_profile': name}


# -- the command ------------------------------------------------------------------------

def run(options, mode):
    """new-host / in-place: open the workspace and the target, check, then run the steps."""
    from cloudify_upgrade_plugin.engine.report import write_report
    from cloudify_upgrade_plugin.engine.runner import Runner
    from cloudify_upgrade_plugin.engine.step import Context, Runbook
    from cloudify_upgrade_plugin.engine.workspace import Workspace
    credentials.validate_options(options)
    workspace = Workspace.open(options.get('upgrade_id'))
    meta = workspace.meta
    _require_prepared(workspace, meta, mode)
    source_profile = (meta.get('source') or {}).get('profile')
    target_profile = _target_profile(options, meta, mode, source_profile)
    target = _open_target(target_profile, source_profile, workspace, options.get('timeout'))
    ctx = Context(workspace, options=options)
    ctx.confirm = _confirm_with_summary(ctx)
    ctx.data.update(mode=mode, target_manager=target, target_profile=target_profile,
                    source_manager_profile=source_profile)
    workspace.update_meta(target=common.manager_meta(target))
    if workspace.journal.state().get('check-target') != 'succeeded':
        # blocked before anything is uploaded: exit 3 and nothing changed
        ctx.data['target_checks'] = checks = target_checks(ctx)
        evaluate(checks, options.get('waivers') or ())
    source = versions.Version.parse(meta['source']['version'])
    runbook = Runbook(mode, steps_for(mode, source, options))
    fingerprint = {'target': {'address': target.address}, 'restore_mode': mode}
    try:
        Runner(workspace, runbook, fingerprint).run(ctx)
    except UpgradeError as error:
        document = result_document(workspace)
        document['error'] = error.to_dict()
        error.document = dict(document, **(getattr(error, 'document', None) or {}))
        write_report(workspace, document)
        raise
    document = result_document(workspace)
    write_report(workspace, document)
    common.render(document, result_lines(document))
    return document


def _require_prepared(workspace, meta, mode):
    if workspace.journal.state().get('write-prepare-report') != 'succeeded' or \
            not meta.get('snapshot'):
        raise InputError(
            'Upgrade {0} is not prepared: its prepare did not finish.'.format(
                workspace.upgrade_id), error_id='prepare-not-finished',
            hints=['Run `cfy upgrade prepare --upgrade-id {0}` first.'.format(
                workspace.upgrade_id)])
    if meta.get('mode') != mode:
        raise InputError(
            'Upgrade {0} was prepared for a {1} upgrade, not {2}.'.format(
                workspace.upgrade_id, meta.get('mode'), mode), error_id='wrong-mode',
            hints=['Run `cfy upgrade {0} --upgrade-id {1}`, or prepare a new upgrade with '
                   '--mode {2}.'.format(meta.get('mode'), workspace.upgrade_id, mode)])


def _target_profile(options, meta, mode, source_profile):
    if mode == versions.MODE_IN_PLACE:
        return source_profile
    name = options.get('to_profile')
    if options.get('manager_ip'):
        name = _create_profile(options)
    name = name or (meta.get('target') or {}).get('profile')
    if not name:
        raise InputError('Which manager is the new one? Give --to-profile NAME or '
                         '--manager-ip IP (with the `cfy profiles use` options).',
                         error_id='target-profile-missing',
                         hints=['`cfy upgrade new-host --to-profile NEW` after `cfy profiles '
                                'use NEW_IP --profile-name NEW ...`.'])
    if name == source_profile:
        raise InputError('--to-profile {0} is the old manager\'s profile; a new-host '
                         'upgrade restores on another manager.'.format(name),
                         error_id='target-is-source-profile',
                         hints=['Use `cfy upgrade in-place` for the same address.'])
    return name


def _create_profile(options):
    """A cfy profile for the new manager from `cfy profiles use`-like options."""
    from cloudify_cli import env
    name = options.get('profile_name') or options['manager_ip']
    if env.is_profile_exists(name):
        return name
    ssl = bool(options.get('ssl') or options.get('rest_certificate'))
    profile = env.ProfileContext(profile_name=name)
    profile.manager_ip = options['manager_ip']
    profile.rest_protocol = 'https' if ssl else 'http'
    profile.rest_port = options.get('rest_port') or (443 if ssl else 80)
    profile.rest_certificate = options.get('rest_certificate')
    profile.manager_username = options.get('manager_username')
    profile.manager_password = options.get('manager_password')
    profile.manager_tenant = options.get('manager_tenant') or 'default_tenant'
    profile.ssh_user = options.get('ssh_user')
    profile.ssh_key = options.get('ssh_key')
    profile.ssh_port = options.get('ssh_port') or 22
    profile.save()
    get_logger().info('Created cfy profile %s for the new manager.', name)
    return name


def _open_target(target_profile, source_profile, workspace, timeout):
    """The target manager, waited for while a restore this upgrade started restarts or
    reboots it (in place: the reboot after restoring the certificates; issue 7 "a reboot in
    the middle of a step is expected, not an error")."""
    import time
    restoring = bool(workspace.meta.get('restore_execution_id'))
    deadline = time.monotonic() + float(timeout or 3600)
    delay = 0.25
    waiting = False
    while True:
        try:
            return _connect_target(target_profile, source_profile, workspace)
        except _Retry:
            pass
        except UpgradeError as error:
            if not restoring or error.error_id not in ('manager-unreachable',
                                                       'manager-not-detected'):
                raise
            if time.monotonic() >= deadline:
                raise UpgradeError(
                    'The target manager did not come back within {0}s: {1}'.format(
                        timeout, error.message), error_id='rest-timeout',
                    details=error.details,
                    hints=['Check the manager host (a reboot after restoring certificates can '
                           'take several minutes), then run the same command again.'])
            if not waiting:
                get_logger().info('The target manager does not answer (a restore restarts '
                                  'its REST service, or reboots it); waiting up to %ss.',
                                  timeout)
                waiting = True
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


class _Retry(Exception):
    """Something was repaired on the target; connect again."""


def _connect_target(target_profile, source_profile, workspace):
    """The target manager; after a >= 4.2 restore its profile password may be stale."""
    try:
        return common.open_manager(target_profile, role='target')
    except UpgradeError as error:
        if error.error_id != 'manager-auth-failed':
            raise
        refused = error
    from cloudify_cli import constants, env
    from cloudify_upgrade_plugin.manager.client import Manager, profile_cert
    if source_profile and source_profile != target_profile:
        profile = env.get_profile_context(target_profile)
        source = env.get_profile_context(source_profile)
        get_logger().info('The target refuses its profile\'s credentials; trying the old '
                          'admin\'s (a restore installs them).')
        try:
            return Manager.connect(profile.manager_ip, profile.rest_port,
                                   profile.rest_protocol,
                                   cert=profile_cert(env, constants, profile, target_profile),
                                   trust_all=env.get_ssl_trust_all(),
                                   username=env.get_username(source),
                                   password=env.get_password(source),
                                   tenant=env.get_tenant_name(profile), profile=profile,
                                   profile_name=target_profile)
        except UpgradeError as error:
            if error.error_id != 'manager-auth-failed':
                raise
    if credentials.recover_lockout(workspace, target_profile):
        raise _Retry()
    raise refused


def _confirm_with_summary(ctx):
    """The point of no return: say what was verified and what happens next, then ask."""
    from cloudify_upgrade_plugin.engine.step import default_confirm

    def confirm(step):
        meta = ctx.workspace.meta
        logger = get_logger()
        target = meta.get('target') or {}
        reconciliation = meta.get('reconciliation') or {}
        waived = [e['details'].get('check') for e in ctx.workspace.journal.waivers()]
        logger.info('Verified so far: snapshot %s (version %s, sha256 checked) restored on %s '
                    '(%s %s, services %s); reconciliation %s%s.',
                    (meta.get('snapshot') or {}).get('id'),
                    (meta.get('snapshot') or {}).get('snapshot_version'),
                    target.get('address'), target.get('version'), target.get('edition'),
                    meta.get('target_health') or 'not checked',
                    'clean' if reconciliation.get('ok') else '{0} difference(s), '
                    'waived'.format(len(reconciliation.get('differences') or [])),
                    '; waived checks: {0}'.format(', '.join(sorted(set(waived))))
                    if waived else '')
        try:
            eligible, not_eligible = agents.plan(ctx.data['target_manager'])
            moving = '{0} deployment(s) in {1} tenant(s){2}'.format(
                len(eligible), len({t for t, _ in eligible}),
                ' ({0} not eligible: hosts not started)'.format(len(not_eligible))
                if not_eligible else '')
        except UpgradeError:
            moving = 'every eligible deployment'
        source = versions.Version.parse((meta.get('source') or {}).get('version'))
        if ctx.data['mode'] == versions.MODE_IN_PLACE:
            fence = 'the old manager is gone (in place): nothing to fence'
        elif source.major >= 5:
            fence = 'the old {0} manager has no riemann: its auto-heal cannot be ' \
                    'stopped here'.format(source)
        elif ctx.options.get('no_stop_old_healing'):
            fence = 'auto-heal on the old manager is NOT stopped (--no-stop-old-healing)'
        else:
            fence = 'cloudify-riemann is stopped on the old manager ({0}) over SSH'.format(
                (meta.get('source') or {}).get('address'))
        logger.info('What happens now: %s; the cut-over time is recorded; then the agents of '
                    '%s are reinstalled to talk to the new manager. Keep the old manager '
                    'and its RabbitMQ up until this ends.', fence, moving)
        return default_confirm(step)
    return confirm


def result_document(workspace):
    meta = workspace.meta
    target = meta.get('target') or {}
    agents_summary = meta.get('agents') or {}
    mode = meta.get('mode')
    return {'upgrade_id': workspace.upgrade_id, 'mode': mode,
            'target': {'version': target.get('version'), 'edition': target.get('edition'),
                       'address': target.get('address'), 'profile': target.get('profile')},
            'restore_execution_id': meta.get('restore_execution_id'),
            'reconciliation': meta.get('reconciliation') or {'ok': None, 'differences': []},
            'agents': {'deployments': agents_summary.get('deployments'),
                       'succeeded': agents_summary.get('succeeded'),
                       'failed': agents_summary.get('failed') or [],
                       'not_eligible': agents_summary.get('not_eligible') or []},
            'cutover_at': meta.get('cutover_at'),
            'healing_fenced': meta.get('healing_fenced'),
            'steps': common.step_states(workspace),
            'next': 'cfy upgrade verify-heals --upgrade-id {0}'.format(workspace.upgrade_id),
            'left_to_do': [
                'Keep the old manager until `cfy upgrade verify-heals` is clean, then shut '
                'it down (or disconnect it from every network it heals on).']
            if mode == versions.MODE_NEW_HOST else []}


def result_lines(document):
    agents_doc = document['agents']
    lines = ['Upgrade {0}: restored on {1} {2}.'.format(
        document['upgrade_id'], document['target']['version'], document['target']['edition']),
        'Reconciliation: {0}.'.format('no difference' if document['reconciliation']['ok']
                                      else document['reconciliation']['differences']),
        'Agents: {0} of {1} deployment(s) moved.'.format(agents_doc['succeeded'],
                                                         agents_doc['deployments']),
        'Cut-over at {0}.'.format(document['cutover_at'])]
    lines.extend(document.get('left_to_do') or [])
    lines.append('Next: {0}'.format(document['next']))
    return lines
