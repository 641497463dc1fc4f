"""Credentials around a restore: the admin password switch, and old users (issues 6, 7).

behaviour §3.8: after a >= 4.2 snapshot's restore the target's admin has the SOURCE admin's
password (REST restarted: after ``terminated`` on 4.2-4.5, in the workflow on 4.6+); Basic auth.
behaviour §7.2: 4.0/4.1 snapshots carry no hash salt: other users log in only once the source's
salts and keys are in the target's rest-security.conf (REST restarted), or after a reset.

Passwords come from the cfy profiles (or CLOUDIFY_*), never printed, journaled or written
(generated reset passwords excepted: written once to a 0600 file).
"""
import json
import os
import secrets
import time
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.journal import LIFECYCLE_EVENTS
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import polling, profiles, restore_wait, waits
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.retry import cause_of
from cloudify_upgrade_plugin.options import RestoreOptions
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.restore.base import restored_snapshot
from cloudify_upgrade_plugin.snapshot import archive

SECURITY_KEYS = ('hash_salt', 'secret_key', 'encoding_alphabet', 'encoding_block_size',
                 'encoding_min_length')
REST_SECURITY = '/opt/manager/rest-security.conf'
# The target's own rest-security.conf, kept on its host while the old values go in.
ORIGINAL = REST_SECURITY + '.cfy-upgrade-orig'
# How much longer than the waits the API token of restore-users lives (7.0).
TOKEN_MARGIN = 300


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


# -- old users (pre-4.2 snapshots) ------------------------------------------------------

def users_policy(ctx) -> Optional[str]:
    """--users, or for in-place (prepare always backs rest-security.conf up there, and the
    procedure step I4 puts it back) 'rest-security' by default; None = not chosen."""
    return ctx.options.users or ctx.mode.default_users_policy


def restore_users(ctx) -> dict:
    source = ctx.workspace.read_json('inventory/source.json') or {}
    users = [u for u in (source.get('users') or []) if u != 'admin']
    if not users:
        return {'users': 'none besides the admin'}
    policy = users_policy(ctx)
    if policy is None:   # check-target blocked already unless the check was waived
        policy = 'skip'
    if policy == 'skip':
        ctx.workspace.journal.append('restore-users', 'waived', {
            'check': 'users-policy', 'reason': '--users skip', 'users': users})
        notices.warn(ctx.workspace, 'users-policy',
                     'Old users were not restored (--users skip): {0} user(s) need a '
                     'password reset.'.format(len(users)), 'restore-users')
        return {'users': 'skipped', 'count': len(users)}
    if policy == 'rest-security':
        return put_rest_security(ctx)
    return reset_passwords(ctx, users)


def put_rest_security(ctx) -> dict:
    """Put the source's salt and keys into the target's rest-security.conf, keeping the admin.

    A pre-4.2 restore keeps the target's admin row, whose password hash was made with the
    target's salt (behaviour §3.8, §7.2): swapping the salt alone would lock the admin out.  So:
    (0) keep the target's own file next to it on the host (ORIGINAL; no secret leaves the
    host), (1) take an API token (signed with the *current* secret_key, or a 7.0 DB token,
    neither depends on the salt), (2) install the source hash_salt and restart, (3) with the
    token, set the admin's password again so it is hashed with the new salt, (4) install the
    source secret_key and encoding_* and restart, (5) check the admin logs in, (6) remove
    ORIGINAL.  A run killed between (2) and (3) leaves the admin locked out (the token died
    with it): the next run puts ORIGINAL back and does it again (``recover_lockout``, and
    here when the REST service had not loaded the new salt yet).
    """
    backup = ctx.workspace.path(os.path.join('backups', 'rest-security.conf'))
    if not os.path.isfile(backup):
        raise UpgradeError('No rest-security.conf backup in upgrade {0}.'.format(
            ctx.workspace.upgrade_id), error_id='rest-security-backup-missing',
            hints=['It is taken by prepare over SSH; without it use --users '
                   'reset-passwords.'])
    with open(backup, 'rb') as stream:
        source_conf = json.loads(stream.read().decode('utf-8'))
    timeout = ctx.options.timeout
    target = ctx.target_manager
    found = candidates(ctx)
    logger = get_logger()
    with common.open_host(target) as host:
        _private_staging(host, ctx.workspace)
        current = _read_conf(host, REST_SECURITY)
        if current.get('hash_salt') == source_conf.get('hash_salt') and \
                host.file_exists(ORIGINAL, sudo=True):
            # an earlier run swapped the salt and stopped: make the file's values the running
            # ones, then see whether it re-hashed the admin password too
            host.systemctl('restart', 'cloudify-restservice', check=True)
            waits.wait_for_rest(target, timeout)
            if working(target, found, wait=True) is None:
                logger.warning('An interrupted run installed the old hash salt but did not '
                               're-hash the admin password; putting the original values '
                               'back and doing it again.')
                _put_bytes(host, host.read_file(ORIGINAL, sudo=True), REST_SECURITY)
                host.systemctl('restart', 'cloudify-restservice', check=True)
                waits.wait_for_rest(target, timeout)
                current = _read_conf(host, REST_SECURITY)
        manager = working(target, found, wait=True)
        if manager is None:
            raise UpgradeError(
                'No known admin password works on {0}; the old users cannot be restored '
                'safely.'.format(target.label), error_id='admin-locked-out',
                hints=['Set the admin password on the target profile (`cfy profiles set '
                       '--manager-password`), then re-run.'])
        description = token_description(ctx)
        _revoke_leftovers(manager, description)      # of a run killed while it held one
        if current.get('hash_salt') != source_conf.get('hash_salt'):
            if not host.file_exists(ORIGINAL, sudo=True):
                host.run(['cp', '-p', REST_SECURITY, ORIGINAL], sudo=True)
            # a token is signed with the *current* secret_key (4.x-6.x) or kept in the DB
            # (7.0): neither depends on the salt about to change.  On 7.0 it expires by
            # itself and is revoked as soon as it has served (manager/tokens.py).
            token = manager.create_token(description, lifetime=timeout + TOKEN_MARGIN)
            token_manager = manager.with_token(token)
            try:
                _install(host, current, {'hash_salt': source_conf['hash_salt']})
                waits.wait_for_rest(token_manager, timeout)
                token_manager.set_password(
                    manager.username, manager.credentials.password,
                    what='re-hashing the admin password with the old salt')
            finally:
                _revoke(token_manager, token)
            logger.info('Old hash salt installed; the admin password was re-hashed with it.')
            current = _read_conf(host, REST_SECURITY)
        keys = {key: source_conf[key] for key in SECURITY_KEYS[1:] if key in source_conf}
        if any(current.get(key) != value for key, value in keys.items()):
            _install(host, current, keys)
        result = waits.wait_for_rest(manager, timeout)
        if not result.get('auth_ok'):
            raise UpgradeError(
                'After the old rest-security values were installed the admin cannot log in '
                'on {0}.'.format(manager.label), error_id='admin-locked-out',
                hints=['The manager\'s own values are kept on its host in {0}: put that '
                       'file back as {1}, restart cloudify-restservice, then re-run.'.format(
                           ORIGINAL, REST_SECURITY)])
        host.run(['rm', '-f', ORIGINAL], sudo=True)
    ctx.target_manager = manager
    return {'users': 'rest-security', 'keys': [k for k in SECURITY_KEYS if k in source_conf]}


def token_description(ctx) -> str:
    """How the API token restore-users takes is described on the target (found again and
    revoked by the next run if this one is killed while it holds it)."""
    return 'cfy upgrade {0} restore-users'.format(ctx.workspace.upgrade_id)


def _revoke(token_manager, token) -> None:
    """Revoke the token with itself (the admin may be locked out at this point); a failure
    is logged, not raised: the token expires anyway and the next run looks for it."""
    try:
        if token_manager.revoke_token(token):
            get_logger().debug('The API token taken for restore-users was revoked.')
    except UpgradeError as error:
        get_logger().warning('The API token taken for restore-users could not be revoked '
                             '(%s); it expires by itself and the next run revokes it.',
                             error.message)


def _revoke_leftovers(manager, description) -> None:
    try:
        count = manager.revoke_tokens(description)
    except UpgradeError as error:
        get_logger().warning('Could not look for API tokens an interrupted run left on %s: '
                             '%s', manager.label, cause_of(error))
        return
    if count:
        get_logger().info('Revoked %d API token(s) an interrupted run had left on %s.',
                          count, manager.label)


def recover_lockout(workspace, profile_name) -> bool:
    """Undo a salt swap a killed run left half done (admin locked out); True if it did.

    Only while restore-users has started and not finished, and only when the target host
    still holds its original rest-security.conf (ORIGINAL) with another salt: that file is
    put back and the REST service restarted; restore-users then does the swap again.
    """
    events = [e['event'] for e in workspace.journal.step_entries('restore-users')
              if e['event'] in LIFECYCLE_EVENTS]
    if not events or events[-1] not in ('started', 'failed'):
        return False
    profile = profiles.profile_context(profile_name)
    if not (getattr(profile, 'ssh_user', None) and getattr(profile, 'ssh_key', None)):
        return False
    with Host.from_profile(profile) as host:
        _private_staging(host, workspace)
        if not host.file_exists(ORIGINAL, sudo=True):
            return False
        original = host.read_file(ORIGINAL, sudo=True)
        current = _read_conf(host, REST_SECURITY)
        if json.loads(original.decode('utf-8')).get('hash_salt') == current.get('hash_salt'):
            return False
        _put_bytes(host, original, REST_SECURITY)
        host.systemctl('restart', 'cloudify-restservice', check=True)
    get_logger().warning('The target refused every known admin password: a run killed while '
                         'restoring the old users had installed the old hash salt only. The '
                         'manager\'s original rest-security values are back; that step is '
                         'done again.')
    return True


def _read_conf(host, path):
    return json.loads(host.read_file(path, sudo=True).decode('utf-8'))


def _install(host, current, values):
    merged = dict(current)
    merged.update(values)
    _put_bytes(host, json.dumps(merged, indent=4).encode('utf-8'), REST_SECURITY)
    host.systemctl('restart', 'cloudify-restservice', check=True)


def _private_staging(host, workspace) -> None:
    """Name this upgrade's staged copies after it, and remove those a killed run left on the
    host (rest-security values: issue 17 item 2)."""
    host.stage_tag = workspace.upgrade_id
    host.clean_staging(remotes=[REST_SECURITY])


def _put_bytes(host, data, remote):
    """Write `data` to `remote` as root (0600, cfyuser): no local copy; on the host a file
    private from its first byte in a private directory (``Host.write``)."""
    host.write(data, remote, mode=0o600, sudo=True, owner='cfyuser')


def validate_options(options: RestoreOptions) -> None:
    """Refuse unusable --users / --passwords-file input before anything is changed."""
    path = options.passwords_file
    if not path:
        return
    if options.users != 'reset-passwords':
        raise InputError('--passwords-file is only read with --users reset-passwords.',
                         error_id='passwords-file-unused',
                         hints=['Add --users reset-passwords, or drop --passwords-file.'])
    _read_passwords_file(path)


def _read_passwords_file(path):
    passwords = {}
    try:
        with open(path) as stream:
            for number, line in enumerate(stream, 1):
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                if ':' not in line:
                    raise InputError('{0}:{1}: expected "user: password".'.format(
                        path, number), error_id='bad-passwords-file',
                        hints=['One "user: password" per line.'])
                user, password = line.split(':', 1)
                passwords[user.strip()] = password.strip()
    except OSError as error:
        raise InputError('Cannot read --passwords-file {0}: {1}'.format(path, error.strerror),
                         error_id='bad-passwords-file', hints=['Check the path.'])
    return passwords


def reset_passwords(ctx, users) -> dict:
    """Set new passwords through the REST API (given, or generated into a 0600 file)."""
    target = ctx.target_manager
    path = ctx.options.passwords_file
    passwords = _read_passwords_file(path) if path else {}
    generated = {}
    for user in users:
        if user not in passwords:
            generated[user] = passwords[user] = secrets.token_urlsafe(16)
    for password in passwords.values():
        register_secret(password)
    written = None
    if generated:
        written = ctx.workspace.path('new-user-passwords.txt')
        atomic_write(written, ''.join('{0}: {1}\n'.format(u, p)
                                      for u, p in sorted(generated.items())))
    for user in users:
        target.set_password(user, passwords[user])
    get_logger().info('New passwords set for %d user(s)%s.', len(users),
                      '; generated ones are in {0} (0600)'.format(written) if written else '')
    return {'users': 'reset-passwords', 'count': len(users),
            'generated_file': 'new-user-passwords.txt' if written else None}
