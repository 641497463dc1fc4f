"""The manager's ``config`` table (scope ``rest``, 5.0+) and LDAP: ``GET /config[?scope=]``,
``GET /config/<[scope.]name>``, ``GET /ldap`` (``"enabled"`` / ``"disabled"``) and
``POST /ldap`` as ``cfy ldap set`` 7.0.5 sends it.

The table lives in ``Store.config`` (``{(scope, name): row}``), outside the snapshot data: a
legacy restore dumps the target's ``config`` table before loading the snapshot and reloads it
after (behaviour §12.3, MGR@4.6..7.0.4 snapshots/postgres.py ``_CONFIG_TABLES``), so LDAP
settings never travel with a snapshot.  Sources: MGR@7.0.4 migrations
423a1643f365_4_6_to_5_0 (the rows), rest/resources_v3_1/manager_config.py, rest/resources_v3/
manager.py ``LdapAuthentication``; MGR@5.0.5 / 5.2.0 for the older rules.

``mgr.ldap_reachable = False`` makes the bind that validates a username fail.
"""
from tests.simulator import data as datamod
from tests.simulator.api import ApiError, _bool, bad, route

# (name, default, schema, is_editable) of the scope-rest rows (MGR@7.0.4 migration
# 423a1643f365_4_6_to_5_0 upgrade(); the LDAP keys per version from rules.ldap_config_keys)
_REST_ROWS = (
    ('rest_service_log_path', '/var/log/cloudify/rest/cloudify-rest-service.log', None,
     False),
    ('rest_service_log_level', 'INFO', {'type': 'string', 'enum': ['CRITICAL', 'ERROR',
                                                                   'WARNING', 'INFO',
                                                                   'DEBUG']}, True),
    ('file_server_root', '/opt/manager/resources', None, False),
    ('file_server_url', 'http://127.0.0.1:53333/resources', None, False),
    ('insecure_endpoints_disabled', True, {'type': 'boolean'}, False),
    ('maintenance_folder', '/opt/manager/maintenance', None, False),
    ('min_available_memory_mb', 100, {'type': 'number', 'minimum': 0}, True),
    ('failed_logins_before_account_lock', 4, {'type': 'number', 'minimum': 1}, True),
    ('account_lock_period', -1, {'type': 'number', 'minimum': -1}, True),
    ('public_ip', None, None, False),
    ('default_page_size', 1000, {'type': 'number', 'minimum': 1}, True),
)
_LDAP_DEFAULTS = {'ldap_timeout': (5.0, {'type': 'number'}),
                  'ldap_nested_levels': (1, {'type': 'number', 'minimum': 1}),
                  'ldap_is_active_directory': (None, {'type': 'boolean'}),
                  'ldap_dn_extra': (None, None)}
_ADMIN_ONLY = ('ldap_username', 'ldap_password')       # MGR migration 272e61bf5f4a (6.4)
_ROLES = ('sys_admin', 'manager', 'user', 'operations', 'viewer', 'default')


def seed_config(store, rules):
    """The rows a fresh install writes (5.0+)."""
    store.config = {}
    if not rules.has_config_table:
        return
    rows = list(_REST_ROWS)
    for name in rules.ldap_config_keys:
        default, schema = _LDAP_DEFAULTS.get(name, (None, {'type': 'string'}))
        rows.append((name, default, schema, True))
    for name, value, schema, editable in rows:
        store.config[('rest', name)] = {
            'name': name, 'value': value, 'schema': schema, 'is_editable': editable,
            'admin_only': rules.config_admin_only and name in _ADMIN_ONLY,
            'updated_at': None, 'scope': 'rest', 'updater_name': None}


def config_value(mgr, name, scope='rest', default=None):
    """A value of the config table (e.g. failed_logins_before_account_lock)."""
    row = getattr(mgr.store, 'config', {}).get((scope, name))
    return default if row is None else row['value']


def _row_out(api, ctx, row):
    out = {k: v for k, v in row.items() if k != 'admin_only' or api.rules.config_admin_only}
    if row.get('admin_only') and not ctx.is_admin:
        out['value'] = '********'            # ManagerConfig._get_items for non-admins
    return out


@route('GET', r'/config', scoped=False, when='has_config_table')
def config_list(api, ctx):
    """MGR@5.0.5 / 7.0.4 ManagerConfig.get: {"metadata": {}, "items": [...]} (+
    "authorization" without a scope or with scope=authorization)."""
    scope = ctx.request.arg('scope')
    with api.store.lock:
        rows = [_row_out(api, ctx, row) for row in api.store.config.values()
                if not scope or row['scope'] == scope]
    out = {'metadata': {}, 'items': rows}
    if not scope or scope == 'authorization':
        out['authorization'] = {'roles': [{'name': r, 'type': 'system_role' if r in (
            'sys_admin', 'default') else 'tenant_role'} for r in _ROLES],
            'permissions': {}}
    return 200, out


@route('GET', r'/config/(?P<name>[^/]+)', scoped=False,
       when='has_config_table')
def config_get(api, ctx, name):
    """ManagerConfigId.get: `name` or `scope.name`; 404 names the key."""
    scope, _, key = name.rpartition('.')
    with api.store.lock:
        rows = [row for (s, n), row in api.store.config.items()
                if n == key and (not scope or s == scope)]
        if not rows:
            raise ApiError(404, 'not_found_error', key)
        if len(rows) > 1:
            raise ApiError(400, 'ambiguous_name',
                           'Expected 1 value, but found {0}'.format(len(rows)))
        return 200, _row_out(api, ctx, rows[0])


@route('GET', r'/ldap', scoped=False, when='has_ldap_status')
def ldap_status(api, ctx):
    """LdapAuthentication.get (MGR@4.6..7.0.4): 'enabled' if ldap_server is set."""
    return 200, 'enabled' if config_value(api.mgr, 'ldap_server') else 'disabled'


def _validate(api, ctx, body):
    """_validate_set_ldap_request (MGR@5.0.5 / 5.2.0 / 7.0.4)."""
    rules = api.rules
    if rules.edition != 'premium':
        raise ApiError(405, 'method_not_allowed_error',
                       'LDAP is only supported in the Cloudify premium edition.')
    if rules.ldap_clean_manager_only:
        with api.store.lock:
            others = [u for u in api.store.users.values() if u['id'] != 0]
        if others:
            raise ApiError(405, 'method_not_allowed_error',
                           'LDAP Configuration may be set only on a clean manager.')
    required = ('ldap_server', 'ldap_domain') if rules.ldap_url_rules else \
        ('ldap_server', 'ldap_domain', 'ldap_dn_extra')
    for name in required:
        if name not in body:
            raise bad('Missing {0} in json request body'.format(name))
    known = set(rules.ldap_config_keys) | {'ldap_ca_cert'}
    config = {k: v for k, v in body.items() if k in known}
    if rules.ldap_url_rules:
        try:
            config['ldap_nested_levels'] = int(config.get('ldap_nested_levels') or 1)
        except (TypeError, ValueError):
            raise bad('invalid parameter, should be int, got: {0}'.format(
                config.get('ldap_nested_levels')))
        config = {k: ('' if v is None else v) for k, v in config.items()}
    config['ldap_is_active_directory'] = _bool(
        'ldap_is_active_directory', config.get('ldap_is_active_directory') or False)
    server = str(config.get('ldap_server') or '')
    if rules.ldap_url_rules:
        if server.startswith('ldaps://'):
            if 'ldap_ca_cert' not in config:
                raise bad('A CA certificate must be provided to use ldaps.')
        elif server.startswith('ldap://'):
            if 'ldap_ca_cert' in config:
                raise bad('CA certificate cannot be provided when not using ldaps.')
        else:
            raise bad('ldap_server must specify protocol and should specify port, e.g. '
                      'ldap://192.0.2.1:389 or ldaps://192.0.2.45:636')
    user, password = config.get('ldap_username'), config.get('ldap_password')
    if (user or password) and not (user and password):
        raise bad('Must supply either both username and password or neither. Note that an '
                  'empty username or password is invalid')
    return config


@route('POST', r'/ldap', scoped=False, when='has_ldap_set', admin=True,
       action='ldap_set')
def ldap_set(api, ctx):
    """LdapAuthentication.post: validate, write the config table, bind when a username is
    given (400 on failure, the old values kept), restart the REST service, answer the
    settings without the password (the response class is closed premium code [U])."""
    from tests.simulator.workflows import REST_RESTART_OUTAGE
    mgr = api.mgr
    config = _validate(api, ctx, api.json_body(ctx))
    ca = config.pop('ldap_ca_cert', None)
    if ca is not None and 'ldap_ca_path' in api.rules.ldap_config_keys:
        config['ldap_ca_path'] = '/etc/cloudify/ssl/ldap_ca.crt'      # MGR@5.0.5 LDAP_CA_PATH
    if config.get('ldap_username') and not getattr(mgr, 'ldap_reachable', True):
        message = ('Failed setting LDAP: Unable to connect to LDAP Server {0}'.format(
            config['ldap_server']) if api.rules.ldap_unreachable_message else
            'Failed setting LDAP authenticator: Invalid parameters provided.')
        raise bad(message)
    now = datamod.ts()
    with api.store.lock:
        for name, value in config.items():
            row = api.store.config.get(('rest', name))
            if row is not None:
                row.update(value=value, updated_at=now, updater_name=ctx.user['username'])
        if ca is not None:
            api.store.ldap_ca = ca          # 5.2+: the certificates row _auth-ldap-ca
    mgr.restart_restservice(REST_RESTART_OUTAGE)
    config.pop('ldap_password', None)
    return 200, config
