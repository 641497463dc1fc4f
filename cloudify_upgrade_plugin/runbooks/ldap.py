"""LDAP across the upgrade (behaviour §12.3): read on the source, applied (or told) on the target.

A restore never carries the LDAP settings: the ``config`` table is dumped from the target
before the snapshot's database is loaded and put back after (behaviour §12.3), so the LDAP
users it restores cannot log in until ``cfy ldap set`` has run on the new manager.

Owns: reading the source's settings (5.0.5+, ``GET /config?scope=rest``: the ``ldap_*``
rows) without ever keeping the bind password (``ldap_password`` is registered as a secret as
soon as it is read and dropped); the ``ldap`` check of ``plan`` and ``prepare``; the
``--ldap-bind-password-file`` / ``--ldap-ca-file`` input checks (exit 2 before anything
changes); the exact ``cfy ldap set`` command (options of cfy 7.0.5, the password left as a
placeholder); and the ``restore-ldap`` step: ``POST /ldap`` with the body ``cfy ldap set``
sends (cloudify-common@7.0.4 cloudify_rest_client/ldap.py ``set``) once everything it needs
is at hand - the bind password when the source binds with a user, the CA for an ``ldaps://``
server on 5.2+ targets - then a wait for the REST restart that follows and a check of the
target's settings.  Otherwise the step only records the command; the final output and the
report list it.
"""
import shlex
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import PASS, WARN
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep

# config key -> `cfy ldap set` option (cloudify-cli@7.0.4 cloudify_cli/cli/cfy.py ldap_*),
# in the order the command lists them; flags have no value.
OPTIONS = (('ldap_server', '-s'), ('ldap_username', '-u'), ('ldap_domain', '-d'),
           ('ldap_is_active_directory', '-a'), ('ldap_dn_extra', '-e'),
           ('ldap_base_dn', '--ldap-base-dn'), ('ldap_group_dn', '--ldap-group-dn'),
           ('ldap_bind_format', '--ldap-bind-format'),
           ('ldap_user_filter', '--ldap-user-filter'),
           ('ldap_group_member_filter', '--ldap-group-member-filter'),
           ('ldap_attribute_email', '--ldap-attribute-email'),
           ('ldap_attribute_first_name', '--ldap-attribute-first-name'),
           ('ldap_attribute_last_name', '--ldap-attribute-last-name'),
           ('ldap_attribute_uid', '--ldap-attribute-uid'),
           ('ldap_attribute_group_membership', '--ldap-attribute-group-membership'),
           ('ldap_nested_levels', '--ldap-nested-levels'))
FLAGS = ('ldap_is_active_directory',)
PASSWORD = 'ldap_password'
STATE_KEY = 'ldap'


# -- the source ---------------------------------------------------------------------------

def read_settings(manager) -> dict:
    """``{enabled, settings, binds_with_user, ldaps, note}`` of ``manager``; never the bind
    password.  ``enabled`` is None where the plugin does not read LDAP (before 5.0.5)."""
    if not versions.has_ldap_config(manager.version):
        return {'enabled': None, 'note': 'LDAP settings are read from 5.0.5 on ({0})'.format(
            manager.version)}
    try:
        rows = manager.config_items('rest')
    except UpgradeError as error:
        return {'enabled': None, 'note': 'the configuration could not be read: {0}'.format(
            error.message)}
    settings = {}
    for row in rows:
        name = str(row.get('name') or '')
        if not name.startswith('ldap_') or name == PASSWORD:
            if name == PASSWORD:
                register_secret(row.get('value'))
            continue
        if row.get('value') not in (None, ''):
            settings[name] = row['value']
    server = str(settings.get('ldap_server') or '')
    return {'enabled': bool(server), 'settings': settings if server else {},
            'binds_with_user': bool(settings.get('ldap_username')),
            'ldaps': server.startswith('ldaps://')}


def check_ldap(saved: dict, version) -> tuple:
    """``ldap`` (warn): LDAP on the source is not carried by the restore."""
    if saved.get('enabled') is None:
        return PASS, 'LDAP not checked: {0}.'.format(saved.get('note'))
    if not saved['enabled']:
        return PASS, 'LDAP is not used on this {0} manager.'.format(version)
    settings = saved['settings']
    return WARN, 'LDAP is enabled on this {0} manager (server {1}{2}). A restore does not ' \
                 'carry LDAP settings (behaviour §12.3): LDAP users cannot log in to the new ' \
                 'manager until they are set there. prepare saves them (never the bind ' \
                 'password); new-host / in-place apply them after the restore{3}, or print ' \
                 'the `cfy ldap set` command to run.'.format(
                     version, settings.get('ldap_server'),
                     ', bind user {0}'.format(settings['ldap_username'])
                     if saved.get('binds_with_user') else '',
                     ' with --ldap-bind-password-file FILE' if saved.get('binds_with_user')
                     else '') + (' The server is ldaps://: give its CA with --ldap-ca-file.'
                                 if saved.get('ldaps') else ''), \
        {'settings': settings}


# -- commands and bodies --------------------------------------------------------------------

def command(saved: dict) -> str:
    """The ``cfy ldap set`` command for the saved settings (password and CA as
    placeholders)."""
    settings = saved.get('settings') or {}
    parts = ['cfy', 'ldap', 'set']
    for key, option in OPTIONS:
        value = settings.get(key)
        if value in (None, '', False):
            continue
        if key in FLAGS:
            if str(value).lower() == 'true':
                parts.append(option)
            continue
        parts.extend([option, shlex.quote(str(value))])
        if key == 'ldap_username':
            parts.extend(['-p', '<bind password>'])
    if saved.get('ldaps'):
        parts.extend(['-c', '<the LDAP server\'s CA certificate file>'])
    return ' '.join(parts)


def request_body(saved: dict, password: Optional[str], ca_text: Optional[str]) -> dict:
    """The JSON ``cfy ldap set`` sends (every key, null when not set)."""
    settings = saved.get('settings') or {}
    body = {key: settings.get(key) for key, _ in OPTIONS}
    body['ldap_is_active_directory'] = str(
        settings.get('ldap_is_active_directory')).lower() == 'true'
    body['ldap_domain'] = settings.get('ldap_domain') or ''
    body['ldap_dn_extra'] = settings.get('ldap_dn_extra') or ''
    body[PASSWORD] = password
    if ca_text:
        body['ldap_ca_cert'] = ca_text
    return body


# -- input (exit 2 before anything changes) ---------------------------------------------------

def read_password_file(path) -> str:
    """The bind password: the file's first line (registered as a secret at once)."""
    text = _read(path, '--ldap-bind-password-file')
    password = text.splitlines()[0].strip() if text.strip() else ''
    if not password:
        raise InputError('--ldap-bind-password-file {0} is empty.'.format(path),
                         error_id='bad-ldap-input',
                         hints=['Put the LDAP bind password on the first line of the file.'])
    register_secret(password)
    return password


def read_ca_file(path) -> str:
    text = _read(path, '--ldap-ca-file')
    if 'BEGIN CERTIFICATE' not in text:
        raise InputError('--ldap-ca-file {0} holds no PEM certificate.'.format(path),
                         error_id='bad-ldap-input',
                         hints=['Give the PEM file of the CA that signed the LDAP server\'s '
                                'certificate.'])
    return text


def _read(path, option) -> str:
    try:
        with open(path, encoding='utf-8') as stream:
            return stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError('{0} {1} cannot be read: {2}.'.format(
            option, path, getattr(error, 'strerror', None) or error),
            error_id='bad-ldap-input', hints=['Give a readable file.'])


def validate_options(options, source_inventory: Optional[dict]) -> None:
    """--ldap-bind-password-file / --ldap-ca-file: readable, and only for a source with LDAP
    (``bad-ldap-input``, exit 2)."""
    given = [name for name, value in (('--ldap-bind-password-file',
                                       options.ldap_bind_password_file),
                                      ('--ldap-ca-file', options.ldap_ca_file)) if value]
    if not given:
        return
    saved = (source_inventory or {}).get('ldap') or {}
    if not saved.get('enabled'):
        raise InputError('{0} given, but {1}.'.format(
            ' and '.join(given), 'the source manager does not use LDAP'
            if saved.get('enabled') is False else 'prepare recorded no LDAP settings for '
            'this upgrade ({0})'.format(saved.get('note') or 'made by an older plugin')),
            error_id='bad-ldap-input', hints=['Leave the LDAP options out.'])
    if options.ldap_bind_password_file:
        read_password_file(options.ldap_bind_password_file)
    if options.ldap_ca_file:
        read_ca_file(options.ldap_ca_file)


# -- the step -------------------------------------------------------------------------------

def blocker(saved: dict, target, options) -> Optional[str]:
    """Why the saved settings cannot be applied by this run (None: they can)."""
    if getattr(target, 'edition', None) == 'community':
        return 'LDAP is a premium feature and the target is community'
    if versions.ldap_set_needs_clean_manager(target.version):
        return 'a {0} manager accepts LDAP settings only while it holds no user besides ' \
               'the admin, so not after the restore: set them on a fresh {0} install ' \
               'before the restore, or upgrade to 5.2+'.format(target.version)
    if saved.get('binds_with_user') and not options.ldap_bind_password_file:
        return 'the bind password is needed: give --ldap-bind-password-file FILE'
    if saved.get('ldaps') and versions.ldap_ca_as_certificate(target.version) and \
            not options.ldap_ca_file:
        return 'the server is ldaps://: give its CA with --ldap-ca-file FILE'
    return None


def applied(target, saved) -> bool:
    """The target's config holds the saved server (and bind user)."""
    current = read_settings(target)
    wanted = saved.get('settings') or {}
    return bool(current.get('enabled')) and all(
        (current.get('settings') or {}).get(key) == wanted.get(key)
        for key in ('ldap_server', 'ldap_username', 'ldap_domain'))


class RestoreLdap(RestoreStep):
    id = 'restore-ldap'
    title = 'Set the source\'s LDAP settings on the target (a restore does not carry them)'
    changes = 'the target\'s LDAP settings (POST /ldap restarts its REST service)'

    def _saved(self, ctx) -> dict:
        return (ctx.workspace.read_json('inventory/source.json') or {}).get('ldap') or {}

    def check(self, ctx) -> bool:
        saved = self._saved(ctx)
        return bool(saved.get('enabled')) and applied(ctx.target_manager, saved)

    def run(self, ctx) -> dict:
        saved = self._saved(ctx)
        logger = get_logger()
        if not saved.get('enabled'):
            state = {'enabled_on_source': saved.get('enabled'), 'applied': False,
                     'note': saved.get('note') or 'the source does not use LDAP'}
            ctx.workspace.update_meta(**{STATE_KEY: state})
            return state
        target = ctx.target_manager
        reason = blocker(saved, target, ctx.options)
        state = {'enabled_on_source': True, 'server': saved['settings'].get('ldap_server'),
                 'command': command(saved)}
        if reason:
            state.update(applied=False, reason=reason)
            ctx.workspace.update_meta(**{STATE_KEY: state})
            logger.warning('LDAP is not set on the new manager (%s). Run: %s', reason,
                           state['command'])
            return state
        password = read_password_file(ctx.options.ldap_bind_password_file) \
            if saved.get('binds_with_user') else None
        ca_text = read_ca_file(ctx.options.ldap_ca_file) \
            if saved.get('ldaps') and ctx.options.ldap_ca_file else None
        target.set_ldap(request_body(saved, password, ca_text))
        answer = waits.wait_for_rest(target, ctx.options.timeout)
        ctx.target_manager = answer.get('manager') or target
        state.update(applied=True, command=None)
        ctx.workspace.update_meta(**{STATE_KEY: state})
        logger.info('LDAP set on the new manager (server %s).', state['server'])
        return {'applied': True, 'server': state['server']}

    def verify(self, ctx) -> None:
        saved = self._saved(ctx)
        state = ctx.workspace.meta.get(STATE_KEY) or {}
        if state.get('applied') and not applied(ctx.target_manager, saved):
            raise UpgradeError('The new manager does not show the LDAP settings that were '
                               'just set (server {0}).'.format(state.get('server')),
                               error_id='ldap-not-set',
                               hints=['Check `cfy ldap status` on the new manager, then run '
                                      'the same command again.'])


def left_to_do(meta: dict) -> List[str]:
    """The LDAP line of what is left to do (empty when nothing is)."""
    state = meta.get(STATE_KEY) or {}
    if state.get('enabled_on_source') and not state.get('applied') and state.get('command'):
        return ['LDAP was not set on the new manager ({0}): run `{1}`.'.format(
            state.get('reason'), state['command'])]
    return []
