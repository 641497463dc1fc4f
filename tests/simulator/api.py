"""The simulated nginx + REST service of one manager version: request routing per exposed
API prefix, authentication (Basic, Authentication-Token), the Tenant header rules,
maintenance mode, JSON body rules, lists (pagination, sort, include, filters, all tenants),
and every endpoint the plugin and the stock cfy 7.0.5 CLI use.

Each version-dependent rule asks ``self.rules`` (rules.py) and cites its reference.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import traceback
import uuid

from tests.simulator import data as datamod
from tests.simulator import topology as topomod
from tests.simulator import tokens as tokensmod
from tests.simulator.transport import Response

JSON = 'application/json'
HTML = 'text/html; charset=utf-8'
MODEL_NAMES = {'blueprints': 'Blueprint', 'deployments': 'Deployment', 'nodes': 'Node',
               'node_instances': 'NodeInstance', 'executions': 'Execution',
               'secrets': 'Secret', 'plugins': 'Plugin', 'sites': 'Site', 'agents': 'Agent',
               'snapshots': 'Snapshot'}


class ApiError(Exception):
    """A JSON error: {"message", "error_code", "server_traceback"} (behaviour §2.5)."""

    def __init__(self, status, code, message, server_traceback=None, pydantic=False,
                 headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.server_traceback = server_traceback
        self.pydantic = pydantic
        self.headers = headers or []


class HtmlError(Exception):
    def __init__(self, status, title, text=''):
        super().__init__(title)
        self.status = status
        self.title = title
        self.text = text


def bad(message):
    return ApiError(400, 'bad_parameters_error', message)


def not_found(kind, rid):
    # observed-7.0: "Requested `Snapshot` with ID `nosuch` was not found"
    return ApiError(404, 'not_found_error', 'Requested `{0}` with ID `{1}` was not found'
                    .format(MODEL_NAMES.get(kind, kind), rid))


def html_page(status, title, text=''):
    body = ('<!doctype html>\n<html lang=en>\n<title>{0} {1}</title>\n<h1>{1}</h1>\n'
            '<p>{2}</p>\n'.format(status, title, text)).encode('utf-8')
    return Response(status, body, content_type=HTML)


def nginx_page(status):
    titles = {400: 'Bad Request', 404: 'Not Found', 500: 'Internal Server Error',
              502: 'Bad Gateway', 503: 'Service Temporarily Unavailable', 504: 'Gateway Time-out',
              413: 'Request Entity Too Large'}
    title = titles.get(status, 'Error')
    body = ('<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}'
            '</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n'
            .format(status, title)).encode('ascii')
    return Response(status, body, content_type='text/html')


def hostile_answer(rule, request, sleep):
    """What a faults.py hostile-answer rule sends (no Cloudify Manager does; issue 17)."""
    if rule.kind == 'replace':
        return Response(rule.status, json.dumps(rule.body).encode('utf-8'), content_type=JSON)
    if rule.kind == 'redirect':
        target = rule.location + request.raw_path + (
            '?' + request.handler.path.split('?', 1)[1] if '?' in request.handler.path
            else '')
        return Response(rule.status, b'', headers=[('Location', target)])
    if rule.kind == 'endless':
        def endless(limit=rule.limit):
            sent = 0
            block = b'"' + b'x' * 65534 + b'",'
            yield b'{"items": ['
            while limit is None or sent < limit:
                sent += len(block)
                yield block
        return Response(200, pieces=endless(), content_type=JSON)
    body = json.dumps(rule.body if rule.body is not None else
                      {'items': [], 'metadata': {'pagination': {'total': 0}}}).encode()

    def trickle():
        for index in range(len(body)):
            if index:
                sleep(rule.interval)
            yield body[index:index + 1]
    return Response(200, pieces=trickle(), length=len(body), content_type=JSON)


UI_PAGE = (b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Cloudify Manager'
           b'</title></head><body><div id="app"></div></body></html>\n')

ROUTES = []


def route(method, pattern, auth='secured', scoped=True, write=False, when=None,
          prefixes=None, admin=False, action=None):
    """Register a handler.  auth: 'none' | 'version' | 'secured'; scoped: tenant-scoped
    resource (behaviour §2.4); when: the name of the rules.Rules flag saying whether the
    version has this route; prefixes: only under these API versions."""
    def deco(fn):
        ROUTES.append({'method': method, 'regex': re.compile('^' + pattern + '$'),
                       'fn': fn, 'auth': auth, 'scoped': scoped, 'write': write,
                       'when': when, 'prefixes': prefixes,
                       'admin': admin, 'action': action or fn.__name__})
        return fn
    return deco


class Ctx:
    def __init__(self, request, api_version, rest, log_entry=None):
        self.request = request
        self.api_version = api_version
        self.rest = rest
        self.user = None
        self.tenant = None          # tenant name or None
        self.route = None
        self.log = log_entry if log_entry is not None else {}   # the RequestLog entry

    @property
    def is_admin(self):
        return self.user is not None and self.user['role'] in ('sys_admin', 'admin')


def _bool(name, value, strict=False):
    """rest_utils.verify_and_convert_bool (MGR@4.2; observed-7.0 'X must be <true/false>')."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    if not strict and value is None:
        return False
    raise bad('{0} must be <true/false>, got {1}'.format(name, value))


class RestApi:
    """Handles one request for manager `mgr` (manager.SimulatedManager)."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.rules = mgr.rules
        self.store = mgr.store

    # ==================================================================================
    # entry: nginx, then Flask
    # ==================================================================================
    def handle(self, request):
        mgr = self.mgr
        entry = mgr.record_request(request)
        try:
            response = self._handle(request, entry)
        except ApiError as e:
            response = self._error_response(e)
        except HtmlError as e:
            response = html_page(e.status, e.title, e.text)
        except ConnectionError:
            entry['status'] = None
            raise
        except Exception as e:        # an unexpected bug is a 500 like Flask's
            response = self._error_response(ApiError(
                500, 'internal_server_error',
                'Internal error occurred in manager REST server - {0}: {1}'.format(
                    type(e).__name__, e), server_traceback=traceback.format_exc()))
        entry['status'] = response.status if response is not None else None
        return response

    def _error_response(self, e):
        body = {'message': e.message, 'error_code': e.code}
        if not e.pydantic:
            body['server_traceback'] = e.server_traceback
        return Response(e.status, json.dumps(body).encode('utf-8'), headers=e.headers,
                        content_type=JSON)

    def _handle(self, request, entry):
        mgr, rules = self.mgr, self.rules
        delay = mgr.faults.take_delay(request.method, request.path)
        if delay:
            mgr.sleep_real(delay)
        status = mgr.faults.take_failure(request.method, request.path)
        if status is not None:
            if status == 500:
                raise ApiError(500, 'internal_server_error',
                               'Internal error occurred in manager REST server (simulated)',
                               server_traceback='Traceback (simulated fault)\n')
            return nginx_page(status)
        hostile = mgr.faults.take_answer(request.method, request.path)
        if hostile is not None:
            return hostile_answer(hostile, request, mgr.sleep_real)
        path = request.path
        if not path.startswith('/api/'):
            return Response(200, UI_PAGE, content_type='text/html')
        if mgr.rest_outage_502():
            return nginx_page(502)          # nginx up, restservice down (behaviour §3.8)
        # --- nginx: which prefixes reach the REST service (behaviour §2.1) ---------------
        if path == '/api/version' and rules.unversioned_version_route:
            api_version, rest = None, '/version'
        else:
            m = re.match(r'^/api/(v[0-9][0-9.]*)(/.*)?$', path)
            api_version = m.group(1) if m else None
            rest = (m.group(2) or '') if m else ''
            proxied = m is not None and api_version in rules.nginx_api_versions
            if not proxied:
                if rules.nginx_proxies_everything:
                    raise HtmlError(404, 'Not Found', 'The requested URL was not found on '
                                    'the server.')     # observed-7.0 'GET /api/v9/version'
                return Response(rules.ui_status_for_unproxied, UI_PAGE,
                                content_type='text/html')
        # the request reaches the REST service (behaviour §12.7: during a 5.0.5-6.1 restore's
        # database swap that is what can deadlock it)
        mgr.note_rest_request(entry)
        ctx = Ctx(request, api_version, rest, entry)
        matched, allowed = None, False
        for r in ROUTES:
            m = r['regex'].match(rest)
            if not m or not self._route_exists(r, api_version):
                continue
            allowed = True
            if r['method'] == request.method or (
                    r['method'] == 'GET' and request.method == 'HEAD'):
                matched = (r, m)
                break
        if matched is None:
            if allowed:
                raise HtmlError(405, 'Method Not Allowed',
                                'The method is not allowed for the requested URL.')
            if not rules.nginx_proxies_everything and not self._known_resource(rest):
                # 4.x-5.x nginx proxies a fixed list of resources (behaviour §2.1)
                return Response(rules.ui_status_for_unproxied, UI_PAGE,
                                content_type='text/html')
            raise HtmlError(404, 'Not Found',
                            'The requested URL was not found on the server.')
        r, m = matched
        ctx.route = r
        self._licence_check(ctx)
        self._maintenance_check(ctx, r)
        self._authenticate(ctx, r)
        return self._respond(r['fn'](self, ctx, **m.groupdict()))

    def _route_exists(self, r, api_version):
        if r['when'] is not None and not getattr(self.rules, r['when']):
            return False
        if r['prefixes'] is not None:
            return api_version in r['prefixes']
        return api_version is None or api_version in self.rules.server_api_versions

    def _known_resource(self, rest):
        head = rest.strip('/').split('/', 1)[0]
        return any(r['regex'].pattern.startswith('^/' + head) for r in ROUTES if head)

    @staticmethod
    def _respond(result):
        if isinstance(result, Response):
            return result
        status, obj = result[0], result[1]
        headers = result[2] if len(result) > 2 else None
        return Response(status, json.dumps(obj).encode('utf-8'), headers=headers,
                        content_type=JSON)

    # ==================================================================================
    # licence gate (behaviour §12.2; rules.py 'licence gate')
    # ==================================================================================
    def _licence_check(self, ctx):
        """An unlicensed (or expired) premium 4.6+ manager serves only the version's
        ALLOWED_LICENSE_ENDPOINTS; the hook runs before maintenance and authentication, so a
        refused request is never authenticated."""
        rules = self.rules
        if not rules.licence_gate:
            return
        state = self.mgr.licence_state()
        if state in ('valid', 'expired'):       # an expired paying licence still serves
            return
        endpoint = ctx.rest.strip('/').split('/', 1)[0]
        if rules.licence_allows(endpoint, ctx.request.method):
            return
        if state == 'expired-trial':
            # client code expired_cloudify_license (COMMON@7.0.4 exceptions.py)
            raise ApiError(rules.licence_refusal_status, 'expired_cloudify_license',
                           'The Cloudify license has expired (simulated message)')
        raise ApiError(rules.licence_refusal_status, 'missing_cloudify_license',
                       'No Cloudify license was found on the manager (simulated message)')

    # ==================================================================================
    # maintenance (behaviour §2.5, §12.5; maintenance.py), after the licence gate
    # ==================================================================================
    def _maintenance_check(self, ctx, r):
        from tests.simulator import maintenance
        maintenance.check(self, ctx, r)

    # ==================================================================================
    # authentication and tenants (behaviour §2.4)
    # ==================================================================================
    def _authenticate(self, ctx, r):
        rules = self.rules
        if r['auth'] == 'none':
            return
        if not rules.security_enabled:          # 3.4.2 default (behaviour §2.4)
            ctx.user = self.store.admin()
            ctx.tenant = 'default_tenant'
            return
        if r['auth'] == 'version' and not rules.version_auth:
            return
        headers = ctx.request.headers
        token = headers.get('Authentication-Token')
        auth = headers.get('Authorization')
        if token:
            ctx.log['auth_method'] = 'token'
            ctx.log['auth_ok'] = False
            ctx.user = self.mgr.user_for_token(token)
            if ctx.user is None:
                raise ApiError(401, 'unauthorized_error',
                               'User unauthorized: Authentication failed: invalid token')
            ctx.log['auth_user'] = ctx.user['username']
            if rules.has_account_lock and rules.account_lock_check == 'after_password' and \
                    self.mgr.is_locked(ctx.user['username']):
                # MGR@6.4.0+ security/authentication.py `authenticate` (behaviour §12.10)
                raise ApiError(401, 'unauthorized_error', _failed_login_message(
                    rules, ctx.user['username']))
            ctx.log['auth_ok'] = True
        elif auth and auth.startswith('Basic '):
            ctx.log['auth_method'] = 'basic'
            ctx.log['auth_ok'] = False
            try:
                username, _, password = base64.b64decode(auth[6:]).decode('utf-8').partition(
                    ':')
            except (ValueError, UnicodeDecodeError):
                raise ApiError(401, 'unauthorized_error',
                               'User unauthorized: No authentication info provided')
            ctx.log['auth_user'] = username
            ctx.log['password_fingerprint'] = self.mgr.password_fingerprint(password)
            user, _locked = self.mgr.check_password(username, password)
            if user is None:
                raise ApiError(401, 'unauthorized_error',
                               _failed_login_message(rules, username))
            ctx.log['auth_ok'] = True
            ctx.user = user
        else:
            # observed-7.0: 'Authorization: Bearer' -> 401 like no auth at all
            raise ApiError(401, 'unauthorized_error',
                           'User unauthorized: No authentication info provided')
        if not rules.has_tenants:
            ctx.tenant = 'default_tenant'
            return
        if r['auth'] == 'version':
            return                              # behaviour §2.2: tenant check skipped
        self._tenant(ctx, r)
        if r['admin'] and not ctx.is_admin:
            raise ApiError(403, 'forbidden_error',
                           'User `{0}` is not permitted to perform the action {1}{2}'.format(
                               ctx.user['username'], r['action'],
                               ' in the tenant `{0}`'.format(ctx.tenant)
                               if ctx.tenant else ''))

    def _tenant(self, ctx, r):
        rules = self.rules
        name = ctx.request.headers.get('Tenant')
        user = ctx.user
        if rules.tenant_mode == 'mandatory':
            # MGR@4.0 tenant_authorization.py: 401 on every secured endpoint
            if not name:
                raise ApiError(401, 'unauthorized_error',
                               'User unauthorized: a Tenant name was not provided')
            if name not in self.store.tenants:
                raise ApiError(401, 'unauthorized_error',
                               'User unauthorized: Provided tenant name unknown: {0}'
                               .format(name))
            if not ctx.is_admin and name not in user.get('tenant_roles', {}):
                raise ApiError(401, 'unauthorized_error',
                               'User unauthorized: <User username=`{0}`> is not associated '
                               'with <Tenant name=`{1}`>'.format(user['username'], name))
            ctx.tenant = name
            return
        if name:
            if name not in self.store.tenants:
                raise ApiError(403, 'forbidden_error', 'Authorization failed: Tried to '
                               'authenticate with invalid tenant name: {0}'.format(name))
            if not ctx.is_admin and name not in user.get('tenant_roles', {}):
                raise ApiError(403, 'forbidden_error',
                               'User `{0}` is not permitted to perform the action {1} in the '
                               'tenant `{2}`'.format(user['username'], r['action'], name))
            ctx.tenant = name
            return
        if r['scoped'] and (rules.tenant_mode == 'optional_403' or r['write']):
            # observed-7.0: 403 'tenant not provided' for /snapshots without the header
            raise ApiError(403, 'forbidden_error', 'Authorization failed: tenant not provided')
        ctx.tenant = None

    # ==================================================================================
    # JSON bodies (behaviour §2.5; observed-7.0 §3.2)
    # ==================================================================================
    def json_body(self, ctx, required=(), must_be_object=True):
        request = ctx.request
        ctype = request.header('Content-Type')
        if ctype != JSON:
            raise ApiError(415, 'unsupported_content_type_error',
                           'Content type must be application/json')
        raw = request.body()
        try:
            body = json.loads(raw.decode('utf-8')) if raw else None
        except (ValueError, UnicodeDecodeError):
            # Flask/Werkzeug BadRequest: an HTML page (observed-7.0 'body not JSON')
            raise HtmlError(400, 'Bad Request', 'The browser (or proxy) sent a request that '
                            'this server could not understand.')
        if body is None:
            raise HtmlError(400, 'Bad Request', 'The browser (or proxy) sent a request that '
                            'this server could not understand.')
        if must_be_object and not isinstance(body, dict):
            # 3.4.2: request.json.get on a non-object -> 500 (behaviour §3.1)
            raise ApiError(500, 'internal_server_error',
                           'Internal error occurred in manager REST server - '
                           "AttributeError: '{0}' object has no attribute 'get'".format(
                               type(body).__name__),
                           server_traceback='Traceback (most recent call last):\n'
                           "AttributeError: '{0}' object has no attribute 'get'\n".format(
                               type(body).__name__))
        for name in required:
            if name not in body:
                raise bad('Missing {0} in json request body'.format(name))
        return body

    # ==================================================================================
    # lists (behaviour §4; observed-7.0 §5 'Lists'; MGR@4.2..7.0.4 rest_decorators / _paginate)
    # ==================================================================================
    def visible(self, ctx, records, all_tenants=False):
        if not self.rules.has_tenants:
            return list(records)
        user = ctx.user
        if all_tenants:
            tenants = None if ctx.is_admin else set(user.get('tenant_roles', {}))
        else:
            tenants = {ctx.tenant} if ctx.tenant else set()
        out = []
        for rec in records:
            if tenants is not None and rec.get('tenant_name') not in tenants and \
                    rec.get('visibility') != 'global':
                continue
            if rec.get('visibility') == 'private' and not ctx.is_admin and \
                    rec.get('created_by') != user['username']:
                continue
            out.append(rec)
        return out

    def get_one(self, ctx, kind, rid):
        with self.store.lock:
            found = self.visible(ctx, self.store.find(kind, rid))
        if not found:
            raise not_found(kind, rid)
        return found[0]

    def query_bool(self, ctx, name, default=False, label=None):
        """MGR@4.2 rest_decorators: 'all_tenants must be <true/false>' (no underscore);
        observed-7.0: '_include_system_workflows must be <true/false>, got yes'."""
        value = ctx.request.arg(name)
        if value is None:
            return default
        if label is None:
            label = name if self.rules.bool_error_keeps_underscore else name.lstrip('_')
        return _bool(label, value)

    def list_records(self, ctx, kind, records, fields, filter_map=None, get_all=False,
                     extra_filter=None, presenter=None):
        """Filter, sort, paginate and marshal `records` (already tenant-visible)."""
        rules = self.rules
        q = ctx.request.query
        include = None
        if q.get('_include') and q['_include'][-1]:
            include = q['_include'][-1].split(',')
            unknown = [k for k in include if k not in fields]
            if unknown:
                raise ApiError(400, 'no_such_include_field_error',
                               "Include keys '{0}' do not exist. Allowed keys are: {1}"
                               .format(unknown, list(fields)))
        sort = []
        for raw in q.get('_sort', []):
            name = raw.lstrip('+- ')
            if name not in fields:
                raise bad("Sort keys '{0}' do not exist. Allowed keys are: {1}".format(
                    [name], list(fields)))
            sort.append((name, raw.startswith('-')))
        filters = {}
        for key, values in q.items():
            if key.startswith('_'):
                continue
            target = (filter_map or {}).get(key, key)
            if target not in fields and key not in (filter_map or {}):
                raise bad("Filter keys '{0}' do not exist. Allowed keys are: {1}".format(
                    [key], list(fields)))
            filters[target] = values
        if extra_filter:
            filters.update(extra_filter)
        items = [rec for rec in records if _match(rec, filters)]
        for name, desc in reversed(sort):
            items.sort(key=lambda r, n=name: _sort_key(r.get(n)), reverse=desc)
        items, meta = self.paginate(ctx, items, get_all)
        present = presenter or (lambda rec, inc: datamod.present(kind, rec, rules, inc))
        return 200, {'metadata': meta, 'items': [present(rec, include) for rec in items]}

    def paginate(self, ctx, items, get_all=False):
        rules = self.rules
        q = ctx.request.query
        total = len(items)
        size_raw, offset_raw = ctx.request.arg('_size'), ctx.request.arg('_offset')
        size = offset = None
        for name, raw in (('_size', size_raw), ('_offset', offset_raw)):
            if raw is None:
                continue
            try:
                value = int(raw)
                if value < 0:
                    raise ValueError
            except ValueError:
                if rules.pydantic_errors:
                    raise ApiError(400, 'bad_parameters_error',
                                   '1 validation error for Pagination\n{0}\n  value is not a '
                                   'valid integer (type=type_error.integer)'.format(name),
                                   pydantic=True)
                raise bad('`{0}` is expected to be a positive integer'.format(name))
            if name == '_size':
                size = value
            else:
                offset = value
        want_all = False
        if get_all and '_get_all_results' in q:
            want_all = _bool('get_all_results', ctx.request.arg('_get_all_results'))
        meta_extra = {'filtered': None} if rules.list_meta_filtered else {}
        if rules.pagination == 'truncate':
            # 3.4.2: silently truncated at max_results (behaviour §4 pagination table)
            size = min(size if size is not None else rules.max_results, rules.max_results)
            offset = offset or 0
            page = items[offset:offset + size]
            return page, dict({'pagination': {'total': total, 'size': size,
                                              'offset': offset}}, **meta_extra)
        if rules.pagination == 'strict':
            # MGR@4.2/4.5 _paginate: pagination given -> size default 0 (empty page)
            if size is not None or offset is not None:
                size = size or 0
                offset = offset or 0
                if size > rules.max_results:
                    raise ApiError(400, 'illegal_action_error',
                                   'Invalid pagination size: {0}. Max allowed: {1}'.format(
                                       size, rules.max_results))
                page = items[offset:offset + size]
                return page, {'pagination': {'total': total, 'size': size,
                                             'offset': offset}}
            if not (want_all and rules.get_all_results == 'no_pagination') and \
                    total > rules.max_results:
                raise ApiError(400, 'illegal_action_error',
                               'Response size ({0}) bigger than max allowed ({1}), please use '
                               'pagination.'.format(total, rules.max_results))
            return items, {'pagination': {'total': total, 'size': 0, 'offset': 0}}
        # 4.5.5+: default_page_size 1000; 5.1+ honours _get_all_results
        size = rules.max_results if size is None else size
        offset = offset or 0
        if want_all and rules.get_all_results == 'all':
            page = items
        else:
            page = items[offset:offset + size]
        return page, dict({'pagination': {'total': total, 'size': size, 'offset': offset}},
                          **meta_extra)

    def resource_list(self, ctx, kind, extra_filter=None, filter_map=None, presenter=None):
        rules = self.rules
        all_tenants = False
        if rules.all_tenants_param:
            all_tenants = self.query_bool(ctx, '_all_tenants')
        get_all = False
        if rules.get_all_results is not None:
            get_all = (kind in datamod.GET_ALL_RESULTS_44 or
                       rules.get_all_results == 'all')
        with self.store.lock:
            records = self.visible(ctx, self.store.all(kind), all_tenants)
            return self.list_records(ctx, kind, records, datamod.fields_for(kind, rules),
                                     filter_map=filter_map, get_all=get_all,
                                     extra_filter=extra_filter, presenter=presenter)

    def one(self, ctx, kind, rid, status=200):
        rec = self.get_one(ctx, kind, rid)
        return status, self.present(ctx, kind, rec)

    def present(self, ctx, kind, rec):
        include = None
        raw = ctx.request.arg('_include')
        if raw:
            include = raw.split(',')
            fields = datamod.fields_for(kind, self.rules)
            unknown = [k for k in include if k not in fields]
            if unknown:
                raise ApiError(400, 'no_such_include_field_error',
                               "Include keys '{0}' do not exist. Allowed keys are: {1}"
                               .format(unknown, list(fields)))
        if kind == 'node_instances':
            return self.present_node_instance(rec, include)
        with self.store.lock:
            return datamod.present(kind, rec, self.rules, include)

    def present_node_instance(self, rec, include):
        with self.store.lock:
            out = datamod.present('node_instances', rec, self.rules, include)
            if 'runtime_properties' in out and rec['id'] == rec['host_id']:
                agent = datamod.current_agent(self.store, rec['tenant_name'], rec['id'])
                if agent is not None:
                    out['runtime_properties'].update(datamod.agent_runtime_properties(agent))
        return out


def _match(rec, filters):
    for name, values in filters.items():
        value = rec.get(name)
        wanted = values if isinstance(values, (list, tuple)) else [values]
        if isinstance(value, list):
            if not any(str(w) in [str(v) for v in value] for w in wanted):
                return False
            continue
        norm = str(value).lower() if isinstance(value, bool) else str(value)
        if not any((str(w).lower() if isinstance(value, bool) else str(w)) == norm
                   for w in wanted):
            return False
    return True


def _sort_key(value):
    if value is None:
        return (0, '')
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def _failed_login_message(rules, username):
    """observed-7.0 'wrong password' row (the same text answers a locked account, MGR@6.4.0+);
    MGR@4.4..6.3 authentication.py says 'Bad credentials or locked account' for a locked
    account and a wrong password alike [message simplified to one per version]."""
    if rules.account_lock_check == 'before_password' and rules.has_account_lock:
        return ('User unauthorized: Authentication failed for <User username=`{0}`>. Bad '
                'credentials or locked account'.format(username))
    return ('User unauthorized: Authentication failed for <User username=`{0}`>. Wrong '
            'credentials or locked account'.format(username))


def _token_sig(secret, user):
    msg = '{0}:{1}'.format(user['id'], user.get('api_token_key')).encode('utf-8')
    return hmac.new((secret or '').encode('utf-8'), msg, hashlib.sha256).hexdigest()[:32]


def make_token(mgr, user):
    """4.x-6.x tokens are signed with rest-security secret_key (behaviour §2.4 'Tokens')."""
    uid = base64.urlsafe_b64encode(str(user['id']).encode('ascii')).decode('ascii')
    return '{0}.{1}'.format(uid, _token_sig(mgr.rest_security.get('secret_key'), user))


def check_token(mgr, token):
    """The user of ``token``, or None; 7.0 raises the REST service's own 401 (tokens.py)."""
    rules = mgr.rules
    if rules.tokens_post:
        try:
            username = tokensmod.user_of(mgr.store, token)
        except tokensmod.TokenError as error:
            raise ApiError(error.status, error.code, error.message)
        with mgr.store.lock:
            return mgr.store.users.get(username)
    try:
        uid_part, sig = token.split('.', 1)
        uid = int(base64.urlsafe_b64decode(uid_part.encode('ascii')).decode('ascii'))
    except (ValueError, UnicodeDecodeError):
        return None
    with mgr.store.lock:
        user = mgr.store.user_by_id(uid)
        if user is None:
            return None
        if not hmac.compare_digest(sig, _token_sig(mgr.rest_security.get('secret_key'), user)):
            return None
        return user


# ======================================================================================
# endpoints
# ======================================================================================
@route('GET', r'/version', auth='version', scoped=False)
def version(api, ctx):
    """behaviour §2.2 table: fields per version; observed-7.0 GET /version."""
    rules = api.rules
    values = {'edition': rules.edition, 'version': rules.reported_version,
              'build': '85' if rules.is_3x else None, 'date': None, 'commit': None,
              'distribution': rules.distribution[0], 'distro_release': rules.distribution[1]}
    return 200, {k: values[k] for k in rules.version_fields}


@route('GET', r'/ok', auth='none', scoped=False, when='has_ok', prefixes=('v3.1',))
def ok(api, ctx):
    """behaviour §2.3: unauthenticated JSON string "OK" (200) or "FAIL" (500); behaviour §12.11:
    the FAIL comes after about 3 s (manager seconds, scaled; `ok_fail_delay` option)."""
    healthy = all(api.mgr.unit_active(u) for u in api.rules.units)
    if healthy:
        return 200, 'OK'
    api.mgr.sleep_real(api.mgr.ok_fail_delay())
    return 500, 'FAIL'


@route('GET', r'/snapshot-status', auth='none', scoped=False, when='has_snapshot_status',
       prefixes=('v3.1',))
def snapshot_status(api, ctx):
    """behaviour §2.3: {"status": "running"|"not-running"} from the flag file."""
    return 200, {'status': 'running' if api.mgr.snapshot_flag() else 'not-running'}


_OLD_STATUS_NAMES = {'cloudify-restservice': 'Manager Rest-Service', 'nginx': 'Webserver',
                     'cloudify-mgmtworker': 'Management Worker',
                     'cloudify-rabbitmq': 'RabbitMQ', 'cloudify-riemann': 'Riemann',
                     'postgresql-9.5': 'PostgreSQL', 'elasticsearch': 'Elasticsearch',
                     'postgresql': 'PostgreSQL'}


@route('GET', r'/status', scoped=False)
def status(api, ctx):
    rules = api.rules
    if rules.new_status_shape and ctx.api_version == 'v3.1':
        # behaviour §2.3 5.0.5+ shape; observed-7.0: always 200, ?summary=true -> services {}
        services = {}
        healthy = True
        names = [('Webserver', 'nginx'), ('Management Worker', 'cloudify-mgmtworker'),
                 ('Manager Rest-Service', 'cloudify-restservice'),
                 ('Cloudify API', 'cloudify-restservice'),
                 ('Cloudify Execution Scheduler', 'cloudify-mgmtworker'),
                 ('RabbitMQ', 'cloudify-rabbitmq'), ('PostgreSQL', 'postgresql')]
        for display, unit in names:
            active = api.mgr.unit_active(unit)
            healthy = healthy and active
            services[display] = {'status': 'Active' if active else 'Inactive',
                                 'is_remote': False, 'extra_info': {}}
        summary = ctx.request.arg('summary')
        if summary is not None and _bool('summary', summary):
            services = {}
        return 200, {'status': 'OK' if healthy else 'Fail', 'services': services}
    if not rules.v1_status:
        raise HtmlError(404, 'Not Found', 'The requested URL was not found on the server.')
    # behaviour §2.3 3.4.2-5.0.0 shape (and v1-v3 paths through 6.4)
    services = []
    for unit in rules.units:
        active = api.mgr.unit_active(unit)
        services.append({'display_name': _OLD_STATUS_NAMES.get(unit, unit), 'instances': [{
            'Id': unit + '.service', 'Description': unit + ' service',
            'LoadState': 'loaded', 'ActiveState': 'active' if active else 'inactive',
            'SubState': 'running' if active else 'dead',
            'MainPID': 1000 + len(services) if active else 0,
            'state': 'running' if active else 'dead'}]})
    return 200, {'status': 'running', 'services': services}


@route('GET', r'/tokens', scoped=False, when='tokens_get_signed')
def get_token(api, ctx):
    """4.x: GET /tokens returns a token signed with secret_key (behaviour §2.4)."""
    token = make_token(api.mgr, ctx.user)
    if api.rules.is_3x:
        return 200, {'value': token}
    return 200, {'value': token, 'role': ctx.user['role']}


@route('POST', r'/tokens', scoped=False, when='tokens_post')
def post_token(api, ctx):
    """observed-7.0 'POST /tokens {"description":"x"}' -> 200 with value ctok-<id>-<secret>;
    ``expiration_date`` and the purge of expired tokens as in tests/simulator/tokens.py."""
    body = api.json_body(ctx)
    try:
        return 200, tokensmod.create(api.store, ctx.user, body.get('description'),
                                     body.get('expiration_date'), api.mgr.token_history)
    except tokensmod.TokenError as error:
        raise ApiError(error.status, error.code, error.message)


@route('DELETE', r'/tokens/(?P<tid>[^/]+)', scoped=False, when='tokens_post')
def delete_token(api, ctx, tid):
    """MGR@7.0.4 tokens.py TokensId.delete: 204, or 404 'Could not find token <id>'."""
    try:
        tokensmod.delete(api.store, tid, ctx.user)
    except tokensmod.TokenError as error:
        raise ApiError(error.status, error.code, error.message)
    return Response(204, b'')


@route('GET', r'/tokens/(?P<tid>[^/]+)', scoped=False, when='tokens_post')
def get_token_by_id(api, ctx, tid):
    try:
        return 200, tokensmod.get(api.store, tid, ctx.user)
    except tokensmod.TokenError as error:
        raise ApiError(error.status, error.code, error.message)


@route('GET', r'/tokens', scoped=False, when='tokens_post')
def list_tokens(api, ctx):
    """behaviour §12.11: items carry `value`, the secret masked (rules.token_list_value)."""
    with api.store.lock:
        items = [tokensmod.present(t) for t in api.store.tokens.values()
                 if ctx.is_admin or t['username'] == ctx.user['username']]
    fields = ('id', 'username', 'role', 'expiration_date', 'last_used', 'description')
    if api.rules.token_list_value:
        fields = ('id', 'value') + fields[1:]
        for item in items:
            item['value'] = 'ctok-{0}-********'.format(item['id'])
    return api.list_records(ctx, 'tokens', items, fields,
                            presenter=lambda rec, inc: {k: rec.get(k) for k in
                                                        (inc or fields)})


def _user_out(api, user, get_data=False):
    troles = user.get('tenant_roles', {})
    return {'username': user['username'],
            'tenants': ({t: {'tenant-role': r, 'roles': [r]} for t, r in troles.items()}
                        if get_data else len(troles)),
            'tenant_roles': None, 'groups': {} if get_data else 0, 'role': user['role'],
            'group_system_roles': {}, 'active': user.get('active', True),
            'created_at': user.get('created_at'),
            'first_login_at': user.get('first_login_at'),
            'last_login_at': user.get('last_login_at'),
            'is_locked': api.mgr.is_locked(user['username']),
            'show_getting_started': True, 'password_hash': None}


@route('GET', r'/user', scoped=False, when='has_user_endpoint')
def current_user(api, ctx):
    """observed-7.0 'GET /user' shape."""
    return 200, _user_out(api, ctx.user)


@route('GET', r'/users', scoped=False, when='has_tenants')
def list_users(api, ctx):
    """Premium only (observed-7.0: community 404 missing_premium_package_error)."""
    if api.rules.edition != 'premium':
        raise ApiError(404, 'missing_premium_package_error',
                       'This feature exists only in the premium edition of Cloudify.\nPlease '
                       'contact sales for additional info.')
    if not ctx.is_admin:
        raise ApiError(403, 'forbidden_error', 'User `{0}` is not permitted to perform the '
                       'action user_list'.format(ctx.user['username']))
    get_data = api.query_bool(ctx, '_get_data')
    with api.store.lock:
        users = [dict(u) for u in api.store.users.values()]
    fields = ('username', 'tenants', 'tenant_roles', 'groups', 'role', 'group_system_roles',
              'active', 'created_at', 'first_login_at', 'last_login_at', 'is_locked',
              'show_getting_started', 'password_hash')
    for u in users:
        u['id_sort'] = u['id']

    def present(rec, inc):
        out = _user_out(api, rec, get_data)
        return {k: out[k] for k in (inc or fields)}
    return api.list_records(ctx, 'users', users, fields, presenter=present)


@route('POST', r'/users/(?P<username>[^/]+)', scoped=False, when='has_tenants',
       write=True)
def set_user_password(api, ctx, username):
    """`cfy users set-password` (rc705 users.py `set_password`: POST /users/<name>
    {"password"}): premium, sys_admin; the new hash uses the salt the REST service runs
    with (behaviour §7.2: SECURITY_PASSWORD_SALT = hash_salt)."""
    if api.rules.edition != 'premium':
        raise ApiError(404, 'missing_premium_package_error',
                       'This feature exists only in the premium edition of Cloudify.\nPlease '
                       'contact sales for additional info.')
    if not ctx.is_admin:
        raise ApiError(403, 'forbidden_error', 'User `{0}` is not permitted to perform the '
                       'action user_set_password'.format(ctx.user['username']))
    body = api.json_body(ctx, required=('password',))
    with api.store.lock:
        if username not in api.store.users:
            raise not_found('User', username)
    api.mgr.set_user_password(username, body['password'])
    with api.store.lock:
        return 200, _user_out(api, api.store.users[username])


@route('GET', r'/tenants', scoped=False, when='has_tenants')
def list_tenants(api, ctx):
    """observed-7.0 'GET /tenants' shape; community lists only default_tenant (behaviour §5.1)."""
    get_data = api.query_bool(ctx, '_get_data')
    with api.store.lock:
        tenants = [dict(t) for n, t in api.store.tenants.items()
                   if ctx.is_admin or n in ctx.user.get('tenant_roles', {})]
        members = {}
        for user in api.store.users.values():
            for t, role in user.get('tenant_roles', {}).items():
                members.setdefault(t, {})[user['username']] = role
    fields = ('name', 'groups', 'users', 'user_roles', 'rabbitmq_username',
              'rabbitmq_password', 'rabbitmq_vhost')

    def present(rec, inc):
        users = members.get(rec['name'], {})
        out = {'name': rec['name'], 'groups': {} if get_data else 0,
               'users': ({u: {'tenant-role': r, 'roles': [r]} for u, r in users.items()}
                         if get_data else len(users)),
               'user_roles': ({'direct': dict(users), 'groups': {}} if get_data else None),
               'rabbitmq_username': None, 'rabbitmq_password': None,
               'rabbitmq_vhost': None}
        return {k: out[k] for k in (inc or fields)}
    return api.list_records(ctx, 'tenants', tenants, fields,
                            get_all=api.rules.get_all_results is not None,
                            presenter=present)


def _node_list(api, ctx, kind, items_and_fields):
    items, fields = items_and_fields
    return api.list_records(ctx, kind, items, fields,
                            presenter=lambda rec, inc: {k: rec[k] for k in (inc or fields)})


@route('GET', r'/managers', scoped=False, when='has_cluster_nodes')
def managers(api, ctx):
    """Research of MGR@<tag> management_models.py Manager (fields per rules.py); behaviour §12.9:
    every manager of a cluster, or this all-in-one manager (topology.py)."""
    return _node_list(api, ctx, 'managers', topomod.manager_items(api.mgr.topology(),
                                                                  api.rules))


@route('GET', r'/brokers', scoped=False, when='has_cluster_nodes')
def brokers(api, ctx):
    return _node_list(api, ctx, 'brokers', topomod.broker_items(
        api.mgr.topology(), api.rules, ca_cert=api.mgr.ca_cert()))


@route('GET', r'/db-nodes', scoped=False, when='has_cluster_nodes')
def db_nodes(api, ctx):
    return _node_list(api, ctx, 'db-nodes', topomod.db_items(api.mgr.topology(), api.rules))


@route('GET', r'/cluster-status', scoped=False, when='has_cluster_status',
       prefixes=('v3.1',))
def cluster_status(api, ctx):
    """MGR@5.0.5..7.0.4 resources_v3_1/cluster_status.py (topology.py, rules.py)."""
    summary = ctx.request.arg('summary')
    return topomod.cluster_status(api.mgr.topology(), api.rules,
                                  summary=summary is not None and _bool('summary', summary))


@route('GET', r'/cluster', scoped=False, when='has_old_cluster_route')
def old_cluster(api, ctx):
    """Pre-5.0.5 HA cluster endpoint, premium only (behaviour §6.1: cfy falls back to it;
    README assumption: an uninitialised cluster unless the manager is a node of a simulated
    4.x HA cluster, behaviour §3.5)."""
    if api.rules.edition != 'premium':
        raise HtmlError(404, 'Not Found', 'The requested URL was not found on the server.')
    return 200, topomod.ha_state(api.mgr.topology())


@route('GET', r'/cluster/nodes', scoped=False, when='has_old_cluster_route')
def old_cluster_nodes(api, ctx):
    """ClusterNode items (COMMON@4.4 cluster.py; MGR@4.4 resources_v3/cluster.py ClusterNodes: 404
    before a cluster exists [U: the error code and message])."""
    if api.rules.edition != 'premium':
        raise HtmlError(404, 'Not Found', 'The requested URL was not found on the server.')
    items = topomod.ha_nodes(api.mgr.topology())
    if items is None:
        raise ApiError(404, 'not_found_error', 'Cluster not initialized (simulated message)')
    return 200, {'items': items, 'metadata': {'pagination': {
        'total': len(items), 'size': len(items), 'offset': 0}}}


@route('GET', r'/provider/context', scoped=False)
def provider_context(api, ctx):
    """cfy profiles use validates with it (behaviour §6.1); 4.2 keeps agent networks here
    (behaviour §3.6 item 2)."""
    mgr = api.mgr
    return 200, {'name': 'provider', 'context': {'cloudify': {
        'cloudify_agent': {'networks': dict(mgr.networks), 'broker_ip': '127.0.0.1',
                           'min_workers': 0, 'max_workers': 5},
        'workflows': {'task_retries': 60, 'task_retry_interval': 15}}}}


@route('GET', r'/license-check', scoped=False, when='has_license_check')
def license_check(api, ctx):
    """behaviour §11: premium cfy upload calls it (MGR@6.4.0+ LicenseCheckPremium: "OK"); an
    unlicensed premium manager refuses it at the licence gate (it is not in
    ALLOWED_LICENSE_ENDPOINTS, behaviour §12.2)."""
    if not api.rules.premium:
        raise HtmlError(404, 'Not Found', 'The requested URL was not found on the server.')
    return 200, None


LICENCE_FIELDS = ('customer_id', 'expiration_date', 'license_edition', 'trial',
                  'cloudify_version', 'capabilities', 'expired')


def _premium_only(api):
    """MGR@4.6 MissingPremiumFeatureResource / MGR@6.4+ `premium_only`: JSON 404 (observed-7.0;
    behaviour §12.11 community GET /license)."""
    if not api.rules.premium:
        raise ApiError(404, 'missing_premium_package_error',
                       'This feature exists only in the premium edition of Cloudify.\nPlease '
                       'contact sales for additional info.')


@route('GET', r'/license', scoped=False, when='has_license_endpoint')
def license_list(api, ctx):
    """behaviour §12.2: a paginated list, `items: []` without a licence (the endpoint is on the
    licence allow-list); items per MGR@4.6..7.0.4 responses_v3.License."""
    _premium_only(api)
    items = api.mgr.licence_items()
    return api.list_records(ctx, 'license', items, LICENCE_FIELDS,
                            presenter=lambda rec, inc: {k: rec.get(k)
                                                        for k in (inc or LICENCE_FIELDS)})


@route('PUT', r'/license', scoped=False, when='has_license_endpoint', admin=True,
       action='license_upload')
def license_upload(api, ctx):
    """`cfy license upload` (COMMON@7.0.4 license.py: PUT /license, the file as the body).
    The real file is signed and its format closed; the simulator accepts a JSON or YAML
    mapping of the License fields, optionally under `license:` (README [U]).  behaviour §12.2: a
    licence older than the manager -> 400 unverified_cloudify_license."""
    _premium_only(api)
    raw = ctx.request.body()
    try:
        import yaml
        doc = yaml.safe_load(raw.decode('utf-8')) if raw else None
    except Exception:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get('license'), dict):
        doc = doc['license']
    if not isinstance(doc, dict):
        raise ApiError(400, 'unverified_cloudify_license',
                       'The license could not be verified (simulated message)')
    version = doc.get('cloudify_version')           # null: valid for every version
    if version is not None and api.rules.licence_version_older(str(version)):
        raise ApiError(400, 'unverified_cloudify_license',
                       "The license version is older than the Manager's version")
    api.mgr.set_licence(None if version is None else str(version),
                        edition=doc.get('license_edition') or 'Premium',
                        trial=bool(doc.get('trial')),
                        expiration_date=doc.get('expiration_date'),
                        customer_id=doc.get('customer_id'))
    return 200, api.mgr.licence_items()[0]


@route('GET', r'/maintenance', scoped=False)
def maintenance_get(api, ctx):
    return 200, api.mgr.maintenance_state()


@route('POST', r'/maintenance/(?P<action>activate|deactivate)', scoped=False, admin=True)
def maintenance_post(api, ctx, action):
    return 200, api.mgr.set_maintenance(action == 'activate', ctx.user['username'])


@route('GET', r'/events', scoped=True)
def events(api, ctx):
    """The simulated events of the executions named by ``execution_id`` (every execution
    when none is named), oldest first, paged with ``_offset`` / ``_size``, filtered by
    ``type`` and ``level`` (MGR@5.0.5 rest/resources_v1/events.py ALLOWED_FILTERS; a level
    filter drops events, which have none): the workflow events the simulated worker sends
    (README "Events"), shaped flat on v3.1 (cloudify-manager@7.0.4 rest-service/
    manager_rest/rest/resources_v3_1/events.py ``_map_event_to_dict``) and nested as
    Elasticsearch answered before it on v3 and older (cloudify-manager@4.2 rest-service/
    manager_rest/rest/resources_v2/events.py: ``message.text``, ``context``); and the
    restore workflow's deployment-environment log records of 4.x-5.0.x (flat)."""
    size = int(ctx.request.arg('_size') or 1000)
    offset = int(ctx.request.arg('_offset') or 0)
    query = ctx.request.query
    wanted_ids = query.get('execution_id') or []
    types = query.get('type') or ['cloudify_event', 'cloudify_log']
    levels = query.get('level') or []
    found = []
    if 'cloudify_event' in types and not levels:
        found = [_event_shape(event, ctx.api_version)
                 for event in api.mgr.events_of(wanted_ids)
                 if ctx.tenant is None or event.get('tenant_name') in (None, ctx.tenant)]
    if 'cloudify_log' in types:
        found += [{k: v for k, v in e.items() if k != 'tenant_name'}
                  for e in list(api.mgr.workflow_logs)
                  if (not wanted_ids or e['execution_id'] in wanted_ids)
                  and (not levels or e['level'] in levels)
                  and e.get('tenant_name') in (None, ctx.tenant)]
    found.sort(key=lambda item: item.get('timestamp') or item.get('@timestamp') or '')
    page = found[offset:offset + size]
    return 200, {'metadata': {'pagination': {'total': len(found), 'size': size,
                                             'offset': offset}}, 'items': page}


def _event_shape(event, api_version):
    event = {key: value for key, value in event.items() if key != 'tenant_name'}
    if api_version == 'v3.1':
        return event
    context = {name: event.pop(name, None) for name in (
        'deployment_id', 'execution_id', 'workflow_id', 'operation', 'node_name',
        'blueprint_id', 'source_id', 'target_id')}
    context['node_id'] = event.pop('node_instance_id', None)
    context['task_error_causes'] = event.pop('error_causes', None)
    event['@timestamp'] = event['timestamp']
    event['message'] = {'text': event['message'], 'arguments': None}
    event['context'] = context
    return event


# ---- plain resources ---------------------------------------------------------------------
@route('GET', r'/blueprints')
def blueprints(api, ctx):
    return api.resource_list(ctx, 'blueprints')


@route('GET', r'/blueprints/(?P<rid>[^/]+)')
def blueprint(api, ctx, rid):
    return api.one(ctx, 'blueprints', rid)


@route('GET', r'/deployments')
def deployments(api, ctx):
    return api.resource_list(ctx, 'deployments')


@route('GET', r'/deployments/(?P<rid>[^/]+)')
def deployment(api, ctx, rid):
    return api.one(ctx, 'deployments', rid)


@route('GET', r'/nodes')
def nodes(api, ctx):
    return api.resource_list(ctx, 'nodes')


@route('GET', r'/node-instances')
def node_instances(api, ctx):
    return api.resource_list(ctx, 'node_instances',
                             presenter=lambda rec, inc: api.present_node_instance(rec, inc))


@route('GET', r'/node-instances/(?P<rid>[^/]+)')
def node_instance(api, ctx, rid):
    return api.one(ctx, 'node_instances', rid)


@route('GET', r'/secrets')
def secrets_list(api, ctx):
    return api.resource_list(ctx, 'secrets')


@route('GET', r'/plugins')
def plugins(api, ctx):
    return api.resource_list(ctx, 'plugins')


@route('GET', r'/sites', when='has_sites')
def sites(api, ctx):
    return api.resource_list(ctx, 'sites')


# ---- executions ------------------------------------------------------------------------
@route('GET', r'/executions')
def executions(api, ctx):
    """behaviour §4: system workflows hidden unless _include_system_workflows=true; 404 for an
    unknown deployment_id filter (MGR@4.2 resources_v2/executions.py)."""
    include_system = api.query_bool(ctx, '_include_system_workflows',
                                    label='_include_system_workflows')
    did = ctx.request.arg('deployment_id')
    if did:
        all_tenants = api.rules.all_tenants_param and api.query_bool(ctx, '_all_tenants')
        with api.store.lock:
            if not api.visible(ctx, api.store.find('deployments', did), all_tenants):
                raise not_found('deployments', did)
    unknown = [s for s in ctx.request.query.get('status', [])
               if s not in api.rules.execution_states]
    if unknown and api.rules.unknown_status_filter_500:
        # behaviour §12.11 (obs 7.0.4): the PostgreSQL enum rejects the value -> 500
        message = ('(psycopg2.errors.InvalidTextRepresentation) invalid input value for enum '
                   'execution_status: "{0}"'.format(unknown[0]))
        raise ApiError(500, 'internal_server_error',
                       'Internal error occurred in manager REST server - DataError: ' +
                       message, server_traceback='Traceback (most recent call last):\n'
                       'sqlalchemy.exc.DataError: ' + message + '\n')
    extra = None if include_system else {'is_system_workflow': ['false']}
    return api.resource_list(ctx, 'executions', extra_filter=extra)


@route('GET', r'/executions/(?P<rid>[^/]+)')
def execution(api, ctx, rid):
    return api.one(ctx, 'executions', rid)


def _declared_params(rules, dep, workflow_id):
    """The parameters the deployment's stored workflow declares: a restored deployment keeps
    the types of the version that created it (MGR@7.0.4
    resource_models.py Execution.merge_workflow_parameters); else this version's
    (rules.workflow_parameters)."""
    for wf in dep.get('workflows') or []:
        if wf.get('name') == workflow_id and wf.get('parameters'):
            return {k: (v.get('default') if isinstance(v, dict) else v)
                    for k, v in wf['parameters'].items()}
    return rules.workflow_parameters(workflow_id)


@route('POST', r'/executions', write=True)
def start_execution(api, ctx):
    """MGR@4.2 resources_v1/executions.py post + resource_manager.execute_workflow;
    observed-7.0 'POST /executions' rows."""
    rules, store = api.rules, api.store
    body = api.json_body(ctx, required=('deployment_id', 'workflow_id'))
    allow_custom = _bool('allow_custom_parameters', body.get('allow_custom_parameters',
                                                             'false'))
    force = _bool('force', body.get('force', 'false'))
    did, wid = body['deployment_id'], body['workflow_id']
    params = body.get('parameters')
    if params is not None and not isinstance(params, dict):
        raise bad("request body's 'parameters' field must be a dict but is of type {0}"
                  .format(type(params).__name__))
    with store.lock:
        dep = api.get_one(ctx, 'deployments', did)
        if wid not in [w['name'] for w in dep.get('workflows', [])]:
            raise ApiError(400, 'nonexistent_workflow_error',
                           'Workflow {0} does not exist in deployment {1}'.format(wid, did))
        active = [e for e in api.visible(ctx, store.all('executions'))
                  if e['status'] in datamod.ACTIVE_STATES]
        system = [e for e in active if e['deployment_id'] is None]
        if system and rules.system_wide_check:
            raise ApiError(400, 'existing_running_execution_error',
                           'You cannot start an execution if there is a running system-wide '
                           'execution (id: {0})'.format(system[0]['id']))
        running = [e['id'] for e in active if e['deployment_id'] == did
                   and e['tenant_name'] == dep['tenant_name']]
        if running and not force:
            raise ApiError(400, 'existing_running_execution_error',
                           'The following executions are currently running for this '
                           'deployment: {0}. To execute this workflow anyway, pass '
                           '"force=true" as a query parameter to this request'.format(running))
        declared = _declared_params(rules, dep, wid)
        custom = [k for k in (params or {}) if k not in declared]
        if custom and not allow_custom and declared:
            raise ApiError(400, 'illegal_execution_parameters_error',
                           'Workflow "{0}" does not have the following parameters declared: '
                           '{1}. Remove these parameters or use the flag for allowing custom '
                           'parameters'.format(wid, ','.join(custom)))
        merged = dict(declared)
        merged.update(params or {})
        ex = datamod.new_execution(str(uuid.uuid4()), wid, dep['tenant_name'],
                                   ctx.user['username'], did, dep['blueprint_id'], merged,
                                   is_system=False)
        ex['allow_custom_parameters'] = allow_custom
        store.put('executions', ex)
    api.mgr.run_execution(ex)
    return 201, api.present(ctx, 'executions', ex)


@route('POST', r'/executions/(?P<rid>[^/]+)', write=True)
def execution_action(api, ctx, rid):
    """observed-7.0 §3.2 'Cancelling stuck executions'; valid actions per version."""
    body = api.json_body(ctx, required=('action',))
    action = body['action']
    valid = list(api.rules.cancel_actions)
    if action not in valid:
        raise bad('Invalid action: {0}, Valid action values are: {1}'.format(action, valid))
    ex = api.get_one(ctx, 'executions', rid)
    with api.store.lock:
        if action in ('cancel', 'force-cancel', 'kill'):
            if ex['status'] in datamod.END_STATES:
                raise ApiError(400, 'illegal_action_error',
                               "Can't {0} execution {1} in status {2}".format(
                                   action, rid, ex['status']))
            ex['status'] = {'cancel': 'cancelling', 'force-cancel': 'force_cancelling',
                            'kill': 'kill_cancelling'}[action]
            ex['_cancel'] = action
    return 200, api.present(ctx, 'executions', ex)


@route('PATCH', r'/executions/(?P<rid>[^/]+)', write=True, admin=True)
def execution_update(api, ctx, rid):
    """observed-7.0: an admin PATCH {"status": "cancelled"} finalises a stuck execution."""
    body = api.json_body(ctx, required=('status',))
    if body['status'] not in api.rules.execution_states:
        raise bad('Invalid status: {0}'.format(body['status']))
    ex = api.get_one(ctx, 'executions', rid)
    with api.store.lock:
        ex['status'] = body['status']
        ex['error'] = body.get('error', ex.get('error') or '')
        if body['status'] in datamod.END_STATES:
            ex['ended_at'] = datamod.ts()
            ex['_cancel'] = ex.get('_cancel') or 'kill'
    return 200, api.present(ctx, 'executions', ex)


# ---- snapshots ------------------------------------------------------------------------
@route('GET', r'/snapshots')
def snapshots(api, ctx):
    return api.resource_list(ctx, 'snapshots')


@route('GET', r'/snapshots/(?P<sid>[^/]+)')
def snapshot(api, ctx, sid):
    return api.one(ctx, 'snapshots', sid)


def _validate_snapshot_id(rules, sid):
    """behaviour §3.1 constraints (4.4+); observed-7.0 messages."""
    if not rules.snapshot_id_rules:
        return
    if not sid or len(sid) > 256:
        raise bad('The `snapshot_id` argument is empty or too long')
    if not re.match(r'^[A-Za-z0-9._-]+$', sid):
        raise bad('The `snapshot_id` argument contains illegal characters. Only letters, '
                  'digits and the characters "-", "." and "_" are allowed')
    if not sid[0].isalpha():
        raise bad('The `snapshot_id` argument must begin with a letter')


def _conflict(api, kind, rid, tenant):
    model = MODEL_NAMES[kind]
    if api.rules.is_3x:
        return ApiError(409, 'conflict_error', '{0} {1} already exists'.format(model, rid))
    return ApiError(409, 'conflict_error', '<{0} id=`{1}` tenant=`{2}`> already exists on '
                    '<Tenant name=`{2}`> or with global visibility'.format(model, rid, tenant))


def _running_ids(rules, active):
    ids = [e['id'] for e in active]
    return ', '.join(ids) if rules.running_execution_ids_joined else ids


def _active_executions(api, ctx):
    return [e for e in api.visible(ctx, api.store.all('executions'))
            if e['status'] in datamod.ACTIVE_STATES and e['status'] != 'queued']


@route('PUT', r'/snapshots/(?P<sid>[^/]+)', write=True, admin=True, action='snapshot_create')
def create_snapshot(api, ctx, sid):
    """behaviour §3.1; observed-7.0 'PUT /snapshots/<id>' rows."""
    rules, store, mgr = api.rules, api.store, api.mgr
    body = api.json_body(ctx)
    _validate_snapshot_id(rules, sid)
    params = {'snapshot_id': sid}
    for key, default in rules.snapshot_create_keys.items():
        value = body.get(key, default)
        if isinstance(default, bool):
            value = _bool(key, value if key in body else str(default).lower())
        params[key] = value
    queue = bool(params.get('queue')) and rules.queue_supported
    with store.lock:
        tenant = ctx.tenant or 'default_tenant'
        if store.find('snapshots', sid, [tenant]):
            raise _conflict(api, 'snapshots', sid, tenant)
        active = _active_executions(api, ctx)
        if active and rules.system_wide_check and not queue:
            raise ApiError(400, 'existing_running_execution_error',
                           rules.running_execution_message.format(
                               ids=_running_ids(rules, active)))
        # behaviour §12.11 / rules.py snapshot_visibility: private from 4.3
        visibility = ('private' if rules.snapshot_visibility == 'private' or
                      params.get('private_resource') else 'tenant')
        store.put('snapshots', {'id': sid, 'created_at': datamod.ts(), 'status': 'creating',
                                'error': '', 'tenant_name': tenant,
                                'created_by': ctx.user['username'], 'visibility': visibility})
        # observed-7.0 §3.1: the parameters show config.postgresql_password
        wf_params = dict(params)
        if not rules.is_3x:
            wf_params['config'] = {'postgresql_username': 'cloudify',
                                   'postgresql_password': 'sim-postgres-password',
                                   'postgresql_db_name': 'cloudify_db',
                                   'postgresql_host': 'localhost'}
        ex = datamod.new_execution(str(uuid.uuid4()), 'create_snapshot', tenant,
                                   ctx.user['username'], parameters=wf_params)
        if queue and active:
            ex['status'] = 'queued'
        store.put('executions', ex)
    mgr.run_execution(ex)
    return 201, api.present(ctx, 'executions', ex)


@route('DELETE', r'/snapshots/(?P<sid>[^/]+)', write=True, admin=True,
       action='snapshot_delete')
def delete_snapshot(api, ctx, sid):
    rec = api.get_one(ctx, 'snapshots', sid)
    with api.store.lock:
        if api.rules.snapshot_delete_checks_executions:
            # behaviour §3.2: 6.0+ refuses while a create/restore execution for it is active
            for e in api.store.all('executions'):
                if e['workflow_id'] in ('create_snapshot', 'restore_snapshot') and \
                        (e.get('parameters') or {}).get('snapshot_id') == sid and \
                        e['status'] in datamod.ACTIVE_STATES:
                    raise ApiError(400, 'illegal_action_error',
                                   'Cannot delete snapshot {0}: execution {1} is running'
                                   .format(sid, e['id']))
        out = api.present(ctx, 'snapshots', rec)
        api.store.delete('snapshots', rec)
    api.mgr.remove_snapshot_file(sid)
    return 200, out


@route('PATCH', r'/snapshots/(?P<sid>[^/]+)', write=True, admin=True)
def patch_snapshot(api, ctx, sid):
    body = api.json_body(ctx, required=('status',))
    rec = api.get_one(ctx, 'snapshots', sid)
    with api.store.lock:
        rec['status'] = body['status']
        rec['error'] = body.get('error', '')
    return 200, api.present(ctx, 'snapshots', rec)


def _parse_range(header, size):
    """A single 'bytes=a-b' range -> (start, end) / 'unsatisfiable' / None (whole file)."""
    m = re.match(r'^bytes=(\d*)-(\d*)$', (header or '').strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:
        length = int(m.group(2))
        if length == 0:
            return 'unsatisfiable'
        start, end = max(0, size - length), size - 1
    if start >= size or start > end:
        return 'unsatisfiable'
    return start, min(end, size - 1)


@route('GET', r'/snapshots/(?P<sid>[^/]+)/archive', admin=True, action='snapshot_download')
def download_snapshot(api, ctx, sid):
    """behaviour §3.3: headers of make_streaming_response, file served by nginx (README:
    Content-Length and Range are nginx's; Range support is [I/U] in behaviour §3.3)."""
    mgr, rules = api.mgr, api.rules
    rec = api.get_one(ctx, 'snapshots', sid)
    if rec['status'] == 'failed':
        raise ApiError(400, 'snapshot_action_error', 'Failed snapshot cannot be downloaded')
    path = mgr.snapshot_path(sid)
    if not os.path.isfile(path):
        return nginx_page(404)          # the X-Accel target is missing: nginx's 404 page
    size = os.path.getsize(path)
    filename = ('attachment; filename="{0}.zip"' if rules.download_filename_quoted
                else 'attachment; filename={0}.zip').format(sid)
    headers = [('Content-Disposition', filename), ('Cache-Control', 'no-cache'),
               ('Accept-Ranges', 'bytes')]
    drop = mgr.faults.take_drop(ctx.request.path)
    chunked = bool(mgr.faults.no_content_length) or (
        mgr.download_headers == 'rest' and not rules.rest_sends_content_length)
    rng = _parse_range(ctx.request.header('Range'), size)
    if rng == 'unsatisfiable':
        return Response(416, b'', headers=[('Content-Range', 'bytes */{0}'.format(size))],
                        content_type='text/html')
    if rng is not None:
        start, end = rng
        headers.append(('Content-Range', 'bytes {0}-{1}/{2}'.format(start, end, size)))
        return Response(206, headers=headers, path=path, file_range=(start, end),
                        content_type='application/octet-stream', chunked=chunked,
                        drop_after=drop)
    return Response(200, headers=headers, path=path, content_type='application/octet-stream',
                    chunked=chunked, drop_after=drop)


@route('PUT', r'/snapshots/(?P<sid>[^/]+)/archive', write=True, admin=True,
       action='snapshot_upload')
def upload_snapshot(api, ctx, sid):
    """behaviour §3.4; observed-7.0 'PUT /snapshots/up1/archive' rows."""
    rules, store, mgr = api.rules, api.store, api.mgr
    request = ctx.request
    ctype = (request.header('Content-Type') or '')
    if rules.upload_form_content_type_413 and \
            ctype.startswith('application/x-www-form-urlencoded'):
        request.drain()
        return nginx_page(413)          # observed-7.0: curl's default content type -> 413 HTML
    if request.arg('snapshot_archive_url'):
        request.drain()
        raise bad('snapshot_archive_url is not supported by the simulator')
    tenant = ctx.tenant or 'default_tenant'
    with store.lock:
        exists = bool(store.find('snapshots', sid, [tenant]))
    if exists and rules.upload_existing == 'conflict':
        request.drain()
        raise _conflict(api, 'snapshots', sid, tenant)
    mgr.receive_snapshot_file(sid, request.iter_body())
    if exists:
        # 7.0.4: the archive is replaced, 201 with every field null (observed-7.0)
        return 201, {k: None for k in rules.snapshot_fields()}
    visibility = 'private'              # 4.3+ (rules.py snapshot_visibility; observed-7.0)
    if rules.snapshot_visibility == 'param':
        visibility = 'tenant'
        if rules.upload_private_resource_param and \
                _bool('private_resource', request.arg('private_resource', 'false')):
            visibility = 'private'
    with store.lock:
        rec = store.put('snapshots', {'id': sid, 'created_at': datamod.ts(),
                                      'status': 'uploaded', 'error': '',
                                      'tenant_name': tenant,
                                      'created_by': ctx.user['username'],
                                      'visibility': visibility})
    return 201, api.present(ctx, 'snapshots', rec)


@route('POST', r'/snapshots/(?P<sid>[^/]+)/restore', write=True, admin=True,
       action='snapshot_restore')
def restore_snapshot(api, ctx, sid):
    """behaviour §3.5 table and 'Further details'; observed-7.0 restore rows."""
    rules, store, mgr = api.rules, api.store, api.mgr
    if rules.restore_refused_on_multi_node_cluster:
        # behaviour §3.5: before the body is read (rules.py 'clusters')
        refusal = topomod.multi_node_refusal(mgr.topology(), 'restore snapshot')
        if refusal:
            raise ApiError(400, 'illegal_action_error', refusal)
    body = api.json_body(ctx)
    for name in rules.restore_required:
        if name not in body:
            raise bad('Missing {0} in json request body'.format(name))
    for name in rules.restore_required:
        if name not in ('tenant_name',):
            _bool(name, body[name], strict=rules.restore_bool_strict)
    if 'force' not in body:
        raise ApiError(500, 'internal_server_error',
                       "Internal error occurred in manager REST server - KeyError: 'force'",
                       server_traceback="Traceback (most recent call last):\n"
                       "KeyError: 'force'\n")
    force = _bool('force', body['force'], strict=rules.restore_bool_strict)
    certs = no_reboot = False
    if rules.restore_has_certificates:
        certs = _bool('restore_certificates', body.get('restore_certificates', False),
                      strict=rules.restore_bool_strict)
        no_reboot = _bool('no_reboot', body.get('no_reboot', False),
                          strict=rules.restore_bool_strict)
        if no_reboot and not certs:
            raise bad('`no_reboot` is only relevant when `restore_certificates` is activated')
    try:
        timeout = int(body.get('timeout', 300))
    except (TypeError, ValueError):
        raise bad('invalid literal for int() with base 10: {0!r}'.format(body.get('timeout')))
    rec = api.get_one(ctx, 'snapshots', sid)
    if rec['status'] == 'failed':
        raise ApiError(400, 'snapshot_action_error', 'Failed snapshot cannot be restored')
    params = {'snapshot_id': sid, 'force': force, 'timeout': timeout,
              'restore_certificates': certs, 'no_reboot': no_reboot,
              '_caller_id': ctx.user['id']}
    if 'recreate_deployments_envs' in rules.restore_required:
        params['recreate_deployments_envs'] = _bool('recreate_deployments_envs',
                                                    body['recreate_deployments_envs'])
    if 'tenant_name' in rules.restore_required:
        params['tenant_name'] = body.get('tenant_name')
    if rules.restore_reads_ignore_plugin_failure:
        # behaviour §12.4; MGR@4.5..5.0.5 resources_v2/snapshots.py: verify_and_convert_bool(
        # 'ignore_plugin_failure', request_dict.get('ignore_plugin_failure', 'false'))
        params['ignore_plugin_failure'] = _bool(
            'ignore_plugin_failure', body.get('ignore_plugin_failure', False))
    tenant = ctx.tenant or 'default_tenant'
    with store.lock:
        active = _active_executions(api, ctx)
        ex = datamod.new_execution(str(uuid.uuid4()), 'restore_snapshot', tenant,
                                   ctx.user['username'], parameters=params)
        if active:
            if rules.rejected_restore_leaves_row:
                store.put('executions', ex)      # observed-7.0: a pending row is left behind
            raise ApiError(400, 'existing_running_execution_error',
                           rules.running_execution_message.format(
                               ids=_running_ids(rules, active)))
        store.put('executions', ex)
    mgr.run_execution(ex)
    # 200 marshalled with the Snapshot schema although it is the execution (behaviour §3.5)
    return 200, datamod.present('snapshots', ex, rules)
