"""Contract: an SSL-enabled manager (behaviour §2.1 'Ports and protocol'; §7.1 certificates).

- the REST API is served over https with a certificate of the manager's own CA; a client
  verifies it with that CA (the profile's `rest_certificate`, behaviour §6.1) and fails without;
- 4.2+ also keep a plain HTTP server that answers 400: 6.0+ with a JSON `SSL_REQUIRED`
  body on ^/api/, 4.2-5.x with nginx's bare 400 page (MB@4.2 https-external-rest-server);
- nginx's certificate is the external one in /etc/cloudify/ssl (4.0+), /root/cloudify
  (3.4.2);
- the stock client and the stock file download work over it unchanged.
"""
import os
import ssl

import pytest
import requests

from tests.simulator.helpers import is_json, raw, wait_until


def _served_certificate(port):
    return ssl.get_server_certificate(('127.0.0.1', port)).encode('ascii')


@pytest.mark.parametrize('version', ['3.4.2', '4.1', '4.2', '5.0.5', '6.4', '7.0'])
def test_https_with_the_managers_ca(simulated_manager, version):
    mgr = simulated_manager(version, ssl=True)
    assert mgr.url.startswith('https://') and os.path.isfile(mgr.ca_path)
    path = '/api/v2.1/version' if version == '3.4.2' else '/api/v3/version'
    assert raw(mgr, 'GET', path).status_code == 200          # verify=<the CA>
    with pytest.raises(requests.exceptions.SSLError):
        raw(mgr, 'GET', path, verify=True)                    # system CAs: not trusted
    rel = ('root/cloudify/server.crt' if version == '3.4.2'
           else 'etc/cloudify/ssl/cloudify_external_cert.pem')
    served = _served_certificate(mgr.rest_port)
    assert served.split(b'-----')[2].split() == \
        mgr.read_host_file(rel).split(b'-----')[2].split()


@pytest.mark.parametrize('version, plain_port', [
    ('3.4.2', False), ('4.1', False), ('4.2', True), ('5.0.5', True), ('7.0', True)])
def test_plain_http_port_of_an_ssl_manager(simulated_manager, version, plain_port):
    mgr = simulated_manager(version, ssl=True)
    if not plain_port:
        assert mgr.http_port is None          # facts say nothing before 4.2: not served
        return
    response = requests.get('http://127.0.0.1:{0}/api/v3.1/ok'.format(mgr.http_port),
                            timeout=5)
    assert response.status_code == 400
    if version == '7.0':
        assert is_json(response) and response.json()['error_code'] == 'SSL_REQUIRED'
    else:
        assert not is_json(response) and b'400 Bad Request' in response.content


def test_stock_client_and_snapshot_download_over_https(simulated_manager, tmp_path):
    mgr = simulated_manager('7.0', ssl=True)
    client = mgr.client()                      # protocol https, cert = the CA
    assert client.manager.get_version()['version'].startswith('7.0')
    client.snapshots.create('over-tls', include_credentials=False)
    wait_until(lambda: client.snapshots.get('over-tls').status == 'created', 15,
               what='snapshot created')
    target = str(tmp_path / 'over-tls.zip')
    client.snapshots.download('over-tls', target)
    with open(target, 'rb') as f, open(mgr.snapshot_path('over-tls'), 'rb') as g:
        assert f.read() == g.read()
    untrusted = mgr.client(cert=None, trust_all=False)
    with pytest.raises(requests.exceptions.SSLError):
        untrusted.manager.get_version()
