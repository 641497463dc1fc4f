"""Upload the snapshot, start the restore and wait for it (and for what follows it).

Version rules (``versions``): the restore body per target (``Manager.restore_snapshot``);
after ``terminated`` the REST service restarts on 4.2-4.5 targets and the admin password
becomes the source admin's for snapshots that carry the passwords (behaviour §3.8); 5.0.5+
report the end of the post-restore work at ``snapshot-status`` (§2.3); certificates are
restored only in place (§3.8).

Failures and resumes: a restore execution that fails is recorded
(``failed_restore_execution_ids``) and reopens start-restore in the journal, so the next
run starts a new restore - only after checking that the target is still clean and runs no
restore.  A run that died inside start-restore adopts the restore it left on the target
(never a second one).  After ``terminated`` an announced outage (the 4.2-4.5 restart, the
reboot after restoring certificates) is watched for, never slept through
(``manager.waits``): it must begin within a grace (counted by the manager's clock from
the execution's end) and end within ``--timeout``; a resumed run waits for a target that
is still restarting.

Credentials (issue 14): the waits send the target profile's password, and the source
admin's only once this restore's route installs it (``credentials.candidates``); every
password stays within the failed-login budget (``manager/logins.py``), and when every one
is refused nothing is sent until the restore flag drops or a delay passed
(``manager/restore_wait.py`` ``LoginGate``).  5.0.5-6.1 targets get no request for 60 s
after the restore started, then slow polls (behaviour §12.7).  With
``--ignore-plugin-failure`` the deployments the restore skipped are read from its warnings
once it is over (``restore/plugins.py``).
"""
from typing import Optional

from cloudify_upgrade_plugin import clock, versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.checks import FAIL
from cloudify_upgrade_plugin.engine.journal import LIFECYCLE_EVENTS
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.manager.events import EventPrinter
from cloudify_upgrade_plugin.runbooks import common, credentials
from cloudify_upgrade_plugin.runbooks.restore import plugins
from cloudify_upgrade_plugin.runbooks.restore.base import (
    RestoreStep, prepared_snapshot, restored_snapshot)
from cloudify_upgrade_plugin.runbooks.restore.checks import target_not_clean
from cloudify_upgrade_plugin.runbooks.restore.route import explain_restore_failure
from cloudify_upgrade_plugin.snapshot import transfer


class UploadSnapshot(RestoreStep):
    id = 'upload-snapshot'
    title = 'Upload the snapshot'
    changes = 'adds the snapshot to the target manager'

    def check(self, ctx) -> bool:
        status = common.snapshot_status(ctx.target_manager,
                                        restored_snapshot(ctx.workspace)['id'])
        return status in ('uploaded', 'created')

    def run(self, ctx) -> dict:
        snapshot = restored_snapshot(ctx.workspace)
        path = ctx.workspace.path(snapshot['path'])
        params = None
        target = ctx.target_manager
        if versions.upload_needs_private_resource(target.version):
            params = {'private_resource': 'false'}
        try:
            transfer.upload_snapshot(target.connection(), snapshot['id'], path, params=params,
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

    def check(self, ctx) -> bool:
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
        execution = _restore_execution(ctx)
        if execution is not None and execution['id'] not in failed:
            ctx.workspace.update_meta(restore_execution_id=execution['id'])
            get_logger().info('Restore execution %s found on the target: adopted.',
                              execution['id'])
            return True
        return False

    def run(self, ctx) -> dict:
        snapshot = restored_snapshot(ctx.workspace)
        target = ctx.target_manager
        failed = ctx.workspace.meta.get('failed_restore_execution_ids') or []
        attempts = [e for e in ctx.workspace.journal.step_entries(self.id)
                    if e['event'] == 'started']
        if failed or len(attempts) > 1:
            # a failed restore, or a run that died in here without a trace on the target
            _ready_for_another_restore(ctx, target, snapshot, failed)
        certificates = ctx.mode.restores_certificates(snapshot)
        # behaviour §3.8, §12.1: whether this restore gives the admin the source's password
        # decides which passwords the waits may send (recorded before the restore starts)
        ctx.workspace.update_meta(restore_installs_source_admin=(
            versions.restore_installs_source_admin(
                target.version, credentials.snapshot_metadata(ctx.workspace))))
        execution_id = target.restore_snapshot(
            snapshot['id'], restore_certificates=certificates,
            force=False, snapshot_version=snapshot['snapshot_version'],
            ignore_plugin_failure=ctx.options.ignore_plugin_failure)
        ctx.workspace.update_meta(restore_execution_id=execution_id,
                                  restore_started_at=clock.isoformat(), restore_outage_seen=None,
                                  restore_ended_seen_at=None)
        get_logger().info('Restore started (execution %s%s).', execution_id,
                          ', with certificates' if certificates else '')
        return {'execution_id': execution_id, 'attempt': len(failed) + 1,
                'previous_failed': list(failed)}


def _last_lifecycle_event(workspace, step_id):
    events = [e['event'] for e in workspace.journal.step_entries(step_id)
              if e['event'] in LIFECYCLE_EVENTS]
    return events[-1] if events else None


def _ready_for_another_restore(ctx, target, snapshot, failed):
    """After a failed restore: refuse a new one unless the target is as it was before."""
    logger = get_logger()
    logger.info('%s; checking that the target is unchanged before starting the restore.',
                'Restore execution(s) {0} failed earlier'.format(', '.join(failed)) if failed
                else 'An earlier run stopped while starting the restore')
    running = [e for e in target.list_all(
        'executions', workflow_id='restore_snapshot', include=['id', 'status'],
        status=versions.active_execution_states(target.version)) if e['id'] not in failed]
    if running:
        raise UpgradeError(
            'A restore is already running on {0} ({1}).'.format(
                target.label, ', '.join(e['id'] for e in running)),
            error_id='restore-running',
            hints=['Wait for it to end, then run the same command again.'])
    status, message = target_not_clean(target)[:2]
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
    more, route_hints = explain_restore_failure(str(reason))
    return UpgradeError(
        '{0}{1} No agent was touched and the old manager is unchanged.'.format(
            error.message, more),
        error_id='restore-failed',
        details={'execution_id': execution_id, 'error': str(reason)[-2000:]},
        hints=route_hints + list(error.possible_solutions) +
        plugins.restore_failure_hints(ctx.target_manager, reason) + [
            'Fix the cause on the new manager (the restore\'s events say what it was), then '
            'run the same command again: it checks that the new manager is still clean and '
            'starts a new restore (the failed one is recorded in the journal).',
            'If the failed restore left data on the new manager, reinstall it first.'])


def _restore_execution(ctx):
    """The restore execution of this upgrade's snapshot on the target, if any.  The restore
    a killed run started may switch the admin's password while this looks (4.6+ do it
    inside the workflow, behaviour §3.8): refused, the source admin's are tried (issue 19's
    kill test found it)."""
    snapshot_id = restored_snapshot(ctx.workspace)['id']
    try:
        return common.snapshot_execution(ctx.target_manager, snapshot_id,
                                         workflow='restore_snapshot')
    except UpgradeError as error:
        if error.error_id != 'manager-auth-failed':
            raise
        found = sorted(credentials.candidates(ctx), key=lambda c: c.label != 'source')
        target = credentials.working(ctx.target_manager, found)
        if target is None:
            raise
    ctx.target_manager = target
    return common.snapshot_execution(target, snapshot_id, workflow='restore_snapshot')


class WaitRestore(RestoreStep):
    id = 'wait-restore'
    title = 'Wait for the restore, the REST restart and any reboot'

    def run(self, ctx) -> dict:
        meta = ctx.workspace.meta
        execution_id = meta['restore_execution_id']
        snapshot = prepared_snapshot(ctx.workspace)
        timeout = ctx.options.timeout
        target = ctx.target_manager
        installs_admin = credentials.restore_installs_source_admin(ctx.workspace,
                                                                   target.version)
        found = credentials.candidates(ctx, target)
        current = {'manager': target}

        def logins(how):
            # behaviour §3.8: 4.6+ change the admin password inside the workflow: once the
            # restore flag dropped, the password it installs first, then the profile's;
            # without a flag, one password per delay (the failed-login budget, §12.10)
            ordered = credentials.logins(target, found, source_first=installs_admin)
            return ordered if how == 'flag' else ordered[:1]
        try:
            # behaviour §12.7: nothing is sent to a 5.0.5-6.1 target while it swaps its
            # database, then it is polled slowly; the restore's events are shown where that
            # cannot harm it (its warnings are read once it is over: ``plugins.record_skipped``)
            execution = waits.wait_for_restore(
                target, execution_id, timeout, started_at=meta.get('restore_started_at'),
                logins=logins, on_switch=lambda m: current.update(manager=m),
                on_event=EventPrinter(execution_id))
        except UpgradeError as error:
            if error.error_id in ('execution-failed', 'execution-cancelled'):
                raise _restore_failed(ctx, execution_id, error)
            if error.error_id == 'execution-timeout' and not target.rest_answers()[0]:
                raise _not_back(target, timeout, execution_id, error, snapshot, ctx)
            if error.error_id in ('credentials-refused', 'failed-logins-limit'):
                raise _credentials_refused(ctx, target, execution_id, error, installs_admin,
                                           found)
            raise
        target = current['manager']
        post = post_restore_expectations(target.version, snapshot['snapshot_version'],
                                         ctx.mode.restores_certificates(snapshot),
                                         installs_admin=installs_admin)
        outage = outage_after_terminated(target.version, post)
        ended_seen = meta.get('restore_ended_seen_at') or clock.isoformat()
        if not meta.get('restore_ended_seen_at'):
            ctx.workspace.update_meta(restore_ended_seen_at=ended_seen)
        if outage and meta.get('restore_outage_seen') is None:
            # never a fixed sleep: see the outage begin, then wait for its end below.  Only
            # what is left of the grace since the restore ended is waited (a resumed run may
            # come long after the outage, while no process was watching)
            ago = waits.ended_ago(target, execution)
            grace = waits.outage_grace(
                timeout, ago if ago is not None else clock.seconds_since(ended_seen),
                by_manager_clock=ago is not None,
                reboot_imminent=(lambda: ctx.mode.certificate_differences(ctx, target) == [])
                if post['reboot'] else None)
            seen = waits.wait_for_outage(target, grace) if grace > 0 else False
            ctx.workspace.update_meta(restore_outage_seen=seen)
        if post['flag']:
            waits.wait_for_restore_flag(target, timeout, **waits.restore_pace(target))
        ordered = credentials.logins(target, found, source_first=post['credentials_change'])
        if outage or post['restart']:
            answer = waits.wait_for_rest(ordered[0], timeout, alternatives=ordered[1:])
            target = answer.get('manager') or target
        if post['credentials_change'] and len(found) > 1:
            target = credentials.wait_for_switch(target, found, timeout)
        ctx.target_manager = target
        health = waits.wait_until_healthy(target, min(float(timeout), waits.HEALTH_GRACE))
        ctx.workspace.update_meta(target_health=health)
        if health != 'ok':      # waits logged it as it happened
            notices.warn(ctx.workspace, 'target-services-degraded',
                         '{0} reports services not running after the restore ({1}).'.format(
                             target.label, health), self.id, announce=False)
        details = {'execution_id': execution_id, 'post_restore': post, 'health': health,
                   'outage': outage and ctx.workspace.meta.get('restore_outage_seen')}
        if ctx.options.ignore_plugin_failure:
            details['skipped_deployments'] = plugins.record_skipped(ctx, target, execution_id)
        if post['reboot']:
            details['certificates'] = ctx.mode.confirm_certificates(ctx, target)
        return details


def post_restore_expectations(target, snapshot, certificates: bool,
                              installs_admin: Optional[bool] = None) -> dict:
    """What happens after the restore execution ends, per target version (behaviour §3.8).

    ``installs_admin``: whether the restore's route installs the source admin
    (``versions.restore_installs_source_admin``; None: decided by the snapshot version
    alone, as before 7.0's per-entity route)."""
    passwords = versions.snapshot_carries_passwords(snapshot) if installs_admin is None \
        else bool(installs_admin)
    return {'credentials_change': passwords,
            'restart': passwords or certificates,
            'reboot': certificates,
            'flag': versions.reports_restore_flag(target)}


def outage_after_terminated(target, post: dict) -> bool:
    """behaviour §3.8: the reboot after moving certificates; the REST restart of the detached
    post-restore shell on 4.2-4.5 targets (4.6+ restart inside the workflow)."""
    return bool(post['reboot'] or (post['credentials_change'] and
                                   versions.restarts_rest_after_restore(target)))


def _credentials_refused(ctx, target, execution_id, error, installs_admin, found):
    """Every password the plugin may send is refused while (or after) the restore runs."""
    snapshot_version = prepared_snapshot(ctx.workspace)['snapshot_version']
    hints = []
    if installs_admin:
        message = ('{0} refuses the credentials of profile {1} while restore execution {2} '
                   'runs: a restore of a {3} snapshot gives the admin the OLD manager\'s '
                   'password{4}.'.format(
                       target.label, ctx.target_profile, execution_id, snapshot_version,
                       ', which is refused too' if len(found) > 1 else ''))
        error_id = 'credentials-changed-by-restore'
        hints.append('Set the old manager\'s admin password on the profile: `cfy profiles '
                     'set --manager-password <old admin password> '
                     '--skip-credentials-validation`, then run the same command again (the '
                     'restore is not started again).')
    else:
        message = ('{0} refuses the credentials of profile {1} while restore execution {2} '
                   'runs; this restore does not change the admin password.'.format(
                       target.label, ctx.target_profile, execution_id))
        error_id = 'credentials-refused'
        hints.append('Check the admin password of profile {0} (`cfy profiles set '
                     '--manager-password ...`), then run the same command again (the '
                     'restore is not started again).'.format(ctx.target_profile))
    if error.error_id == 'failed-logins-limit':
        message += ' ' + error.message
        hints.append('Add --reset-failed-logins to that command once the password is '
                     'right: the plugin stopped sending it to stay clear of the account '
                     'lock.')
    return UpgradeError(message, error_id=error_id, details=error.details, hints=hints)


def _not_back(target, timeout, execution_id, error, snapshot, ctx):
    """The manager went away while the restore ran and did not come back in time."""
    reboot = ctx.mode.restores_certificates(snapshot)
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
