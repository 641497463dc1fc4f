"""Maintenance mode of the simulated REST service: which requests pass, which are refused
while the mode is ``activating`` (executions still running) or ``activated``, and the
``X-BYPASS-MAINTENANCE`` header.

Rule (MGR@5.2.0..7.0.4 rest-service/manager_rest/maintenance.py maintenance_mode_handler;
behaviour §12.5): nothing happens while deactivated; a request with a non-empty
``X-BYPASS-MAINTENANCE`` passes when its user may ``maintenance_mode_set`` (5.2+, the
credentials are checked then, a wrong password is a 401), on 4.x-5.1 only when it comes from
the manager host itself (MGR@4.2 ``_is_internal_request``, MGR@4.6/5.0.5
``utils.is_internal_request``), which a test client never is; while ``activating`` with
executions running only writes to ``snapshots/<id>``, ``snapshots/<id>/restore``,
``executions``, ``deployments/<id>`` and ``deployment-modifications`` are refused
(``entering_maintenance_mode``); once ``activated`` every endpoint outside
``rules.maintenance_allowed`` (the first path segment) answers 503
``maintenance_mode_active`` with ``server_traceback`` set (``_create_maintenance_error``).
"""
import re

MESSAGE = ('Your request was rejected since Cloudify manager is currently in maintenance '
           'mode')
_ACTIVATING_REFUSED = (
    (r'^snapshots/[^/]+$', True), (r'^snapshots/[^/]+/restore$', False),
    (r'^executions$', True), (r'^deployments/[^/]+$', True),
    (r'^deployment-modifications$', True))


def _error(api, code):
    from tests.simulator.api import ApiError
    return ApiError(503, code, MESSAGE, server_traceback=api.rules.maintenance_traceback)


def _bypass(api, ctx, route):
    """True when the X-BYPASS-MAINTENANCE header lets this request through."""
    if not ctx.request.header('X-BYPASS-MAINTENANCE'):
        return False
    if api.rules.maintenance_bypass != 'admin':
        return False                    # internal requests only: a test client is remote
    # is_user_action_allowed('maintenance_mode_set'): flask-login loads the user from the
    # request's credentials (a wrong password raises 401 here; none: anonymous, no bypass)
    headers = ctx.request.headers
    if not headers.get('Authentication-Token') and \
            not (headers.get('Authorization') or '').startswith('Basic '):
        return False
    api._authenticate(ctx, dict(route, auth='version', admin=False))
    return ctx.user is not None and ctx.is_admin


def check(api, ctx, route):
    """Raise the maintenance error for this request, or return to let it through."""
    state = api.mgr.maintenance_state()
    if state['status'] == 'deactivated':
        return
    if _bypass(api, ctx, route):
        return
    endpoint = ctx.rest.strip('/')
    if state['status'] == 'activating':
        write = ctx.request.method in ('POST', 'PATCH', 'PUT')
        for pattern, only_writes in _ACTIVATING_REFUSED:
            if re.match(pattern, endpoint) and (write or not only_writes):
                raise _error(api, 'entering_maintenance_mode')
        return
    if endpoint.split('/', 1)[0] in api.rules.maintenance_allowed:
        return
    raise _error(api, 'maintenance_mode_active')
