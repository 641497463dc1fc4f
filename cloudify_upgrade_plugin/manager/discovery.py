"""Discovery of a manager's version, edition, API prefix and working protocol.

Owns: the cheap probe sequence of behaviour §2.6 (``/api/v3.1/ok`` -> 6.0+,
``/api/v3.1/snapshot-status`` -> 5.0.5+, unauthenticated ``/api/v2.1/version`` -> 3.x or
4.x+, authenticated ``/api/version`` -> version and edition), the JSON content-type check on
every answer (unproxied paths reach the web UI, behaviour §2.1), and the protocol handling:
the profile's protocol is tried first; a plain-HTTP profile talking to an HTTPS-only
manager is moved *up* to HTTPS with verification on, never an HTTPS profile down to HTTP.

Probes go straight through ``requests`` because the stock client cannot check the content
type of an answer; everything after discovery uses ``cloudify_rest_client``.
"""
import base64
from dataclasses import dataclass, field

import requests

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import logins
from cloudify_upgrade_plugin.manager.retry import credentials_hints
from cloudify_upgrade_plugin.manager.session import (
    AnswerTooLarge, AnswerTooSlow, ManagerSession, answer_error)

PROBE_TIMEOUT = (5, 30)


@dataclass(frozen=True)
class ManagerInfo:
    """What discovery learnt about a manager."""
    version: versions.Version
    edition: str            # 'premium' | 'community' | None (3.x has no edition)
    api_prefix: str         # '/api/v2.1' | '/api/v3' | '/api/v3.1'
    api_version: str        # 'v2.1' | 'v3' | 'v3.1' (for CloudifyClient)
    protocol: str
    port: int
    host: str = None
    version_data: dict = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> str:
        return '{0}://{1}:{2}'.format(self.protocol, _url_host(self.host), self.port)

    def to_dict(self) -> dict:
        return {'version': str(self.version), 'raw_version': self.version.raw,
                'edition': self.edition, 'api_prefix': self.api_prefix,
                'protocol': self.protocol, 'port': self.port, 'address': self.address}


@dataclass
class ProbeResult:
    """One unauthenticated or authenticated GET: status, whether the answer was JSON."""
    url: str
    status: int = None
    is_json: bool = False
    body: object = None
    text: str = ''
    error: Exception = None

    @property
    def connection_failed(self) -> bool:
        return self.error is not None and not isinstance(
            self.error, requests.exceptions.SSLError)

    @property
    def tls_failed(self) -> bool:
        return isinstance(self.error, requests.exceptions.SSLError)

    @property
    def https_required(self) -> bool:
        """The signs of plain HTTP sent to an HTTPS-only manager (behaviour §2.1)."""
        if self.status is None:
            return False
        if self.status in (301, 302, 307, 308) and self.text.lower().startswith('https://'):
            return True
        if self.status != 400:
            return False
        if isinstance(self.body, dict) and self.body.get('error_code') == 'SSL_REQUIRED':
            return True
        # nginx's own 400 page on an /api/ path: the plain HTTP port of an SSL-enabled
        # 4.2-5.x manager (`return 400`, MB@4.2 https-external-rest-server.cloudify), or
        # plain HTTP sent to an HTTPS port; the REST service's own 400s are JSON
        return not self.is_json


def _url_host(host):
    if host and ':' in host and not host.startswith('['):
        return '[{0}]'.format(host)
    return host


def basic_auth_header(username, password) -> str:
    raw = '{0}:{1}'.format(username, password).encode('utf-8')
    return 'Basic ' + base64.b64encode(raw).decode('ascii')


def probe(session, base_url, path, verify=True, headers=None,
          timeout=PROBE_TIMEOUT) -> 'ProbeResult':
    """GET ``base_url + path``; never raises for HTTP or connection failures."""
    url = base_url + path
    result = ProbeResult(url=url)
    try:
        response = session.get(url, headers=headers or {}, verify=verify, timeout=timeout,
                               allow_redirects=False)
    except (AnswerTooLarge, AnswerTooSlow) as exc:
        raise answer_error(exc, 'the manager at ' + base_url, 'GET ' + path) from exc
    except requests.exceptions.RequestException as exc:
        result.error = exc
        return result
    result.status = response.status_code
    content_type = response.headers.get('Content-Type', '')
    if response.status_code in (301, 302, 307, 308):
        result.text = response.headers.get('Location', '')
        return result
    if content_type.split(';')[0].strip().lower() == 'application/json':
        try:
            result.body = response.json()
            result.is_json = True
        except ValueError:
            result.is_json = False
    if not result.is_json:
        result.text = response.text[:2000]
    return result


class _Failure(Exception):
    def __init__(self, kind, probe_result=None, message=''):
        super().__init__(message or kind)
        self.kind = kind          # unreachable | tls | https-required | not-cloudify
        self.probe = probe_result
        self.message = message


def _auth_headers(username, password, token):
    if username and password:
        return {'Authorization': basic_auth_header(username, password)}
    if token:
        return {'Authentication-Token': token}
    return {}


def _check_transport(result):
    if result.tls_failed:
        raise _Failure('tls', result, str(result.error))
    if result.connection_failed:
        raise _Failure('unreachable', result, str(result.error))
    if result.https_required:
        raise _Failure('https-required', result)


def _discover_at(session, host, port, protocol, verify, username, password, token,
                 version_override, timeout):
    base = '{0}://{1}:{2}'.format(protocol, _url_host(host), port)
    at_least = None

    # behaviour §2.6 step 1 / §2.3: unauthenticated /api/v3.1/ok answers a JSON "OK"/"FAIL" on 6.0+
    result = probe(session, base, '/api/v3.1/ok', verify, timeout=timeout)
    _check_transport(result)
    if result.is_json and result.body in ('OK', 'FAIL'):
        at_least = versions.OK_ENDPOINT_SINCE
    if at_least is None:
        # behaviour §2.6 step 2 / §2.3: unauthenticated snapshot-status answers JSON on 5.0.5+
        result = probe(session, base, '/api/v3.1/snapshot-status', verify, timeout=timeout)
        _check_transport(result)
        if result.is_json and isinstance(result.body, dict) and 'status' in result.body:
            at_least = versions.RESTORE_FLAG_SINCE
    if at_least is None:
        # behaviour §2.6 step 3 / §2.2: /api/v2.1/version is unsecured on 3.x (200), 401 on 4.x+
        result = probe(session, base, '/api/v2.1/version', verify, timeout=timeout)
        _check_transport(result)
        if result.is_json and result.status == 200 and isinstance(result.body, dict) \
                and result.body.get('version'):
            return _info(result.body, version_override, protocol, port, host)
        if result.is_json and result.status in (401, 403):
            at_least = versions.VERSION_CALL_SECURED_SINCE
        else:
            raise _Failure('not-cloudify', result)

    # behaviour §2.6 step 4 / §2.2: /api/version with auth (4.0+); no Tenant needed for it
    auth = _auth_headers(username, password, token)
    if not auth:
        raise InputError(
            'The manager at {0} (version {1} or newer) needs credentials, and none are '
            'set.'.format(base, at_least), error_id='credentials-missing',
            hints=credentials_hints()[:1])
    for path in ('/api/version', '/api/v3.1/version', '/api/v3/version'):
        # a password is sent: within the failed-login budget only (logins.py, §12.10)
        logins.check_headers(base, auth)
        result = probe(session, base, path, verify, headers=auth, timeout=timeout)
        if result.is_json:
            logins.observe(base, auth, result.status)
        _check_transport(result)
        if not result.is_json:
            continue   # an unproxied path reached the UI (behaviour §2.1)
        if result.status == 401:
            raise UpgradeError(
                'The manager at {0} refused the credentials: {1}'.format(
                    base, _json_message(result)),
                error_id='manager-auth-failed', hints=credentials_hints(),
                details={'status_code': 401, 'manager': base})
        if result.status == 403:
            raise UpgradeError(
                'The manager at {0} does not let this user read its version: {1}'.format(
                    base, _json_message(result)),
                error_id='manager-forbidden', details={'status_code': 403, 'manager': base},
                hints=['Use an admin user of the manager in the profile.'])
        if result.status == 200 and isinstance(result.body, dict) and \
                result.body.get('version'):
            info = _info(result.body, version_override, protocol, port, host)
            if info.version.base < at_least:
                get_logger().warning(
                    'The manager at %s reports version %s but answers like %s or newer; '
                    'using %s.', base, info.version.raw, at_least, info.version)
            return info
    raise _Failure('not-cloudify', result)


def _json_message(result):
    if isinstance(result.body, dict):
        return result.body.get('message') or result.body.get('error_code') or ''
    return ''


def _info(version_data, version_override, protocol, port, host):
    base = '{0}://{1}:{2}'.format(protocol, _url_host(host), port)
    for name in ('version', 'edition'):
        value = version_data.get(name)
        if value is not None and not isinstance(value, str):
            raise UpgradeError(
                'The manager at {0} answered its version call with a "{1}" that is a {2}, '
                'not a string: no Cloudify Manager does.'.format(base, name,
                                                                 type(value).__name__),
                error_id='manager-bad-answer', details={'manager': base},
                hints=['Check that the profile points at a Cloudify Manager\'s REST API and '
                       'not at a proxy or another service (`cfy profiles show-current`).'])
    if version_override is not None:
        version = versions.as_version(version_override)
    else:
        version = versions.Version.parse(version_data.get('version'))
    return ManagerInfo(
        version=version, edition=version_data.get('edition'),
        api_prefix=versions.api_prefix(version), api_version=versions.api_version(version),
        protocol=protocol, port=int(port), host=host, version_data=dict(version_data))


def discover(host, port=None, protocol='http', cert=None, username=None, password=None,
             tenant=None, trust_all=False, token=None, version_override=None, session=None,
             timeout=PROBE_TIMEOUT) -> ManagerInfo:
    """Find out which manager answers at host:port; return a ``ManagerInfo``.

    ``tenant`` is accepted for symmetry with the client but not needed: none of the
    discovery calls is tenant-scoped (behaviour §2.6 step 4).  ``version_override`` (a
    version the caller knows better) replaces the reported version.
    Raises ``UpgradeError`` with ids ``manager-unreachable``, ``manager-tls-failed``,
    ``manager-requires-https``, ``manager-not-detected``, ``manager-auth-failed``.
    """
    del tenant
    protocol = (protocol or 'http').lower()
    port = int(port or (443 if protocol == 'https' else 80))
    verify = False if trust_all else (cert or True)
    session = session or ManagerSession()
    logger = get_logger()
    address = '{0}://{1}:{2}'.format(protocol, _url_host(host), port)

    try:
        return _discover_at(session, host, port, protocol, verify, username, password, token,
                            version_override, timeout)
    except _Failure as failure:
        first = failure

    if protocol == 'http' and port == 80 and first.kind in ('https-required', 'unreachable'):
        # behaviour §2.1 / §2.6: SSL-enabled managers (the 6.0+ default) serve https:443 and
        # answer 400 on port 80 (SSL_REQUIRED on 6.0+, nginx's bare 400 on 4.2-5.x).
        # Moving up to HTTPS keeps TLS verification on (profile certificate or system CAs).
        # Another port is not guessed: nginx's HTTPS port is a different server.
        https_port = 443
        https_address = 'https://{0}:{1}'.format(_url_host(host), https_port)
        logger.warning('%s %s; trying %s (TLS verification on).', address,
                       'requires HTTPS' if first.kind == 'https-required'
                       else 'is unreachable', https_address)
        try:
            info = _discover_at(session, host, https_port, 'https', verify, username,
                                password, token, version_override, timeout)
        except _Failure as second:
            if second.kind == 'tls':
                raise _error(second, https_address, cert)
            if first.kind == 'https-required':
                raise _error(second, https_address, cert)
            raise _error(first, address, cert, also=https_address)
        logger.warning(
            'Using %s for the manager; update its profile: `cfy profiles set --ssl on '
            '--rest-certificate CA_CERT` (port %d).', https_address, https_port)
        return info
    raise _error(first, address, cert)


def _error(failure, address, cert, also=None):
    tried = address + (' and ' + also if also else '')
    if failure.kind == 'unreachable':
        hints = ['Check that the manager is up and its REST port is reachable from here.']
        if address.startswith('https://'):
            hints.append('If the manager serves plain HTTP (the 4.x-5.x default), set '
                         '`cfy profiles set --ssl off` (port 80); the plugin '
                         'never falls back from HTTPS to HTTP by itself.')
        return UpgradeError('Cannot connect to the manager at {0}: {1}'.format(
            tried, failure.message), error_id='manager-unreachable', hints=hints,
            details={'manager': address})
    if failure.kind == 'tls':
        return UpgradeError(
            'TLS connection to {0} failed: {1}'.format(address, failure.message),
            error_id='manager-tls-failed', details={'manager': address},
            hints=["Give the profile the manager's CA certificate: `cfy profiles set "
                   "--rest-certificate PATH` (currently: {0}); verification stays on.".format(
                       cert or 'system CAs'),
                   'If the manager serves plain HTTP (the 4.x-5.x default), set '
                   '`cfy profiles set --ssl off` (port 80).'])
    if failure.kind == 'https-required':
        return UpgradeError(
            'The manager at {0} answers 400 to plain HTTP: it only accepts HTTPS.'.format(
                address),
            error_id='manager-requires-https', details={'manager': address},
            hints=["Point the profile at the manager's HTTPS port with its CA certificate: "
                   '`cfy profiles set --ssl on --rest-port PORT --rest-certificate CA_CERT` '
                   '(port 443 by default; verification stays on).'])
    probe_result = failure.probe
    seen = ''
    if probe_result is not None:
        seen = ' (last answer: {0} {1})'.format(
            probe_result.status, 'JSON' if probe_result.is_json else 'not JSON')
    return UpgradeError(
        'No Cloudify Manager REST API answered at {0}{1}.'.format(address, seen),
        error_id='manager-not-detected', details={'manager': address},
        hints=['Check the profile\'s manager IP, REST port and protocol; answers that are '
               'not JSON come from the web UI or another service.'])
