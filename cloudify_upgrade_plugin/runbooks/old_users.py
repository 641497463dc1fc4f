"""Old users after a restore (issues 6, 7): ``--users rest-security | reset-passwords | skip``.

behaviour §7.2: 4.0/4.1 snapshots carry no hash salt: their users log in on the target only
once the source's salts and keys are in its rest-security.conf (``put_rest_security``: the
admin password kept through a short-lived API token, the file staged privately over SSH),
or after their passwords are reset (``reset_passwords``: given in a file, or generated into
a 0600 file written once).  ``recover_lockout`` repairs what a run killed inside
restore-users left; ``validate_options`` checks the users options before anything changes.
"""
import json
import os
import secrets
from typing import Optional

from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.journal import LIFECYCLE_EVENTS
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.files import atomic_write
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import profiles, waits
from cloudify_upgrade_plugin.manager.retry import cause_of
from cloudify_upgrade_plugin.options import RestoreOptions
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.credentials import candidates, working

SECURITY_KEYS = ('hash_salt', 'secret_key', 'encoding_alphabet', 'encoding_block_size',
                 'encoding_min_length')
REST_SECURITY = '/opt/manager/rest-security.conf'
# The target's own rest-security.conf, kept on its host while the old values go in.
ORIGINAL = REST_SECURITY + '.cfy-upgrade-orig'
# How much longer than the waits the API token of restore-users lives (7.0).
TOKEN_MARGIN = 300


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
