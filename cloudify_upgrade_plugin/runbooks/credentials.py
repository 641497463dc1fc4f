"""Credentials around a restore: the admin password switch, and old users (issues 6, 7).

behaviour §3.8: after a >= 4.2 snapshot's restore the target's admin has the SOURCE admin's
password (REST restarted: after ``terminated`` on 4.2-4.5, in the workflow on 4.6+); Basic auth.
behaviour §7.2: 4.0/4.1 snapshots carry no hash salt: other users log in only once the source's
salts and keys are in the target's rest-security.conf (REST restarted), or after a reset.

Passwords come from the cfy profiles (or CLOUDIFY_*), never printed, journaled or written
(generated reset passwords excepted: written once to a 0600 file).
"""
import time
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import polling, profiles, restore_wait
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.runbooks.restore.base import restored_snapshot
from cloudify_upgrade_plugin.snapshot import archive


def restore_installs_source_admin(workspace, target_version) -> bool:
    """Does the restore of this upgrade give the target's admin the source admin's password?

    Recorded by start-restore (``restore_installs_source_admin``), else decided now from
    the ``metadata.json`` of the archive restored (``snapshot_metadata``) by
    ``versions.restore_installs_source_admin``: a >= 4.2 snapshot on the legacy route,
    behaviour §3.8, §12.1."""
    recorded = workspace.meta.get('restore_installs_source_admin')
    if recorded is not None:
        return bool(recorded)
    return versions.restore_installs_source_admin(target_version, snapshot_metadata(workspace))


def _restore_attempted(workspace) -> bool:
    """start-restore was journaled as started: a run killed inside it may have sent the
    restore request and died before recording its answer, and the restore then ran on
    the target all the same (found by issue 19's kill test with a 4.6 source)."""
    return any(entry['event'] == 'started'
               for entry in workspace.journal.step_entries('start-restore'))


def snapshot_metadata(workspace) -> dict:
    """``metadata.json`` of the archive restored (``restored_snapshot``: the route copy, else
    the prepared zip), or ``{'snapshot_version': ...}`` if the zip cannot be read."""
    snapshot = restored_snapshot(workspace)
    try:
        metadata = archive.read_member(workspace.path(snapshot['path']), 'metadata.json')
    except UpgradeError:
        metadata = None
    return metadata if isinstance(metadata, dict) else \
        {'snapshot_version': snapshot['snapshot_version']}


def source_admin_credentials(workspace, source_profile: Optional[str],
                             target_profile: Optional[str],
                             target_protocol: Optional[str]) -> Optional[Credentials]:
    """The source admin's credentials, when they may be sent to the target; else None.

    Only after this upgrade started, on that target, a restore whose route installs the
    source admin (behaviour §3.8, §12.1): before that the target never had that password, and
    sending it would only hand the old manager's password to another machine and count
    as a failed login.  Never over plain http when the source profile used https.
    """
    meta = workspace.meta
    if not source_profile or source_profile == target_profile:
        return None
    if not (meta.get('restore_execution_id') or _restore_attempted(workspace)) or \
            (meta.get('target') or {}).get('profile') not in (None, target_profile):
        return None
    target_version = (meta.get('target') or {}).get('version')
    if not target_version or not restore_installs_source_admin(workspace, target_version):
        return None
    source_address = (meta.get('source') or {}).get('address') or ''
    if source_address.startswith('https://') and (target_protocol or 'http') != 'https':
        get_logger().warning('The old manager\'s admin password is not sent to the target: '
                             'the old manager was reached over https, the target over %s.',
                             target_protocol or 'http')
        return None
    try:
        source = profiles.profile_credentials(source_profile, label='source')
    except Exception:
        return None
    return source if source.basic else None


def candidates(ctx, target: Optional[Manager] = None) -> List[Credentials]:
    """[Credentials]: the target profile's (label 'target'), then the source admin's when
    they may be sent to this target (``source_admin_credentials``)."""
    own = profiles.profile_credentials(ctx.target_profile, label='target')
    found = [own]
    target = target or ctx.target_manager
    source = source_admin_credentials(ctx.workspace, ctx.source_profile, ctx.target_profile,
                                      target.protocol if target is not None else None)
    if source is not None and source != own:
        found.append(source)
    return found


def logins(target: Manager, found: List[Credentials], source_first: bool) -> List[Manager]:
    """The target with each of ``found``, in the order to try (the source admin's first
    once the restore is expected to have installed them)."""
    managers = [target if c == target.credentials else target.with_credentials(c)
                for c in found if c.basic]
    if source_first:
        managers.sort(key=lambda m: m.credentials.label != 'source')
    return managers


def working(manager, found, wait=False) -> Optional[Manager]:
    """The manager with the first candidate credentials it accepts, or None.

    Every password sent stays within the failed-login budget (``manager/logins.py``): a
    candidate whose account has no failure left is skipped, not sent."""
    for credentials in found:
        if not credentials.basic:
            continue
        candidate = manager.with_credentials(credentials)
        try:
            if candidate.accepts_credentials():
                return candidate
        except UpgradeError:
            if not wait:
                raise
    return None


def wait_for_switch(target: Manager, found: List[Credentials], timeout, sleep=time.sleep,
                    clock=time.monotonic) -> Manager:
    """Wait until the source admin's credentials work (a legacy restore of a >= 4.2
    snapshot installs them after it ended, behaviour §3.8), never spending more than the
    failed-login budget.

    Each round tries the source admin's password once; when it is refused, the target
    profile's, which works until the post-restore commands replace the admin (and whose
    success resets the manager's count); when both are refused, no password is sent until
    the next round (``restore_wait.RELOGIN_DELAYS``, unauthenticated probes meanwhile).
    Progress is logged at least every 30 s; a clear error when neither works in time or
    the budget is spent.  With identical passwords on both managers the switch is
    invisible: the REST service answering with them is enough.
    """
    wanted = [c for c in found if c.label == 'source']
    if not wanted or target.credentials in wanted:
        return target
    others = [c for c in found if c not in wanted]
    deadline = clock() + timeout
    started = clock()
    said = started
    delay = 1.0
    refusals = 0
    last = 'no answer'
    logger = get_logger()
    while True:
        both_refused = False
        try:
            manager = working(target, wanted)
            if manager is not None:
                logger.info('The target accepts the %s admin credentials.',
                            manager.credentials.label)
                return manager
            last = 'the old admin\'s password is refused'
            still = working(target, others) if others else None
            both_refused = still is None
            if still is not None:
                last += ', the target profile\'s still works'
        except UpgradeError as error:
            if error.error_id == 'failed-logins-limit':
                raise _not_switched(target, timeout, error.message, error)
            last = error.message
        if both_refused:
            refusals += 1
        if clock() >= deadline:
            raise _not_switched(target, timeout, last)
        if clock() - said >= 30.0:
            said = clock()
            logger.info('Waiting for %s to take the old admin\'s password (%s), %s so far.',
                        target.label, last, polling.duration(clock() - started))
        if both_refused:
            pause = restore_wait.RELOGIN_DELAYS[
                min(refusals - 1, len(restore_wait.RELOGIN_DELAYS) - 1)]
            restore_wait.stay_quiet_probing(target, min(pause, max(0.0, deadline - clock())),
                                            clock=clock, sleep=sleep)
        else:
            sleep(delay)
            delay = min(delay * 1.5, 10.0)


def _not_switched(target, timeout, last, cause=None):
    return UpgradeError(
        'The target manager did not accept the source admin\'s credentials within {0}s '
        'after the restore ({1}).'.format(timeout, last),
        error_id='credentials-not-switched',
        details={'manager': target.label, 'cause': getattr(cause, 'error_id', None)},
        hints=['Check the manager host (`sudo systemctl status cloudify-restservice`) and '
               'the old manager\'s admin password in the source profile, then run the same '
               'command again to keep waiting.'] +
        (list(cause.possible_solutions) if cause is not None else []))


def follow(ctx) -> Tuple[Manager, bool]:
    """After a >= 4.2 restore: find the working credentials and update the target profile."""
    target = ctx.target_manager
    found = candidates(ctx, target)
    manager = None
    for candidate in logins(target, found, source_first=True):
        try:
            if candidate.accepts_credentials():
                manager = candidate
                break
        except UpgradeError as error:
            if error.error_id != 'failed-logins-limit':
                raise
    if manager is None:
        raise UpgradeError(
            'Neither the target profile\'s nor the source admin\'s credentials work on {0} '
            'after the restore.'.format(target.label), error_id='credentials-lost',
            hints=['Log in with the old manager\'s admin password and run `cfy profiles set '
                   '--manager-password ...` on the target profile, then re-run (with '
                   '--reset-failed-logins if the plugin stopped sending passwords).'])
    if manager.credentials.label == 'target':
        return manager, False
    if profiles.explicit_settings(ctx.target_profile) is None and \
            profiles.credentials_from_environment():
        get_logger().warning('The target now takes the old admin\'s password; the '
                             'CLOUDIFY_USERNAME/CLOUDIFY_PASSWORD variables you set must '
                             'be changed to it.')
        return manager, False
    profiles.store_credentials(ctx.target_profile, manager.credentials)
    get_logger().info('The restore installed the old admin\'s password on the target; '
                      'profile %s now uses it.', ctx.target_profile)
    return manager, True
