"""The ``Manager`` calls of what comes after the restore (issue 15): plugins, LDAP, blueprints.

A mixin of ``manager.client.Manager`` (it uses the client's ``request``, ``get`` and
``list_all``): uploading a wagon, starting and reading a plugins update (5.0+), reading one
blueprint, the ``config`` table, the licence and the LDAP status, and setting LDAP as
``cfy ldap set`` 7.0.5 does.  Request shapes per version come from ``versions``; every
answer is the decoded REST document.
"""
from typing import Any, Iterable, List, Optional
from urllib.parse import quote

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import UpgradeError

TENANT = 'Tenant'


def _tenant_header(tenant) -> Optional[dict]:
    return {TENANT: tenant} if tenant else None


class ResourceCalls:
    """Manager methods for plugins, plugins updates, blueprints, the config table and LDAP."""

    # -- blueprints and plugins -------------------------------------------------------------

    def get_blueprint(self, blueprint_id: str, tenant: Optional[str] = None,
                      include: Optional[Iterable[str]] = None) -> dict:
        """``GET /blueprints/<id>`` in ``tenant`` (``include``: the ``_include`` fields)."""
        params = {'_include': ','.join(include)} if include else None
        return self.get('/blueprints/{0}'.format(quote(blueprint_id, safe='')),
                        params=params, headers=_tenant_header(tenant),
                        what='reading blueprint {0}'.format(blueprint_id))

    def upload_plugin(self, archive: bytes, tenant: Optional[str] = None,
                      visibility: Optional[str] = None, label: str = 'a plugin') -> dict:
        """``POST /plugins`` with a wagon, or the zip of a wagon and its plugin.yaml that
        ``cfy plugins upload`` 7.0.5 sends (cloudify-common@7.0.4 cloudify_rest_client/
        plugins.py ``upload``): the plugin row (201).  Never retried: a lost answer is
        checked by listing the plugins (a second upload is a 409)."""
        params = {}
        argument = versions.upload_visibility_argument(self.version)
        if argument == 'visibility' and visibility:
            params['visibility'] = visibility
        elif argument == 'private_resource':
            params['private_resource'] = visibility == 'private'
        answer = self.request('post', '/plugins', data=archive, params=params,
                              headers=_tenant_header(tenant), expected=(200, 201),
                              retry=False, what='uploading {0}'.format(label))
        if isinstance(answer, dict) and 'items' in answer:      # a caravan answers a list
            items = answer.get('items') or []
            return items[0] if items else {}
        return answer

    def start_plugins_update(self, blueprint_id: str, tenant: Optional[str] = None,
                             plugin_names: Optional[List[str]] = None) -> dict:
        """Start the plugins update of a blueprint's deployments (what ``cfy plugins update
        BLUEPRINT --plugin-name NAME`` 7.0.5 sends: ``plugin_names`` and ``all_to_latest``,
        cloudify-common@7.0.4 plugins_update.py ``update_plugins``); 5.0.x read only a
        ``force`` query argument.  The PluginsUpdate (``id``, ``state``, ``execution_id``)."""
        uri = '/plugins-updates/{0}/update/initiate'.format(quote(blueprint_id, safe=''))
        what = 'starting the plugins update of blueprint {0}'.format(blueprint_id)
        if versions.plugins_update_in_body(self.version):
            body = {'all_to_latest': True}
            if plugin_names:
                body['plugin_names'] = list(plugin_names)
            return self.request('post', uri, data=body, headers=_tenant_header(tenant),
                                expected=(200, 201), retry=False, what=what)
        return self.request('post', uri, params={'force': False},
                            headers=_tenant_header(tenant), expected=(200, 201),
                            retry=False, what=what)

    def get_plugins_update(self, update_id: str, tenant: Optional[str] = None) -> dict:
        """``GET /plugins-updates/<id>``."""
        return self.get('/plugins-updates/{0}'.format(quote(update_id, safe='')),
                        headers=_tenant_header(tenant),
                        what='reading plugins update {0}'.format(update_id))

    def plugins_updates(self, blueprint_id: str, tenant: Optional[str] = None) -> List[dict]:
        """The plugins updates of one blueprint, newest first."""
        return list(self.list_all('plugins-updates', tenant=tenant, sort='-created_at',
                                  blueprint_id=blueprint_id,
                                  include=['id', 'state', 'blueprint_id', 'execution_id',
                                           'created_at']))

    # -- configuration and LDAP ------------------------------------------------------------

    def config_items(self, scope: str = 'rest') -> List[dict]:
        """The rows of the ``config`` table in ``scope`` (5.0+; ``GET /config?scope=``).  An
        admin gets every value as stored (``ldap_password`` included), so every value of a
        key naming a password is registered as a secret before it goes anywhere."""
        answer = self.get('/config', params={'scope': scope},
                          what='reading the {0} configuration'.format(scope)) or {}
        items = answer.get('items') or []
        for item in items:
            if 'password' in str(item.get('name') or '') and item.get('value'):
                register_secret(str(item['value']))
        return items

    def ldap_status(self) -> Any:
        """``GET /ldap``: ``'enabled'`` or ``'disabled'`` (4.6+)."""
        return self.get('/ldap', what='reading the LDAP status')

    def set_ldap(self, settings: dict) -> dict:
        """``POST /ldap`` with the body ``cfy ldap set`` 7.0.5 sends (cloudify-common@7.0.4
        cloudify_rest_client/ldap.py ``set``); the manager binds to check the settings, then
        restarts its REST service.  The bind password (``ldap_password``) is registered as
        a secret first: the stock client logs request bodies at DEBUG."""
        register_secret(settings.get('ldap_password'))
        return self.request('post', '/ldap', data=dict(settings), expected=(200, 201),
                            retry=False, what='setting LDAP')

    # -- licence and LDAP state --------------------------------------------------------------

    def licence(self) -> dict:
        """``GET /license``: ``items`` (behaviour §12.2; a JSON 404 on community managers)."""
        return self.get('/license', what='reading the licence')

    def ldap_state(self) -> Optional[str]:
        """'enabled' / 'disabled' (``GET /ldap``, premium); None where it cannot tell."""
        try:
            answer = self.get('/ldap', retry=False, what='reading the LDAP state')
        except UpgradeError:
            return None
        return answer if answer in ('enabled', 'disabled') else None
