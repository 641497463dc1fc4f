"""API tokens the plugin takes on a manager: short-lived where the version allows, revoked.

- 7.0 keeps tokens in its database (``POST /tokens``, ``ctok-<id>-<secret>``; observed-7.0):
  ``create`` asks for an expiration date relative to the manager's own clock
  (``expiration_date: "+<n>min"``, cloudify-manager@7.0.4
  rest-service/manager_rest/rest/resources_v3_1/tokens.py, parsed by cloudify-common@7.0.4
  cloudify/utils.py ``parse_utc_datetime``, truncated to the minute), so it dies by itself
  even if the plugin is killed; ``revoke`` deletes one (``DELETE /tokens/<id>``, 204; a token
  may delete itself) and ``revoke_described`` every token with a description (what a run
  killed before it could revoke its token left behind; the next run cleans it).
- 4.x-6.x hand out a token at ``GET /tokens`` (behaviour §2.4): signed with rest-security's
  ``secret_key`` and valid for 10 hours (``SECURITY_TOKEN_MAX_AGE = 36000``,
  cloudify-manager@4.2 .. 6.3 rest-service/manager_rest/flask_utils.py); there is no
  expiration to ask for and no way to revoke one but changing ``secret_key``.  ``create``
  returns it as it is and ``revoke`` does nothing (False): the caller (restore-users) installs
  the old manager's ``secret_key`` right after using it, which kills it.
Every token is registered as a secret (``engine.redact``) before the caller sees it.
"""
import math
from typing import Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.redact import register_secret
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager import answers
from cloudify_upgrade_plugin.manager.urls import segment

DB_TOKEN_PREFIX = 'ctok-'


def expiration(lifetime: float) -> str:
    """``+<n>min``: at least ``lifetime`` seconds from now on the manager's clock (which
    truncates to the minute, hence the extra minute)."""
    return '+{0}min'.format(max(1, int(math.ceil(float(lifetime) / 60.0))) + 1)


def create(manager, description: str, lifetime: Optional[float] = None) -> str:
    """A new API token of the logged-in user; expiring after ``lifetime`` seconds on 7.0."""
    what = 'creating an API token'
    if versions.creates_db_tokens(manager.version):
        body = {'description': description}
        if lifetime:
            body['expiration_date'] = expiration(lifetime)
        answer = manager.request('post', '/tokens', data=body, expected=(200, 201),
                                 what=what)
    else:
        answer = manager.get('/tokens', what='getting an API token')
    token = answers.field(manager.label, answer, 'value', str, what)
    register_secret(token)
    return token


def token_id(token: str) -> Optional[str]:
    """The id of a 7.0 token value (``ctok-<id>-<secret>``), or None."""
    if not isinstance(token, str) or not token.startswith(DB_TOKEN_PREFIX):
        return None
    parts = token.split('-', 2)
    return parts[1] if len(parts) == 3 and parts[1] else None


def _delete(manager, tid: str) -> bool:
    try:
        manager.request('delete', '/tokens/{0}'.format(segment(tid)), expected=(200, 204),
                        answer=None, what='revoking API token {0}'.format(tid))
    except UpgradeError as error:
        if error.error_id == 'not-found':
            return False        # already gone (expired and purged, or revoked)
        raise
    return True


def revoke(manager, token: str) -> bool:
    """Delete a 7.0 token (True); False where the version cannot revoke or it is gone."""
    tid = token_id(token)
    if tid is None or not versions.creates_db_tokens(manager.version):
        return False
    return _delete(manager, tid)


def revoke_described(manager, description: str) -> int:
    """Delete every 7.0 token whose description is ``description``; how many."""
    if not versions.creates_db_tokens(manager.version):
        return 0
    found = [item.get('id') for item in manager.list_all('tokens')
             if item.get('description') == description and isinstance(item.get('id'), str)]
    return sum(1 for tid in found if _delete(manager, tid))
