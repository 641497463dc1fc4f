"""Contract: the manager's host files (behaviour §7.1-§7.3), the systemctl callback through the
real SSH host (tests/simulator/host.py), and teardown + reinstall of another version on the
same port and host directory for in-place upgrades (behaviour §7.5; procedure 'In-place upgrade').
"""
import json
import os

import pytest
import requests

from tests.simulator.helpers import raw, wait_until
from tests.simulator.test_contract_restore import (can_login, make_snapshot,
                                                   restore_and_wait, upload)

REST_SECURITY = {'hash_salt', 'secret_key', 'encoding_alphabet', 'encoding_block_size',
                 'encoding_min_length'}


@pytest.mark.parametrize('version,extra_keys,key_bytes', [
    ('4.0.1', set(), None), ('4.3', set(), None), ('4.4', {'encryption_key'}, 32),
    ('5.0.5', {'encryption_key'}, 64), ('7.0', {'encryption_key'}, 64)])
def test_rest_security_conf(simulated_manager, version, extra_keys, key_bytes):
    """behaviour §7.2 table: keys per version; encryption_key 32 bytes in 4.4, 64 in 5.0.5+."""
    mgr = simulated_manager(version)
    conf = json.loads(mgr.read_host_file('opt/manager/rest-security.conf'))
    assert set(conf) == REST_SECURITY | extra_keys
    assert len(conf['encoding_alphabet']) == 31 and len(set(conf['encoding_alphabet'])) == 31
    if key_bytes:
        import base64
        assert len(base64.urlsafe_b64decode(conf['encryption_key'])) == key_bytes


@pytest.mark.parametrize('version,expected', [
    ('3.4.2', set()),
    ('4.1', {'cloudify_internal_cert.pem', 'cloudify_internal_key.pem',
             'cloudify_internal.p12', 'cloudify_external_cert.pem',
             'cloudify_external_key.pem', 'certificate_metadata'}),
    ('4.2', {'cloudify_internal_ca_cert.pem', 'cloudify_internal_ca_key.pem'}),
    ('7.0', {'rabbitmq-ca.pem', 'postgresql.crt', 'cloudify_external_ca_cert.pem'}),
])
def test_ssl_dir(simulated_manager, version, expected):
    """behaviour §7.1 table ('3.4.2: this directory does not exist')."""
    mgr = simulated_manager(version)
    ssl = os.path.join(mgr.root, 'etc', 'cloudify', 'ssl')
    if not expected:
        assert not os.path.exists(ssl)
        assert mgr.read_host_file('opt/manager/rest-security.conf') is None
        return
    assert expected <= set(os.listdir(ssl))


@pytest.mark.parametrize('version,marker', [('4.0.1+update3', True), ('4.0.1', False)])
def test_update_3_marker(simulated_manager, version, marker):
    """behaviour §7.3 'Ways to detect it' item 2: grep 4.1.0-p3 in the mgmtworker's
    snapshot_create.py (GET /version still says 4.0.1, item 3)."""
    mgr = simulated_manager(version)
    content = mgr.read_host_file('opt/mgmtworker/env/lib/python2.7/site-packages/'
                                 'cloudify_system_workflows/snapshots/snapshot_create.py')
    assert (b'4.1.0-p3' in content) is marker
    assert raw(mgr, 'GET', '/api/version').json()['version'] == '4.0.1'


def test_systemctl_over_ssh(simulated_manager):
    """issue 3 item 7 through the real SSH host: sudo systemctl stop cloudify-riemann stops
    the unit (is-active inactive); the manager's /status shows it."""
    fabric = pytest.importorskip('fabric')
    mgr = simulated_manager('4.2', ssh=True)
    conn = fabric.Connection('127.0.0.1', port=mgr.ssh_port, user=mgr.ssh_user,
                             connect_kwargs={'key_filename': mgr.ssh_key,
                                             'look_for_keys': False, 'allow_agent': False})
    try:
        stop = conn.run('sudo systemctl stop cloudify-riemann', hide=True, in_stream=False)
        assert stop.return_code == 0
        state = conn.run('systemctl is-active cloudify-riemann', hide=True, warn=True,
                         in_stream=False)
        assert state.return_code == 3 and state.stdout.strip() == 'inactive'
        salt = json.loads(conn.run('cat /opt/manager/rest-security.conf',
                                   hide=True, in_stream=False).stdout)['hash_salt']
        assert salt == mgr.rest_security['hash_salt']
    finally:
        conn.close()
    status = raw(mgr, 'GET', '/api/v3.1/status').json()
    riemann = [s for s in status['services'] if s['display_name'] == 'Riemann'][0]
    assert riemann['instances'][0]['ActiveState'] == 'inactive'


def test_teardown_and_reinstall_same_port(simulated_manager, tmp_path):
    """behaviour §7.5 4.0.x row: teardown deletes /opt/manager and /etc/cloudify; the new
    manager is installed on the same address (state dir kept)."""
    old = simulated_manager('4.1', data='demo', state_dir=str(tmp_path), ssh=True)
    old_conf = old.read_host_file('opt/manager/rest-security.conf')
    port, ssh_port = old.rest_port, old.ssh_port
    old.teardown()
    assert not os.path.exists(os.path.join(old.root, 'opt', 'manager'))
    assert not os.path.exists(os.path.join(old.root, 'etc', 'cloudify'))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(old.url + '/api/version', timeout=2)
    gone = old.machine._on_systemctl('is-active', 'cloudify-restservice')
    assert gone == (3, 'inactive\n')
    new = old.reinstall('7.0')
    assert (new.rest_port, new.ssh_port) == (port, ssh_port)
    assert raw(new, 'GET', '/api/version').json()['version'] == '7.0.4'
    assert new.read_host_file('opt/manager/rest-security.conf') != old_conf
    assert new.machine._on_systemctl('is-active', 'nginx') == (0, 'active\n')
    assert new.machine._on_systemctl('stop', 'cloudify-riemann')[0] == 5


def test_configured_flask_security_at_install(simulated_manager, tmp_path):
    """behaviour §7.2 'At install (5.0.5+)': flask_security values in /etc/cloudify/config.yaml
    override the generated ones."""
    old = simulated_manager('4.2', state_dir=str(tmp_path))
    salt = old.rest_security['hash_salt']
    old.teardown()
    config = os.path.join(old.root, 'etc', 'cloudify', 'config.yaml')
    os.makedirs(os.path.dirname(config))
    with open(config, 'w') as f:
        f.write('flask_security:\n  hash_salt: "{0}"\n'.format(salt))
    new = old.reinstall('5.0.5')
    assert new.rest_security['hash_salt'] == salt


def test_in_place_upgrade_with_certificates(simulated_manager, tmp_path):
    """procedure 'In-place upgrade': snapshot, teardown, install the new version on the same
    host, upload, restore with certificates (behaviour §3.8: certs moved, reboot), then the
    manager answers again on the same port with the old certificates."""
    old = simulated_manager('4.2', data='demo', state_dir=str(tmp_path))
    payload = make_snapshot(old)
    old_cert = old.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem')
    old_password = old.admin_password
    old.teardown()
    new = old.reinstall('4.4')
    assert new.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem') != old_cert
    upload(new, payload)

    class Source(object):
        admin_password = old_password
    done = restore_and_wait(new, source=Source, restore_certificates=True)
    assert done.status == 'terminated', done.error
    wait_until(lambda: 'booted' in new.events(), 15, what='reboot over')
    assert new.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem') == old_cert
    wait_until(lambda: can_login(new, old_password), 10)
