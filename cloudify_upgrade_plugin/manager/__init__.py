"""Version-aware access to Cloudify Managers 3.4.2 - 7.0 over cloudify_rest_client.

Owns nothing itself; it re-exports the layer's entry points lazily (so that importing a
submodule stays cheap): ``Manager`` (client.py), ``Credentials`` (credentials.py),
``Connection`` (connection.py), ``ManagerInfo`` and ``discover`` (discovery.py),
``normalise_status`` (status.py), ``wait_for_execution``, ``wait_for_rest`` and
``wait_for_restore_flag``, ``log_event`` (events.py), ``RetryPolicy`` (retry.py).
The plugin's own modules import the submodules directly.
"""
import importlib

_EXPORTS = {
    'Manager': 'client',
    'Credentials': 'credentials',
    'Connection': 'connection',
    'normalise_status': 'status',
    'ManagerInfo': 'discovery',
    'discover': 'discovery',
    'wait_for_execution': 'waits',
    'wait_for_rest': 'waits',
    'wait_for_restore_flag': 'waits',
    'log_event': 'events',
    'RetryPolicy': 'retry',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module('{0}.{1}'.format(__name__, module)), name)
