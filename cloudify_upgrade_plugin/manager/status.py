"""A manager's status in one shape for every version, and what it says about its health.

3.4.2-5.0.0 answer ``GET /status`` with systemd units, 5.0.5+ with named services (behaviour
§2.3); ``normalise_status`` maps both to ``{status, healthy, shape, services}`` and
``health`` to ``('ok'|'degraded'|'fail', [failing services])``.
"""
from typing import List, Tuple


def normalise_status(body) -> dict:
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


def health(status: dict) -> Tuple[str, List[str]]:
    """('ok'|'degraded'|'fail', [failing service names]) of a ``normalise_status`` result."""
    failing = sorted(name for name, state in status['services'].items() if state != 'Active')
    if status['healthy']:
        return 'ok', failing
    if status.get('status') == 'Degraded':
        return 'degraded', failing
    return 'fail', failing
