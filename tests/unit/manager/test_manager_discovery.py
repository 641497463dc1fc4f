"""Unit tests of manager/discovery.py against fake per-version answers (behaviour §2.6)."""
import base64

import pytest
import requests

from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.manager.discovery import discover

CREDS = ('admin', 'pw')


def _basic(call):
    header = call.headers.get('Authorization', '')
    if not header.startswith('Basic '):
        return None
    return tuple(base64.b64decode(header[6:]).decode().split(':', 1))


def fake_manager(fakes, version, edition='premium', https_only=False, creds=CREDS):
    """A handler answering the discovery probes like a stock manager of ``version``."""
    major = int(version.split('.')[0]) if version[0].isdigit() else 4
    calendar = version.startswith('17.')
    numeric = tuple(int(p) for p in version.split('.')[:3]) if not calendar else (4, 0, 0)

    def handler(call):
        if https_only and call.scheme == 'http':
            return fakes.Response(400, {'error_code': 'SSL_REQUIRED', 'message': 'use https'})
        path = call.path
        if path == '/api/v3.1/ok':
            return fakes.Response(200, 'OK') if major >= 6 else fakes.html()
        if path == '/api/v3.1/snapshot-status':
            if numeric >= (5, 0, 5):
                return fakes.Response(200, {'status': 'not-running'})
            return fakes.html()
        if path == '/api/v2.1/version':
            if major < 4:
                return fakes.Response(200, {'version': version, 'build': '85'})
            if _basic(call) == creds:
                return fakes.Response(200, {'version': version, 'edition': edition})
            return fakes.error(401, 'unauthorized_error', 'No authentication info provided')
        if path in ('/api/version', '/api/v3/version', '/api/v3.1/version'):
            if major < 4:
                return fakes.html()
            if path == '/api/v3.1/version' and numeric < (4, 1, 0):
                return fakes.html()     # not proxied by the stock 4.0.x nginx (behaviour §2.1)
            if _basic(call) != creds:
                return fakes.error(401, 'unauthorized_error', 'Wrong credentials')
            return fakes.Response(200, {'version': version, 'edition': edition})
        return fakes.html()
    return handler


@pytest.mark.parametrize('version, edition, expected, prefix, api_version', [
    ('3.4.2', None, '3.4.2', '/api/v2.1', 'v2.1'),
    ('4.0.0', 'premium', '4.0.0', '/api/v3', 'v3'),
    ('4.0.1', 'premium', '4.0.1', '/api/v3', 'v3'),
    ('17.3.31', 'community', '4.0.0', '/api/v3', 'v3'),
    ('17.6.30', 'community', '4.1.0', '/api/v3.1', 'v3.1'),
    ('4.2', 'premium', '4.2.0', '/api/v3.1', 'v3.1'),
    ('4.5.0.1', 'premium', '4.5.0.1', '/api/v3.1', 'v3.1'),
    ('5.0.5', 'premium', '5.0.5', '/api/v3.1', 'v3.1'),
    ('6.4.0', 'community', '6.4.0', '/api/v3.1', 'v3.1'),
    ('7.0.4', 'premium', '7.0.4', '/api/v3.1', 'v3.1'),
])
def test_discover_every_version(fakes, version, edition, expected, prefix, api_version):
    session = fakes.Session(fake_manager(fakes, version, edition or 'premium'))
    info = discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert str(info.version) == expected
    assert info.version.raw == version
    assert info.api_prefix == prefix and info.api_version == api_version
    assert info.protocol == 'http' and info.port == 80
    assert info.edition == edition
    assert info.address == 'http://10.0.0.5:80'
    # credentials only ever go to the authenticated version call
    for call in session.calls:
        if 'Authorization' in call.headers:
            assert call.path in ('/api/version', '/api/v3/version', '/api/v3.1/version')
        assert 'Tenant' not in call.headers


def test_discover_uses_the_cheap_sequence_in_order(fakes):
    session = fakes.Session(fake_manager(fakes, '4.2'))
    discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert [c.path for c in session.calls] == [
        '/api/v3.1/ok', '/api/v3.1/snapshot-status', '/api/v2.1/version', '/api/version']


def test_discover_skips_the_3x_probe_on_modern_managers(fakes):
    session = fakes.Session(fake_manager(fakes, '7.0.4'))
    discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert [c.path for c in session.calls] == ['/api/v3.1/ok', '/api/version']


def test_3x_needs_no_credentials(fakes):
    session = fakes.Session(fake_manager(fakes, '3.4.2'))
    info = discover('10.0.0.5', 80, 'http', session=session)
    assert str(info.version) == '3.4.2'
    assert all('Authorization' not in c.headers for c in session.calls)


def test_4x_without_credentials_is_an_input_error(fakes):
    session = fakes.Session(fake_manager(fakes, '4.2'))
    with pytest.raises(InputError) as info:
        discover('10.0.0.5', 80, 'http', session=session)
    assert info.value.error_id == 'credentials-missing'


def test_wrong_credentials(fakes):
    session = fakes.Session(fake_manager(fakes, '5.0.5'))
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 80, 'http', username='admin', password='nope', session=session)
    assert info.value.error_id == 'manager-auth-failed'
    assert 'http://10.0.0.5:80' in info.value.message
    assert 'nope' not in info.value.message
    assert any('CLOUDIFY_USERNAME' in hint for hint in info.value.hints)


def test_json_bodies_with_a_wrong_content_type_do_not_count(fakes):
    def handler(call):
        # a UI that happens to echo JSON-looking text as text/html
        return fakes.Response(200, {'version': '4.2'}, content_type='text/html')
    session = fakes.Session(handler)
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-not-detected'


def test_version_override_for_unknown_calendar_builds(fakes):
    session = fakes.Session(fake_manager(fakes, '18.2.28', 'community'))
    with pytest.raises(InputError) as info:
        discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert info.value.error_id == 'unknown-calendar-version'
    session = fakes.Session(fake_manager(fakes, '18.2.28', 'community'))
    found = discover('10.0.0.5', 80, 'http', username='admin', password='pw',
                     version_override='4.2.0', session=session)
    assert str(found.version) == '4.2.0' and found.api_prefix == '/api/v3.1'
    assert found.edition == 'community'


def test_http_profile_on_an_https_only_manager_moves_up_to_https(fakes):
    session = fakes.Session(fake_manager(fakes, '7.0.4', https_only=True))
    info = discover('10.0.0.5', 80, 'http', cert='/tmp/ca.pem', username='admin',
                    password='pw', session=session)
    assert info.protocol == 'https' and info.port == 443
    https_calls = [c for c in session.calls if c.scheme == 'https']
    assert https_calls and all(c.port == 443 for c in https_calls)
    # TLS verification stays on, with the profile's certificate
    assert all(c.verify == '/tmp/ca.pem' for c in https_calls)


def test_https_profile_is_never_downgraded(fakes):
    def handler(call):
        if call.scheme == 'https':
            return requests.exceptions.ConnectionError('Connection refused')
        return fake_manager(fakes, '4.2')(call)
    session = fakes.Session(handler)
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 443, 'https', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-unreachable'
    assert all(c.scheme == 'https' for c in session.calls)
    assert any('--ssl off' in hint for hint in info.value.hints)


def test_tls_failure_is_reported_with_the_certificate_hint(fakes):
    session = fakes.Session(lambda call: requests.exceptions.SSLError('CERTIFICATE_VERIFY'))
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 443, 'https', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-tls-failed'
    assert any('--rest-certificate' in hint for hint in info.value.hints)
    assert all(call.verify is True for call in session.calls)


def test_trust_all_disables_verification_only_when_asked(fakes):
    session = fakes.Session(fake_manager(fakes, '7.0.4'))
    discover('10.0.0.5', 443, 'https', username='admin', password='pw', trust_all=True,
             session=session)
    assert all(call.verify is False for call in session.calls)


def test_unreachable_http_80_tries_https_then_names_both(fakes):
    session = fakes.Session(lambda call: fakes.refused(call.url))
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 80, 'http', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-unreachable'
    assert 'http://10.0.0.5:80' in info.value.message
    assert 'https://10.0.0.5:443' in info.value.message


def test_unreachable_on_a_custom_port_does_not_guess(fakes):
    session = fakes.Session(lambda call: fakes.refused(call.url))
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 8080, 'http', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-unreachable'
    assert {c.scheme for c in session.calls} == {'http'}


def test_ipv6_hosts_are_bracketed(fakes):
    session = fakes.Session(fake_manager(fakes, '7.0.4'))
    info = discover('fd00::5', 80, 'http', username='admin', password='pw', session=session)
    assert session.calls[0].url.startswith('http://[fd00::5]:80/')
    assert info.address == 'http://[fd00::5]:80'


def test_https_only_on_a_custom_port_is_named_not_guessed(fakes):
    """SSL_REQUIRED on http:8080: nginx's HTTPS server is another port; say so, try none."""
    session = fakes.Session(fake_manager(fakes, '7.0.4', https_only=True))
    with pytest.raises(UpgradeError) as info:
        discover('10.0.0.5', 8080, 'http', username='admin', password='pw', session=session)
    assert info.value.error_id == 'manager-requires-https'
    assert {c.scheme for c in session.calls} == {'http'}
    assert any('--ssl on' in hint and '--rest-certificate' in hint
               for hint in info.value.hints)


@pytest.mark.parametrize('port, moved', [(80, True), (8080, False)])
def test_bare_400_of_an_ssl_enabled_4x_manager(fakes, port, moved):
    """4.2-5.x with SSL: port 80 is nginx's `return 400` (behaviour §2.1): from 80 the plugin
    moves up to https:443 (verification on); from another port it names the cause."""
    def handler(call):
        if call.scheme == 'http':
            return fakes.Response(400, text='<html>400 Bad Request</html>',
                                  content_type='text/html')
        return fake_manager(fakes, '5.0.5')(call)
    session = fakes.Session(handler)
    if moved:
        info = discover('10.0.0.5', port, 'http', username='admin', password='pw',
                        session=session)
        assert (info.protocol, info.port, str(info.version)) == ('https', 443, '5.0.5')
        assert all(c.verify is True for c in session.calls if c.scheme == 'https')
    else:
        with pytest.raises(UpgradeError) as raised:
            discover('10.0.0.5', port, 'http', username='admin', password='pw',
                     session=session)
        assert raised.value.error_id == 'manager-requires-https'
        assert {c.scheme for c in session.calls} == {'http'}
