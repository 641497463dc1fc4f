"""The version-aware manager: a discovered manager plus a client bound to its API prefix.

Owns: building a ``Manager`` from a cfy profile (``cloudify_cli.env``: host, REST port,
protocol and certificate, credentials from the profile *or* the CLOUDIFY_* variables, never
both) or from explicit settings; the ``cloudify_rest_client.CloudifyClient`` bound to the
prefix discovery chose, with Basic auth and the ``Tenant`` header always; the requests the
stock 7.0.5 client gets wrong for older managers (restore and create bodies per version,
bounded pagination, system workflows, the version call on 3.x) made through the client's
own HTTP layer; retries for idempotent calls and errors that name the manager.
"""
import os
from urllib.parse import quote

import requests
from cloudify_rest_client import CloudifyClient
from cloudify_rest_client.exceptions import CloudifyClientError

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger, warn_always
from cloudify_upgrade_plugin.manager.discovery import ManagerInfo, basic_auth_header, discover
from cloudify_upgrade_plugin.manager.retry import (
    RetryPolicy, NO_RETRY, call_with_retries, translate)

DEFAULT_TENANT = 'default_tenant'
TENANT_HEADER = 'Tenant'
# behaviour §4 / §9.11: 4.0-4.5.x refuse more than 1000 rows per answer and give empty pages
# for _offset without _size; every page therefore asks for an explicit _size <= 1000.
MAX_PAGE_SIZE = 1000
EXECUTION_END_STATES = ('terminated', 'failed', 'cancelled')   # behaviour §4


def register_secret(value):
    """Tell the engine's redaction about a secret, if that module is available."""
    if not value:
        return
    try:
        from cloudify_upgrade_plugin.engine import redact
    except ImportError:
        return
    register = getattr(redact, 'register_secret', None)
    if register is None:
        return
    try:
        register(value)
    except Exception:   # redaction is best effort here; never break a connection over it
        get_logger().debug('could not register a secret with the redaction module')


def _query_value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple, set)):
        return [_query_value(v) for v in value]
    return value


def _query(params):
    return {k: _query_value(v) for k, v in (params or {}).items() if v is not None}


def normalise_status(body):
    """Both status shapes (behaviour §2.3) as ``{status, healthy, shape, services}``.

    3.4.2-5.0.0: ``{"status": "running", "services": [{"display_name", "instances":
    [{"ActiveState", ...}]}]}``; 5.0.5+: ``{"status": "OK"|"Degraded"|"Fail", "services":
    {name: {"status": "Active"|"Inactive", ...}}}``.  ``services`` maps a display name to
    'Active' or the first non-active state.
    """
    body = body or {}
    services = body.get('services')
    result = {'status': body.get('status'), 'services': {}, 'shape': None, 'healthy': False}
    if isinstance(services, dict):
        result['shape'] = 'services'
        for name, service in services.items():
            state = service.get('status') if isinstance(service, dict) else service
            result['services'][name] = state
        result['healthy'] = body.get('status') == 'OK'
    elif isinstance(services, list):
        result['shape'] = 'units'
        healthy = bool(services)
        for service in services:
            name = service.get('display_name') or service.get('name') or '?'
            states = [str(i.get('ActiveState') or i.get('state') or '').lower()
                      for i in service.get('instances') or []]
            bad = [s for s in states if s != 'active']
            if not states:
                state = 'Unknown'
            elif bad:
                state = bad[0] or 'Unknown'
            else:
                state = 'Active'
            result['services'][name] = state
            healthy = healthy and state == 'Active'
        result['healthy'] = healthy and body.get('status') in ('running', 'OK', None)
    return result


class Manager(object):
    """A discovered Cloudify Manager and a client bound to its API prefix.

    ``version`` (``versions.Version``), ``edition``, ``api_prefix``, ``client`` (a
    ``CloudifyClient``), ``profile`` (the cfy ``ProfileContext`` or None), ``tenant``.
    """

    def __init__(self, info, username=None, password=None, tenant=None, cert=None,
                 trust_all=False, token=None, profile=None, profile_name=None,
                 retry_policy=None, request_timeout=None, session=None):
        if not isinstance(info, ManagerInfo):
            raise TypeError('info must be a ManagerInfo')
        self.info = info
        self.username = username
        self._password = password
        self._token = token
        self.tenant = tenant or DEFAULT_TENANT
        self.cert = cert
        self.trust_all = bool(trust_all)
        self.profile = profile
        self.profile_name = profile_name or (
            getattr(profile, 'profile_name', None) if profile is not None else None)
        self.retry_policy = retry_policy or RetryPolicy()
        self.request_timeout = request_timeout
        self.session = session
        register_secret(password)
        register_secret(token)
        if username and password:
            # the stock client logs request headers at DEBUG: hide the Basic value too
            register_secret(basic_auth_header(username, password).split(' ', 1)[1])
        self.client = self._build_client()

    # -- construction -----------------------------------------------------------------

    def _build_client(self):
        kwargs = {
            'host': self.info.host,
            'port': self.info.port,
            'protocol': self.info.protocol,
            'api_version': self.info.api_version,
            'cert': self.cert,
            'trust_all': self.trust_all,
            'tenant': self.tenant,
            'headers': {TENANT_HEADER: self.tenant},
            'kerberos_env': False,
            'timeout': self.request_timeout,
            'session': self.session,
        }
        if self.username and self._password:
            # Basic auth around a restore: tokens die with the secret_key (behaviour §2.4)
            kwargs['username'] = self.username
            kwargs['password'] = self._password
        elif self._token:
            kwargs['token'] = self._token
        return CloudifyClient(**kwargs)

    @classmethod
    def connect(cls, host, port=None, protocol='http', cert=None, username=None,
                password=None, tenant=None, trust_all=False, token=None,
                version_override=None, profile=None, profile_name=None, retry_policy=None,
                request_timeout=None, discover_fn=None, session=None):
        """Discover the manager at host:port and return a ``Manager`` for it."""
        register_secret(password)
        register_secret(token)
        discover_fn = discover_fn or discover
        info = discover_fn(host, port, protocol, cert=cert, username=username,
                           password=password, tenant=tenant, trust_all=trust_all,
                           token=token, version_override=version_override)
        return cls(info, username=username, password=password, tenant=tenant, cert=cert,
                   trust_all=trust_all, token=token, profile=profile,
                   profile_name=profile_name, retry_policy=retry_policy,
                   request_timeout=request_timeout, session=session)

    @classmethod
    def from_profile(cls, name=None, version_override=None, retry_policy=None,
                     request_timeout=None, discover_fn=None):
        """The manager of cfy profile ``name`` (the active profile when None), discovered."""
        from cloudify_cli import constants, env
        from cloudify_cli.exceptions import CloudifyCliError

        requested = name
        name = name or env.get_active_profile()
        if not name or name == 'local':
            raise InputError(
                'No manager profile is active.', error_id='no-active-profile',
                hints=['Create or select one: `cfy profiles use MANAGER_IP '
                       '--profile-name NAME ...`, or pass the profile name.'])
        if not env.is_profile_exists(name):
            raise InputError(
                'There is no cfy profile named "{0}". Existing profiles: {1}.'.format(
                    name, ', '.join(_profile_names(env)) or 'none'),
                error_id='unknown-profile',
                hints=['Create it with `cfy profiles use MANAGER_IP --profile-name {0} '
                       '...` or use one of the existing profiles.'.format(name)])
        try:
            profile = env.get_profile_context(name)
            username = env.get_username(profile)
            password = env.get_password(profile)
            token = env.get_token(profile)
            kerberos = env.get_kerberos_env(profile)
            tenant = env.get_tenant_name(profile)
            cert = profile_cert(env, constants, profile, name)
            trust_all = env.get_ssl_trust_all()
        except CloudifyCliError as exc:
            raise InputError(str(exc), error_id='profile-settings-conflict',
                             hints=['Set each manager setting in the profile or in its '
                                    'CLOUDIFY_* environment variable, not both.']) from exc
        if kerberos and not (username and password) and not token:
            raise InputError('Profile "{0}" uses Kerberos, which the upgrade plugin does '
                             'not support.'.format(name), error_id='kerberos-unsupported',
                             hints=['Set a manager username and password on the profile.'])
        if not profile.manager_ip:
            raise InputError('Profile "{0}" has no manager IP.'.format(name),
                             error_id='unknown-profile',
                             hints=['`cfy profiles set --manager-ip IP`'])
        if trust_all:
            warn_always('CLOUDIFY_SSL_TRUST_ALL is set: the certificate of %s is not '
                        'verified.', profile.manager_ip)
        manager = cls.connect(
            profile.manager_ip, profile.rest_port, profile.rest_protocol, cert=cert,
            username=username, password=password, tenant=tenant, trust_all=trust_all,
            token=token, version_override=version_override, profile=profile,
            profile_name=name, retry_policy=retry_policy, request_timeout=request_timeout,
            discover_fn=discover_fn)
        if requested is None:
            get_logger().debug('using the active profile %s', name)
        return manager

    def _copy(self, **changes):
        kwargs = dict(info=self.info, username=self.username, password=self._password,
                      tenant=self.tenant, cert=self.cert, trust_all=self.trust_all,
                      token=self._token, profile=self.profile, profile_name=self.profile_name,
                      retry_policy=self.retry_policy, request_timeout=self.request_timeout,
                      session=self.session)
        kwargs.update(changes)
        return Manager(**kwargs)

    def for_tenant(self, name):
        """The same manager with another ``Tenant`` header (no new discovery)."""
        return self._copy(tenant=name)

    def with_credentials(self, username, password):
        """The same manager with other Basic-auth credentials (e.g. after a restore)."""
        return self._copy(username=username, password=password, token=None)

    # -- identity ---------------------------------------------------------------------

    version = property(lambda self: self.info.version)
    edition = property(lambda self: self.info.edition)
    api_prefix = property(lambda self: self.info.api_prefix)
    api_version = property(lambda self: self.info.api_version)
    host = property(lambda self: self.info.host)
    port = property(lambda self: self.info.port)
    protocol = property(lambda self: self.info.protocol)
    address = property(lambda self: self.info.address)

    @property
    def label(self):
        """How errors and logs name this manager."""
        if self.profile_name:
            return 'manager {0} (profile {1})'.format(self.address, self.profile_name)
        return 'manager {0}'.format(self.address)

    @property
    def has_tenants(self):
        return self.version.major >= 4     # behaviour §2.4: 3.x has no tenants

    def describe(self):
        """The non-secret facts about this manager, for journals and JSON documents."""
        doc = self.info.to_dict()
        doc.update({'profile': self.profile_name, 'tenant': self.tenant})
        return doc

    def __repr__(self):
        return '<Manager {0} {1} {2}>'.format(self.address, self.version, self.edition)

    # -- raw requests through the client's HTTP layer -------------------------------------

    def request(self, method, uri, data=None, params=None, headers=None, expected=200,
                idempotent=None, retry=True, what=None, timeout=None):
        """One REST call under the bound prefix; returns the decoded JSON answer.

        GETs are retried on transient failures (``retry_policy``); others never are.
        Failures become ``UpgradeError`` naming the manager (``manager.retry.translate``).
        """
        http = self.client._client
        method = method.lower()
        func = getattr(http, method)
        kwargs = {'data': data, 'params': _query(params), 'headers': headers,
                  'expected_status_code': expected, 'timeout': timeout}
        if idempotent is None:
            idempotent = method == 'get'
        policy = self.retry_policy if retry else NO_RETRY
        what = what or '{0} {1}'.format(method.upper(), uri)
        try:
            return call_with_retries(lambda: func(uri, **kwargs), idempotent, policy, what)
        except (CloudifyClientError, requests.exceptions.RequestException, ValueError) as exc:
            if not isinstance(exc, ValueError):   # requests' JSONDecodeError is both
                raise translate(exc, self.label, what) from exc
            # a 2xx answer that was not JSON: the web UI, not the REST API (behaviour §2.1)
            raise UpgradeError(
                '{0} did not answer {1} with JSON; is {2} the right API prefix?'.format(
                    self.label, what, self.api_prefix),
                error_id='manager-bad-answer', details={'manager': self.label}) from exc

    def get(self, uri, params=None, headers=None, retry=True, what=None):
        return self.request('get', uri, params=params, headers=headers, retry=retry,
                            what=what)

    # -- calls ------------------------------------------------------------------------

    def version_data(self):
        """The manager's version document (``GET <prefix>/version``; unsecured on 3.x)."""
        return self.get('/version', what='reading the version')

    def status(self):
        """The manager's status in one shape for every version (``normalise_status``)."""
        return normalise_status(self.get('/status', what='reading the status'))

    def get_execution(self, execution_id, retry=True):
        return self.get('/executions/{0}'.format(quote(execution_id, safe='')),
                        retry=retry, what='reading execution {0}'.format(execution_id))

    def get_snapshot(self, snapshot_id):
        return self.get('/snapshots/{0}'.format(quote(snapshot_id, safe='')),
                        what='reading snapshot {0}'.format(snapshot_id))

    def create_snapshot(self, snapshot_id, legacy=None):
        """Start ``create_snapshot`` with the body for this version; return the execution id.

        behaviour §3.1: ``PUT /snapshots/<id>`` answers 201 with the Execution.
        """
        problem = versions.snapshot_id_problem(snapshot_id)
        if problem:
            raise InputError('Invalid snapshot id: {0}.'.format(problem),
                             error_id='bad-snapshot-id',
                             hints=['Use an id like upgrade_20240101 (a letter first, then '
                                    'letters, digits, ".", "-" or "_").'])
        body = versions.snapshot_create_body(self.version, legacy=legacy)
        execution = self.request('put', '/snapshots/{0}'.format(snapshot_id), data=body,
                                 expected=(200, 201),
                                 what='creating snapshot {0}'.format(snapshot_id))
        return execution['id']

    def restore_snapshot(self, snapshot_id, restore_certificates=False, force=False,
                         no_reboot=False, snapshot_version=None,
                         timeout=versions.DEFAULT_RESTORE_TIMEOUT):
        """Start ``restore_snapshot`` with the body for this target; return the execution id.

        The stock 7.0.5 ``snapshots.restore()`` omits ``recreate_deployments_envs`` (400 on
        4.1-5.2.x targets, behaviour §1.1), so the body comes from ``versions.restore_body``.
        The answer is a Snapshot-shaped document whose ``id`` is the execution id (behaviour
        §3.5).  Never retried: a lost answer must be checked, not repeated.
        """
        body = versions.restore_body(self.version, force=force,
                                     restore_certificates=restore_certificates,
                                     no_reboot=no_reboot, snapshot_version=snapshot_version,
                                     timeout=timeout)
        answer = self.request('post', '/snapshots/{0}/restore'.format(
            quote(snapshot_id, safe='')), data=body, expected=(200, 201),
            what='restoring snapshot {0}'.format(snapshot_id))
        return answer['id']

    def wait_for_execution(self, execution_id, timeout, **kwargs):
        """``waits.wait_for_execution(self, ...)``."""
        from cloudify_upgrade_plugin.manager import waits
        return waits.wait_for_execution(self, execution_id, timeout, **kwargs)

    def wait_for_rest(self, timeout, **kwargs):
        """``waits.wait_for_rest(self, ...)``."""
        from cloudify_upgrade_plugin.manager import waits
        return waits.wait_for_rest(self, timeout, **kwargs)

    def list_tenants(self):
        """Tenant names: none on 3.x (behaviour §2.4), only default_tenant on community (§5.1)."""
        if not self.has_tenants:
            return []
        if self.edition == 'community':
            return [DEFAULT_TENANT]
        return [t['name'] for t in self.list_all('tenants', include=['name'])]

    def list_users(self):
        """Users (premium 4.0+); community answers 404 missing_premium_package_error."""
        if not self.has_tenants:
            return []
        return list(self.list_all('users', include=['username']))

    def list_all(self, resource, tenant=None, all_tenants=False, include=None, sort=None,
                 per_tenant=False, include_system_workflows=None, page_size=MAX_PAGE_SIZE,
                 **filters):
        """Every item of a list resource, page by page (a generator).

        Each page asks for an explicit ``_size`` (at most 1000) *and* ``_offset`` (behaviour §4:
        4.0-4.5.x fail above 1000 rows and give empty pages for ``_offset`` alone); paging
        stops at ``metadata.pagination.total``.  ``executions`` include system workflows
        unless ``include_system_workflows=False`` (they are hidden by default, behaviour §4).
        ``all_tenants`` uses ``_all_tenants=true`` (4.0+), or with ``per_tenant`` one
        listing per tenant.  ``tenant`` sends that ``Tenant`` header instead.  ``sort`` is a
        field name, ``-field`` for descending; pass one for stable paging of a list that
        changes meanwhile.  Filters with list values are repeated (OR).
        """
        resource = resource.strip('/')
        if all_tenants and per_tenant and self.has_tenants:
            for name in self.list_tenants():
                for item in self.list_all(
                        resource, tenant=name, include=include, sort=sort,
                        include_system_workflows=include_system_workflows,
                        page_size=page_size, **filters):
                    if isinstance(item, dict) and 'tenant_name' not in item:
                        item['tenant_name'] = name
                    yield item
            return
        size = max(1, min(int(page_size), MAX_PAGE_SIZE))
        params = dict(filters)
        if include:
            params['_include'] = include if isinstance(include, str) else ','.join(include)
        if sort:
            params['_sort'] = sort
        if resource == 'executions' and include_system_workflows is not False:
            params['_include_system_workflows'] = True
        if all_tenants and self.has_tenants:
            params['_all_tenants'] = True
        headers = {TENANT_HEADER: tenant} if tenant else None
        offset = 0
        while True:
            page = dict(params, _offset=offset, _size=size)
            answer = self.get('/' + resource, params=page, headers=headers,
                              what='listing {0}'.format(resource))
            items = answer.get('items') or []
            pagination = (answer.get('metadata') or {}).get('pagination') or {}
            total = pagination.get('total')
            for item in items:
                yield item
            offset += len(items)
            if not items:
                break
            if total is not None and offset >= int(total):
                break
            if total is None and len(items) < size:
                break

    def events(self, execution_id, offset=0, size=100):
        """One page of an execution's events: (items, total).  4.0+ only."""
        answer = self.get('/events', params={
            'execution_id': execution_id, 'type': ['cloudify_event'], '_offset': offset,
            '_size': min(int(size), MAX_PAGE_SIZE), '_sort': '@timestamp'},
            retry=False, what='reading events')
        total = ((answer.get('metadata') or {}).get('pagination') or {}).get('total')
        return answer.get('items') or [], total


def _profile_names(env):
    try:
        return sorted(env.get_profile_names())
    except OSError:
        return []


def profile_cert(env, constants, profile, name):
    """The REST certificate for profile ``name`` as ``env.get_ssl_cert`` finds it.

    ``env.get_ssl_cert`` looks for the default certificate in the *active* profile's
    directory; this looks in the named profile's.
    """
    from cloudify_cli.exceptions import CloudifyCliError
    env_cert = os.environ.get(constants.LOCAL_REST_CERT_FILE)
    if env_cert and profile.rest_certificate:
        raise CloudifyCliError('Rest Certificate is set in profile *and* in the '
                               '`LOCAL_REST_CERT_FILE` env variable.')
    if env_cert or profile.rest_certificate:
        return env_cert or profile.rest_certificate
    base = env.get_profile_dir(name)
    if base:
        default = os.path.join(base, constants.PUBLIC_REST_CERT)
        if os.path.isfile(default):
            return default
    return None
