"""The REST calls that fence a manager: maintenance mode and execution schedules.

``FencingCalls`` is a part of ``manager.client.Manager`` (its base class), kept here so that
the client module stays small: reading and activating maintenance mode (prepare's
``--freeze``, new-host's fence of the old manager) and enabling or disabling one execution
schedule (5.2+; behaviour §12.5).  The calls go through the ``Manager``'s own ``get`` /
``request``, so retries, error translation, the ``Tenant`` header and
``X-BYPASS-MAINTENANCE`` (``Manager.bypassing_maintenance``) apply as to every other call.
"""
from typing import Optional
from urllib.parse import quote

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError

TENANT_HEADER = 'Tenant'


class FencingCalls:
    """Maintenance mode and execution schedules (mixed into ``Manager``)."""

    def maintenance(self) -> dict:
        """``GET /maintenance``: ``status`` and, while activating, ``remaining_executions``."""
        return self.get('/maintenance', what='reading maintenance mode') or {}

    def maintenance_state(self) -> Optional[str]:
        """'activated', 'activating', 'deactivated', or None where the manager cannot
        tell (no maintenance mode, or not JSON)."""
        try:
            return self.maintenance().get('status')
        except UpgradeError as error:
            if error.error_id in ('not-found', 'manager-bad-answer'):
                return None
            raise

    def activate_maintenance(self) -> None:
        self.request('post', '/maintenance/activate', data={}, expected=(200, 201, 304),
                     what='activating maintenance mode')

    def set_schedule_enabled(self, schedule_id: str, deployment_id: str, enabled: bool,
                             tenant: Optional[str] = None) -> dict:
        """``PATCH /execution-schedules/<id> {"enabled": ...}`` (201 with the schedule) in
        ``tenant``; ``?deployment_id=`` where the version needs it (6.0+).  Idempotent, so
        retried like a read."""
        params = {'deployment_id': deployment_id} \
            if versions.schedule_calls_need_deployment_id(self.version) else None
        headers = {TENANT_HEADER: tenant} if tenant else None
        return self.request(
            'patch', '/execution-schedules/{0}'.format(quote(schedule_id, safe='')),
            data={'enabled': bool(enabled)}, params=params, headers=headers,
            expected=(200, 201), idempotent=True,
            what='{0} execution schedule {1} of {2}'.format(
                'enabling' if enabled else 'disabling', schedule_id, deployment_id))
