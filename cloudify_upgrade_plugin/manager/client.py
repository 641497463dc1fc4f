"""The version-aware manager: a discovered manager plus a client bound to its API prefix.

Owns: building a ``Manager`` from a cfy profile (``manager/profiles.py``) or explicit
settings; the ``CloudifyClient`` bound to the prefix discovery chose (Basic auth or a token,
the ``Tenant`` header always); every REST call the plugin makes, as a method named after
what it does (runbooks never build a URL), through the client's HTTP layer where the stock
7.0.5 client is wrong on older managers (bodies per version, bounded pagination, system
workflows, the 3.x version call); retries for idempotent calls, errors naming the manager,
passwords within the failed-login budget (``manager/logins.py``); the unauthenticated
probes and the server's clock the waits need; the ``Connection`` a raw transfer uses.
Maintenance mode and execution schedules: base class ``manager/fencing.py``
``FencingCalls``; ``bypassing_maintenance()`` adds ``X-BYPASS-MAINTENANCE`` to every request
where the version honours it for an admin.
"""
import datetime
import functools
from typing import Any, Iterator, List, Optional, Tuple, Union

import requests
from cloudify_rest_client import CloudifyClient
from cloudify_rest_client.exceptions import CloudifyClientError

from cloudify_upgrade_plugin import clock, versions
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.manager import answers, logins, tokens, waits
from cloudify_upgrade_plugin.manager.calls import ResourceCalls
from cloudify_upgrade_plugin.manager.connection import Connection
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.discovery import (
    ManagerInfo, ProbeResult, basic_auth_header, discover, probe)
from cloudify_upgrade_plugin.manager.fencing import FencingCalls
from cloudify_upgrade_plugin.manager.profiles import read_profile
from cloudify_upgrade_plugin.manager.retry import (
    NO_RETRY, RetryPolicy, call_with_retries, translate)
from cloudify_upgrade_plugin.manager.session import ManagerSession
from cloudify_upgrade_plugin.manager.status import health, normalise_status
from cloudify_upgrade_plugin.manager.urls import query as _query
from cloudify_upgrade_plugin.manager.urls import segment

DEFAULT_TENANT = 'default_tenant'
TENANT_HEADER = 'Tenant'
BYPASS_HEADER = 'X-BYPASS-MAINTENANCE'
# behaviour §4 / §9.11: 4.0-4.5.x refuse more than 1000 rows per answer and give empty pages
# for _offset without _size; every page therefore asks for an explicit _size <= 1000.
MAX_PAGE_SIZE = 1000
# Unauthenticated probes of a REST service that may be restarting: answer fast or not.
PROBE_TIMEOUT = 5


class Manager(ResourceCalls, FencingCalls):
    """A discovered Cloudify Manager and a client bound to its API prefix.

    ``version`` (``versions.Version``), ``edition``, ``api_prefix``, ``client`` (a
    ``CloudifyClient``), ``profile`` (the cfy ``ProfileContext`` or None), ``tenant``,
    ``credentials`` (``Credentials``; switch them with ``with_credentials``).
    """

    def __init__(self, info: ManagerInfo, username=None, password=None, tenant=None,
                 cert=None, trust_all=False, token=None, profile=None, profile_name=None,
                 retry_policy=None, request_timeout=None, session=None,
                 credentials: Optional[Credentials] = None, bypass_maintenance=False):
        if not isinstance(info, ManagerInfo):
            raise TypeError('info must be a ManagerInfo')
        self.info = info
        self.credentials = credentials or Credentials(username=username, password=password,
                                                      token=token)
        self.tenant = tenant or DEFAULT_TENANT
        self.cert = cert
        self.trust_all = bool(trust_all)
        self.profile = profile
        self.profile_name = profile_name or (
            getattr(profile, 'profile_name', None) if profile is not None else None)
        self.retry_policy = retry_policy or RetryPolicy()
        self.request_timeout = request_timeout
        self.session = session if session is not None else ManagerSession()
        # X-BYPASS-MAINTENANCE only where an admin may read through maintenance mode
        self.bypass_maintenance = bool(bypass_maintenance) and \
            versions.admin_bypasses_maintenance(info.version)
        register_secret(self.credentials.password)
        register_secret(self.credentials.token)
        if self.credentials.basic:
            # the stock client logs request headers at DEBUG: hide the Basic value too
            register_secret(basic_auth_header(self.credentials.username,
                                              self.credentials.password).split(' ', 1)[1])
        self.client = self._build_client()

    # -- construction -----------------------------------------------------------------

    def _build_client(self) -> CloudifyClient:
        kwargs = {
            'host': self.info.host,
            'port': self.info.port,
            'protocol': self.info.protocol,
            'api_version': self.info.api_version,
            'cert': self.cert,
            'trust_all': self.trust_all,
            'tenant': self.tenant,
            'headers': dict({TENANT_HEADER: self.tenant}, **(
                {BYPASS_HEADER: 'true'} if self.bypass_maintenance else {})),
            'kerberos_env': False,
            'timeout': self.request_timeout,
            'session': self.session,
        }
        if self.credentials.basic:
            # Basic auth around a restore: tokens die with the secret_key (behaviour §2.4)
            kwargs['username'] = self.credentials.username
            kwargs['password'] = self.credentials.password
        elif self.credentials.token:
            kwargs['token'] = self.credentials.token
        return CloudifyClient(**kwargs)

    @classmethod
    def connect(cls, host, port=None, protocol='http', cert=None, username=None,
                password=None, tenant=None, trust_all=False, token=None,
                version_override=None, profile=None, profile_name=None, retry_policy=None,
                request_timeout=None, discover_fn=None, session=None) -> 'Manager':
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
    def from_profile(cls, name=None, *args, **kwargs) -> 'Manager':  # None: the active one
        return cls.from_connection(read_profile(name), *args, **kwargs)

    @classmethod
    def from_connection(cls, settings, version_override=None, retry_policy=None,
                        request_timeout=None, discover_fn=None,
                        credentials: Optional[Credentials] = None,
                        host: Optional[str] = None) -> 'Manager':
        """The manager of a ``ProfileSettings`` (cfy's or explicit), discovered.

        ``credentials`` replace the profile's (e.g. the old admin's after a restore), ``host``
        its ``manager_ip`` (the cluster node an upgrade is pinned to).
        """
        credentials = credentials or settings.credentials
        return cls.connect(
            host or settings.host, settings.port, settings.protocol, cert=settings.cert,
            username=credentials.username, password=credentials.password,
            tenant=settings.tenant, trust_all=settings.trust_all, token=credentials.token,
            version_override=version_override, profile=settings.profile,
            profile_name=settings.name, retry_policy=retry_policy,
            request_timeout=request_timeout, discover_fn=discover_fn)

    def _copy(self, **changes) -> 'Manager':
        kwargs = dict(info=self.info, credentials=self.credentials, tenant=self.tenant,
                      cert=self.cert, trust_all=self.trust_all, profile=self.profile,
                      profile_name=self.profile_name, retry_policy=self.retry_policy,
                      request_timeout=self.request_timeout, session=self.session,
                      bypass_maintenance=self.bypass_maintenance)
        kwargs.update(changes)
        return Manager(**kwargs)

    def for_tenant(self, name: str) -> 'Manager':
        """The same manager with another ``Tenant`` header (no new discovery)."""
        return self._copy(tenant=name)

    def with_credentials(self, credentials: Credentials) -> 'Manager':
        """The same manager logged in with other credentials (e.g. after a restore)."""
        return self._copy(credentials=credentials)

    def bypassing_maintenance(self) -> 'Manager':
        """The same manager sending ``X-BYPASS-MAINTENANCE`` on every request where an admin
        may read and act through maintenance mode (5.2+, behaviour §12.5); elsewhere the
        header would be ignored, so it is not sent."""
        return self._copy(bypass_maintenance=True)

    def with_token(self, token: str) -> 'Manager':
        """The same manager authenticated by an API token instead of a password."""
        return self._copy(credentials=Credentials(token=token))

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
    def label(self) -> str:
        """How errors and logs name this manager."""
        if self.profile_name:
            return 'manager {0} (profile {1})'.format(self.address, self.profile_name)
        return 'manager {0}'.format(self.address)

    @property
    def username(self) -> Optional[str]:
        return self.credentials.username

    @property
    def has_tenants(self) -> bool:
        return versions.has_tenants(self.version)

    def describe(self) -> dict:
        """The non-secret facts about this manager, for journals and JSON documents."""
        doc = self.info.to_dict()
        doc.update({'profile': self.profile_name, 'tenant': self.tenant})
        return doc

    def __repr__(self):
        return '<Manager {0} {1} {2}>'.format(self.address, self.version, self.edition)

    # -- raw requests through the client's HTTP layer -------------------------------------

    def request(self, method, uri, data=None, params=None, headers=None, expected=200,
                idempotent=None, retry=True, what=None, timeout=None,
                answer: Optional[type] = dict) -> Any:
        """One REST call under the bound prefix; returns the decoded JSON answer.

        GETs are retried on transient failures (``retry_policy``); others never are.
        Failures become ``UpgradeError`` naming the manager (``manager.retry.translate``).
        ``answer``: the JSON type the call must return (None: anything; an empty answer is
        always accepted); another type is ``manager-bad-answer``.
        """
        http = self.client._client
        method = method.lower()
        func = getattr(http, method)
        kwargs = {'data': data, 'params': _query(params), 'headers': headers,
                  'expected_status_code': expected, 'timeout': timeout}
        idempotent = method == 'get' if idempotent is None else idempotent
        policy = self.retry_policy if retry else NO_RETRY
        what = what or '{0} {1}'.format(method.upper(), uri)
        send = functools.partial(call_with_retries, lambda: func(uri, **kwargs), idempotent,
                                 policy, what)
        try:
            if self.credentials.basic:   # a password: within the failed-login budget only
                result = logins.send_counted(self.address, self.username, self.label, send)
            else:
                result = send()
        except (CloudifyClientError, requests.exceptions.RequestException, ValueError) as exc:
            if not isinstance(exc, ValueError) or \
                    isinstance(exc, requests.exceptions.InvalidHeader):
                raise translate(exc, self.label, what) from exc
            # a 2xx answer that was not JSON: the web UI, not the REST API (behaviour §2.1)
            raise answers.not_json(self.label, what, self.api_prefix) from exc
        except (TypeError, AttributeError, KeyError) as exc:
            # the stock client reads its JSON answer as a dict (``history``, errors)
            raise answers.bad_answer(self.label, what, 'an answer of an unexpected shape '
                                     '({0})'.format(exc)) from exc
        return answers.of_type(self.label, what, result, answer)

    def get(self, uri, params=None, headers=None, retry=True, what=None) -> Any:
        return self.request('get', uri, params=params, headers=headers, retry=retry,
                            what=what)

    # -- calls ------------------------------------------------------------------------

    def version_data(self) -> dict:
        """The manager's version document (``GET <prefix>/version``; unsecured on 3.x)."""
        return self.get('/version', what='reading the version')

    def status(self) -> dict:
        """The manager's status in one shape for every version (``normalise_status``)."""
        return normalise_status(self.get('/status', what='reading the status'))

    def health(self) -> Tuple[str, List[str]]:
        """('ok'|'degraded'|'fail', [failing service names])."""
        return health(self.status())

    def get_execution(self, execution_id, retry=True) -> dict:
        return self.get('/executions/{0}'.format(segment(execution_id)),
                        retry=retry, what='reading execution {0}'.format(execution_id))

    def get_snapshot(self, snapshot_id) -> dict:
        return self.get('/snapshots/{0}'.format(segment(snapshot_id)),
                        what='reading snapshot {0}'.format(snapshot_id))

    def create_snapshot(self, snapshot_id, legacy=None) -> str:
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
        what = 'creating snapshot {0}'.format(snapshot_id)
        execution = self.request('put', '/snapshots/{0}'.format(segment(snapshot_id)), data=body,
                                 expected=(200, 201), what=what)
        return answers.field(self.label, execution, 'id', str, what)

    def restore_snapshot(self, snapshot_id, restore_certificates=False, force=False,
                         no_reboot=False, snapshot_version=None,
                         timeout=versions.DEFAULT_RESTORE_TIMEOUT,
                         ignore_plugin_failure=False) -> str:
        """Start ``restore_snapshot`` with the body for this target; return the execution id.

        The stock 7.0.5 ``snapshots.restore()`` omits ``recreate_deployments_envs`` (400 on
        4.1-5.2.x targets, behaviour §1.1), so the body comes from ``versions.restore_body``.
        The answer is a Snapshot-shaped document whose ``id`` is the execution id (behaviour
        §3.5).  Never retried: a lost answer must be checked, not repeated.
        """
        body = versions.restore_body(self.version, force=force,
                                     restore_certificates=restore_certificates,
                                     no_reboot=no_reboot, snapshot_version=snapshot_version,
                                     timeout=timeout, ignore_plugin_failure=ignore_plugin_failure)
        what = 'restoring snapshot {0}'.format(snapshot_id)
        answer = self.request('post', '/snapshots/{0}/restore'.format(
            segment(snapshot_id)), data=body, expected=(200, 201), what=what)
        return answers.field(self.label, answer, 'id', str, what)

    def wait_for_execution(self, execution_id, timeout, **kwargs) -> dict:
        """``waits.wait_for_execution(self, ...)``."""
        return waits.wait_for_execution(self, execution_id, timeout, **kwargs)

    def wait_for_rest(self, timeout, **kwargs) -> dict:
        """``waits.wait_for_rest(self, ...)``."""
        return waits.wait_for_rest(self, timeout, **kwargs)

    def list_tenants(self) -> List[str]:
        """Tenant names: none on 3.x (behaviour §2.4), only default_tenant on community (§5.1)."""
        if not self.has_tenants:
            return []
        if self.edition == 'community':
            return [DEFAULT_TENANT]
        return [answers.field(self.label, t, 'name', str, 'listing tenants')
                for t in self.list_all('tenants', include=['name'])]

    def list_all(self, resource, tenant=None, all_tenants=False, include=None, sort=None,
                 per_tenant=False, include_system_workflows=None, page_size=MAX_PAGE_SIZE,
                 **filters) -> Iterator[dict]:
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
        what = 'listing {0}'.format(resource)
        offset = 0
        while True:
            page = dict(params, _offset=offset, _size=size)
            answer = self.get('/' + resource, params=page, headers=headers, what=what)
            items, total = answers.page(self.label, answer, what)
            for item in items:
                yield item
            offset += len(items)
            if not items:
                break
            if total is not None and offset >= int(total):
                break
            if total is None and len(items) < size:
                break

    def events(self, execution_id, offset=0, size=100, logs_of_levels=None
               ) -> Tuple[List[dict], Optional[int]]:
        """One page of an execution's events: (items, total).  4.0+ only.
        ``logs_of_levels`` (e.g. ``['warning']``): its log records of those levels instead
        (the list filters by ``type`` and ``level``, cloudify-manager@5.0.5 events.py)."""
        params = {'execution_id': execution_id, '_offset': offset, '_sort': '@timestamp',
                  '_size': min(int(size), MAX_PAGE_SIZE), 'level': logs_of_levels or None,
                  'type': ['cloudify_log' if logs_of_levels else 'cloudify_event']}
        answer = self.get('/events', params=params, retry=False, what='reading events')
        return answers.page(self.label, answer, 'reading events')

    def list_page(self, resource: str, params: dict, tenant: Optional[str] = None,
                  what: Optional[str] = None) -> dict:
        """One page of a list resource as the REST answer (``items``, ``metadata``); the
        caller pages (``_offset``/``_size`` in ``params``).  ``tenant`` sends that
        ``Tenant`` header."""
        headers = {TENANT_HEADER: tenant} if tenant else None
        what = what or 'listing {0}'.format(resource)
        answer = self.get('/' + resource.strip('/'), params=dict(params), headers=headers,
                          what=what)
        answers.page(self.label, answer, what)
        return answer

    def start_execution(self, deployment_id: str, workflow_id: str,
                        parameters: Optional[dict] = None) -> dict:
        """Start ``workflow_id`` on a deployment of this manager's tenant; the Execution."""
        return self.request('post', '/executions', data={
            'deployment_id': deployment_id, 'workflow_id': workflow_id,
            'parameters': parameters or {}, 'allow_custom_parameters': False,
            'force': False}, expected=(200, 201),
            what='starting {0} on {1}'.format(workflow_id, deployment_id))

    # -- users, credentials and tokens --------------------------------------------------

    def current_user(self) -> dict:
        """The user the credentials log in as (``username``, ``role``...)."""
        return self.get('/user', what='reading the current user')

    def set_password(self, username: str, password: str, what: Optional[str] = None) -> None:
        """Set a user's password (the password is sent in the body, never logged)."""
        register_secret(password)
        self.request('post', '/users/{0}'.format(segment(username)),
                     data={'password': password}, expected=(200, 201), answer=None,
                     what=what or 'setting the password of {0}'.format(username))

    def accepts_credentials(self) -> bool:
        """True when the manager accepts these credentials (``GET /version``, no retry);
        False on 401.  Other failures are raised."""
        try:
            self.request('get', '/version', retry=False, what='checking credentials',
                         answer=None)
            return True
        except UpgradeError as error:
            if (error.details or {}).get('status_code') == 401 or \
                    error.error_id == 'manager-auth-failed':
                return False
            raise

    def create_token(self, description: str = 'cfy upgrade',
                     lifetime: Optional[float] = None) -> str:
        """A new API token of the logged-in user, registered as a secret; on 7.0 it expires
        after ``lifetime`` seconds (``manager/tokens.py``)."""
        return tokens.create(self, description, lifetime)

    def revoke_token(self, token: str) -> bool:
        """Delete a 7.0 token; False where the version cannot (``manager/tokens.py``)."""
        return tokens.revoke(self, token)

    def revoke_tokens(self, description: str) -> int:
        """Delete every 7.0 token with this description; how many were deleted."""
        return tokens.revoke_described(self, description)

    # -- configuration ----------------------------------------------------------------------

    def provider_context(self) -> dict:
        return self.get('/provider/context', what='reading the provider context') or {}

    # -- unauthenticated probes and the server's clock ---------------------------------------

    @property
    def verify(self) -> Union[bool, str]:
        """TLS verification for requests made outside the client: the profile's
        certificate, the system CAs (True), or False only with CLOUDIFY_SSL_TRUST_ALL."""
        return False if self.trust_all else (self.cert or True)

    def rest_answers(self, session=None) -> Tuple[bool, ProbeResult]:
        """Does the REST service answer?  An unauthenticated ``<prefix>/version``: JSON
        (200 or 401) means up; refused connections, 5xx pages and non-JSON answers down."""
        result = probe(session or self.session, self.address,
                       self.api_prefix + '/version', verify=self.verify,
                       timeout=PROBE_TIMEOUT)
        return bool(result.is_json and (result.status or 0) < 500), result

    def server_time(self, session=None) -> Optional[datetime.datetime]:
        """The manager's clock: the ``Date`` header of an unauthenticated answer now
        (None when it does not answer or sends no date)."""
        try:
            answer = (session or self.session).get(
                self.address + self.api_prefix + '/version', timeout=PROBE_TIMEOUT,
                verify=self.verify, allow_redirects=False)
        except requests.exceptions.RequestException:
            return None
        return clock.parse_http_date(answer.headers.get('Date'))

    def connection(self) -> Connection:
        """The settings a raw transfer needs to talk to this manager as the client does."""
        return Connection.of_client(self.client)
