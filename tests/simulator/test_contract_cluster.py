"""Contract: simulated 5.0.5+ premium clusters (tests/simulator/cluster.py).

References: behaviour §12.9 (clusters: the profile's `cluster` section, ClusterHTTPClient
failover, `cfy_manager stop|start`, the snapshot route into a new cluster, rest-security.conf
written on the restoring node only), cloudify-manager@<tag> rest-service/manager_rest/
storage/management_models.py (GET managers|brokers|db-nodes fields per version) and @7.0.4
snapshot_restore.py `_restore_security_file` (nothing syncs rest-security.conf), behaviour §6.1
(`cfy profiles use` fills `cluster`), behaviour §7.2 (what hash_salt / secret_key do).  The
stock cfy 7.0.5 CLI runs as a subprocess (fixture `run_cfy` of tests/conftest.py) and in
process (cloudify_cli.env.CloudifyClusterClient).
"""
import json
import os
import signal
import subprocess
import sys

import paramiko
import pytest
import requests

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_execution_any, wait_until
from tests.simulator.test_contract_restore import can_login, make_snapshot, upload
from tests.simulator.topology import BROKER_FIELDS, DB_FIELDS, MANAGER_FIELDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ssh_run(cluster, node, command):
    """Run `command` on a node's SSH host with the cluster's one client key ->
    (exit code, stdout, stderr)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(node.rest_host, port=cluster.ssh_port, username=cluster.ssh_user,
                   key_filename=cluster.ssh_key, look_for_keys=False, allow_agent=False)
    try:
        _, out, err = client.exec_command(command)
        rc = out.channel.recv_exit_status()
        return rc, out.read().decode(), err.read().decode()
    finally:
        client.close()


def refused(node):
    try:
        requests.get(node.url + '/api/v3.1/version', timeout=2)
    except requests.exceptions.ConnectionError:
        return True
    return False


def items(node, path):
    response = raw(node, 'GET', '/api/v3.1/' + path)
    assert response.status_code == 200, response.text
    return response.json()['items']


# ---- node lists and shared state ------------------------------------------------------------
@pytest.mark.parametrize('version,extra', [
    ('5.0.5', {'node_id'}),
    ('6.0', {'monitoring_username', 'monitoring_password'}),
    ('7.0', set()),
])
def test_node_lists_per_version(simulated_cluster, version, extra):
    """MGR@<tag> management_models.py: every node lists every manager, broker and DB node;
    the columns are the model's (5.0.5 node_id; 5.1-6.3 monitoring_*; 6.4+ neither); behaviour
    §12.9 / §6.1: these lists are what `cfy profiles use` reads."""
    cluster = simulated_cluster(version)
    for node in cluster.nodes:
        managers = items(node, 'managers')
        assert [m['hostname'] for m in managers] == ['manager-1', 'manager-2', 'manager-3']
        assert {m['private_ip'] for m in managers} == {n.rest_host for n in cluster.nodes}
        assert set(managers[0]) == set(MANAGER_FIELDS) | extra
        brokers = items(node, 'brokers')
        assert [b['host'] for b in brokers] == ['127.0.2.1', '127.0.2.2', '127.0.2.3']
        assert set(brokers[0]) == set(BROKER_FIELDS) | extra
        dbs = items(node, 'db-nodes')
        assert [d['name'] for d in dbs] == ['db-1', 'db-2', 'db-3']
        assert set(dbs[0]) == set(DB_FIELDS) | extra
    assert len({n.rest_host for n in cluster.nodes}) == 3
    assert {n.rest_port for n in cluster.nodes} == {cluster.rest_port}


def test_colocated_layout(simulated_cluster):
    """behaviour §12.9: a compact cluster runs broker and DB beside each manager; the entries
    then carry the managers' addresses (cfy's `_all_in_one_manager` compares them)."""
    cluster = simulated_cluster('7.0', colocated=True)
    node = cluster.nodes[1]
    assert [b['host'] for b in items(node, 'brokers')] == [n.rest_host for n in cluster.nodes]
    assert [d['host'] for d in items(node, 'db-nodes')] == [n.rest_host for n in cluster.nodes]


def test_one_db_for_every_node(simulated_cluster):
    """behaviour §12.9: the managers share one DB: what one node writes, every node reads;
    users, licence and tokens are rows of that DB."""
    cluster = simulated_cluster('7.0', data='demo')
    a, b, c = cluster.nodes
    assert {d.id for d in b.client().deployments.list()} >= {'hw-1', 'web-1'}
    a.client().users.set_password('alice', 'set-through-a')
    assert can_login(c, 'set-through-a', 'alice')
    token = a.client().tokens.create(description='one DB')
    by_token = raw(b, 'GET', '/api/v3.1/user', auth=False,
                   headers={'Authentication-Token': token.value})
    assert by_token.status_code == 200, by_token.text
    assert items(c, 'license')[0]['expired'] is False


# ---- the cfy profile and failover ----------------------------------------------------------
def test_profiles_use_writes_the_cluster_section(simulated_cluster, run_cfy, cfy_workdir):
    """behaviour §12.9, §6.1: stock `cfy profiles use` (validated, with credentials) fills the
    profile's `cluster` from GET managers|brokers|db-nodes, and `cfy profiles set-cluster`
    adds a node's SSH settings; `SimulatedCluster.profile_context` writes the same file."""
    cluster = simulated_cluster('7.0', ssh=True)
    first = cluster.nodes[0]
    used = run_cfy('profiles', 'use', first.rest_host, '--rest-port', cluster.rest_port,
                   '-u', cluster.admin_username, '-p', cluster.admin_password,
                   '-t', 'default_tenant', '--ssh-user', cluster.ssh_user,
                   '--ssh-key', cluster.ssh_key, '--ssh-port', cluster.ssh_port)
    assert used.returncode == 0, used
    path = cfy_workdir / '.cloudify' / 'profiles' / first.rest_host / 'context.json'
    written = json.loads(path.read_text())
    assert written['cluster'] == cluster.profile_cluster(ssh=False)
    for node in cluster.nodes:
        result = run_cfy('profiles', 'set-cluster', node.hostname, '--ssh-user',
                         cluster.ssh_user, '--ssh-key', cluster.ssh_key, '--ssh-port',
                         cluster.ssh_port)
        assert result.returncode == 0, result
    written = json.loads(path.read_text())
    assert written == cluster.profile_context(ssh=True)
    expected = path.read_text()
    other = cfy_workdir / 'helper'
    cluster.write_profile(other, ssh=True)
    helper = other / '.cloudify' / 'profiles' / first.rest_host / 'context.json'
    assert helper.read_text() == expected


def test_stock_cli_fails_over_between_upload_and_restore(simulated_cluster, run_cfy,
                                                         cfy_workdir, tmp_path):
    """behaviour §12.9: with a cluster profile, cfy's ClusterHTTPClient moves to the next manager
    when one refuses connections, so an upload on node A and the restore after it can land
    on different managers; the failed-over node goes first in the profile.  (Fault:
    `fail_after`, node A goes down after the upload.)"""
    source = simulated_cluster('6.4', managers=1, brokers=1, db_nodes=1, data='demo')
    payload = make_snapshot(source.nodes[0])
    archive = tmp_path / 'snap.zip'
    archive.write_bytes(payload)
    cluster = simulated_cluster('7.0')
    name = cluster.write_profile(cfy_workdir, ssh=False)
    a, b, _ = cluster.nodes
    a.fail_after(1, method='PUT', path=r'/snapshots/[^/]+/archive$')
    uploaded = run_cfy('snapshots', 'upload', archive, '-s', 'moved')
    assert uploaded.returncode == 0, uploaded
    restored = run_cfy('snapshots', 'restore', 'moved')
    assert restored.returncode == 0, restored
    assert [e['status'] for e in a.requests.matching('PUT', '/snapshots/moved/archive')] \
        == [201]
    assert [e['status'] for e in a.requests.matching('POST', '/snapshots/moved/restore')] \
        == [None]                               # dropped: A went down
    assert [e['status'] for e in b.requests.matching('POST', '/snapshots/moved/restore')] \
        == [200]
    assert refused(a)
    profile = json.loads((cfy_workdir / '.cloudify' / 'profiles' / name /
                          'context.json').read_text())
    assert profile['cluster']['manager'][0]['hostname'] == b.hostname


def test_cluster_client_in_process(simulated_cluster, cfy_workdir):
    """behaviour §12.9: the same failover through cloudify_cli.env.get_rest_client (a
    CloudifyClusterClient for a profile with cluster managers): 502 pages count as down."""
    from cloudify_cli import env
    cluster = simulated_cluster('7.0')
    name = cluster.write_profile(cfy_workdir, ssh=False)
    profile = env.get_profile_context(name)
    client = env.get_rest_client(client_profile=profile)
    assert type(client).__name__ == 'CloudifyClusterClient'
    a, b, _ = cluster.nodes
    a.fail_after(1, mode='502')
    assert client.manager.get_version()['version'] == '7.0.4'        # served by A
    assert client.manager.get_version()['version'] == '7.0.4'        # A: 502 -> B
    assert [e['status'] for e in a.requests.matching('GET', '/version')] == [200, 502]
    assert [e['status'] for e in b.requests.matching('GET', '/version')] == [200]


def test_tls_cluster_one_ca(simulated_cluster, cfy_workdir):
    """behaviour §2.1 / §6.1 'Certificate' with behaviour §12.9: every node serves https with a
    certificate for its own address signed by the cluster's one CA, so the profile's one
    rest_certificate verifies whichever node the cluster client fails over to."""
    from cloudify_cli import env
    cluster = simulated_cluster('7.0', ssl=True)
    name = cluster.write_profile(cfy_workdir, ssh=False)
    profile = env.get_profile_context(name)
    assert (profile.rest_protocol, profile.rest_certificate) == ('https', cluster.ca_path)
    client = env.get_rest_client(client_profile=profile)
    a, b, c = cluster.nodes
    a.fail_after(1)
    assert client.manager.get_version()['version'] == '7.0.4'        # A
    assert client.manager.get_version()['version'] == '7.0.4'        # A down -> B
    assert [e['status'] for e in b.requests.matching('GET', '/version')] == [200]
    response = requests.get(c.url + '/api/v3.1/version', verify=cluster.ca_path,
                            auth=(cluster.admin_username, cluster.admin_password), timeout=5)
    assert c.url.startswith('https://127.0.1.3:') and response.status_code == 200


# ---- nodes stopped and started over SSH ------------------------------------------------------
def test_cfy_manager_stop_and_start(simulated_cluster):
    """behaviour §12.9 (DOCS 5.1 ha_cluster_upgrade.md): `cfy_manager stop` on a manager stops
    its services (its REST address refuses connections), `cfy_manager start` brings it back
    with the shared data intact; GET cluster-status sees the stopped node (MGR@7.0.4
    cluster_status_manager.py: one healthy manager is enough, so Degraded).  There is no
    `cfy_manager status` (MI@7.0.4 cfy_manager/main.py): argh's usage error, exit 2."""
    cluster = simulated_cluster('7.0', ssh=True, data='demo')
    a, b, c = cluster.nodes
    rc, out, err = ssh_run(cluster, b, 'cfy_manager stop')
    assert rc == 0, err
    assert 'successfully stopped' in out
    assert refused(b) and not b.running
    status = raw(a, 'GET', '/api/v3.1/cluster-status').json()
    assert status['status'] == 'Degraded'
    assert status['services']['manager']['nodes'][b.hostname]['status'] == 'Fail'
    a.client().users.set_password('alice', 'set-while-b-was-down')
    rc, _, err = ssh_run(cluster, b, 'sudo cfy_manager start')
    assert rc == 0, err
    assert b.running
    assert can_login(b, 'set-while-b-was-down', 'alice')
    assert raw(c, 'GET', '/api/v3.1/cluster-status').json()['status'] == 'OK'
    rc, _, err = ssh_run(cluster, c, 'cfy_manager status')
    assert rc == 2 and "invalid choice: 'status'" in err
    c.machine.host.sudo_allowed = False
    rc, _, err = ssh_run(cluster, c, 'cfy_manager stop')
    assert rc == 1 and 'password is required' in err
    assert c.running


def test_cluster_status_quorum(simulated_cluster):
    """MGR@5.0.5..7.0.4 cluster_status.py / cluster_status_manager.py: brokers and DB nodes
    need a majority, the overall status is the worst service status; `?summary=true` answers
    500 on Fail from 5.1.0 (200 on 5.0.5)."""
    for version, summary_code in (('5.0.5', 200), ('7.0', 500)):
        cluster = simulated_cluster(version)
        node = cluster.nodes[0]
        cluster.brokers[0].healthy = False
        status = raw(node, 'GET', '/api/v3.1/cluster-status').json()
        assert status['status'] == 'Degraded'
        assert status['services']['broker']['status'] == 'Degraded'
        cluster.brokers[1].healthy = False
        assert raw(node, 'GET', '/api/v3.1/cluster-status').json()['status'] == 'Fail'
        summary = raw(node, 'GET', '/api/v3.1/cluster-status?summary=true')
        assert summary.status_code == summary_code
        assert summary.json() == {'status': 'Fail', 'services': {}}


# ---- the restore route into a cluster ---------------------------------------------------------
def test_restore_writes_rest_security_on_its_node_only(simulated_cluster):
    """behaviour §12.9, MGR@7.0.4 snapshot_restore.py `_restore_security_file`: the restore merges
    the snapshot's rest-security.conf on the node that ran it; the others keep their file, so
    their hash_salt does not match the restored password hashes and they refuse the restored
    admin (behaviour §7.2) until the file is copied there and their REST service restarted. The
    snapshot uploaded to one node is on every node (replicated file server)."""
    source = simulated_cluster('5.1', managers=1, brokers=1, db_nodes=1, data='demo')
    old = source.nodes[0]
    payload = make_snapshot(old)
    cluster = simulated_cluster('7.0', ssh=True)
    a, b, c = cluster.nodes
    before = b.read_host_file('opt/manager/rest-security.conf')
    assert before == a.read_host_file('opt/manager/rest-security.conf')
    for node in (b, c):
        assert ssh_run(cluster, node, 'cfy_manager stop')[0] == 0
    upload(a, payload, 'from51')
    response = raw(a, 'POST', '/api/v3.1/snapshots/from51/restore',
                   json_body={'force': False, 'restore_certificates': False,
                              'no_reboot': False})
    assert response.status_code == 200, response.text
    done = wait_execution_any(a, response.json()['id'],
                              [cluster.admin_password, old.admin_password], timeout=20)
    assert done.status == 'terminated', done.error
    wait_until(lambda: can_login(a, old.admin_password), 10, what='restored admin on A')
    for node in (b, c):
        assert ssh_run(cluster, node, 'cfy_manager start')[0] == 0
    restored = json.loads(a.read_host_file('opt/manager/rest-security.conf'))
    source_conf = json.loads(old.read_host_file('opt/manager/rest-security.conf'))
    assert restored['hash_salt'] == source_conf['hash_salt']
    assert b.read_host_file('opt/manager/rest-security.conf') == before
    assert c.read_host_file('opt/manager/rest-security.conf') == before
    assert not can_login(b, old.admin_password)
    assert not can_login(c, old.admin_password)
    # make B's file equal to A's (over SSH, as an operator would), restart its REST service
    rc, text, err = ssh_run(cluster, a, 'cat /opt/manager/rest-security.conf')
    assert rc == 0, err
    sftp_put(cluster, b, '/tmp/rest-security.conf', text.encode())
    for command in ('sudo cp /tmp/rest-security.conf /opt/manager/rest-security.conf',
                    'sudo systemctl restart cloudify-restservice'):
        rc, _, err = ssh_run(cluster, b, command)
        assert rc == 0, err
    wait_until(lambda: can_login(b, old.admin_password), 10, what='restored admin on B')
    assert not can_login(c, old.admin_password)


def sftp_put(cluster, node, remote, data):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(node.rest_host, port=cluster.ssh_port, username=cluster.ssh_user,
                   key_filename=cluster.ssh_key, look_for_keys=False, allow_agent=False)
    try:
        sftp = client.open_sftp()
        with sftp.open(remote, 'wb') as f:
            f.write(data)
        sftp.close()
    finally:
        client.close()


def test_uploaded_snapshot_on_every_node(simulated_cluster):
    """The file server is replicated between the managers (cluster.py docstring; [I]
    immediate here): an upload to A is listed and downloadable on C and present in every
    node's /opt/manager/resources; deleting it through C removes it everywhere."""
    source = simulated_cluster('6.4', managers=1, brokers=1, db_nodes=1, data='demo')
    payload = make_snapshot(source.nodes[0])
    cluster = simulated_cluster('7.0', ssh=True)
    a, b, c = cluster.nodes
    upload(a, payload, 'shared')
    assert [s.id for s in c.client().snapshots.list()] == ['shared']
    downloaded = raw(c, 'GET', '/api/v3.1/snapshots/shared/archive')
    assert downloaded.status_code == 200 and downloaded.content == payload
    remote = '/opt/manager/resources/snapshots/shared/shared.zip'
    for node in cluster.nodes:
        assert ssh_run(cluster, node, 'test -f ' + remote)[0] == 0
    c.client().snapshots.delete('shared')
    for node in cluster.nodes:
        assert ssh_run(cluster, node, 'test -e ' + remote)[0] == 1
    with pytest.raises(CloudifyClientError) as caught:
        b.client().snapshots.get('shared')
    assert caught.value.status_code == 404


# ---- source clusters ------------------------------------------------------------------------
@pytest.mark.parametrize('version,shared', [('6.4', True), ('5.1', False)])
def test_maintenance_mode_of_a_source_cluster(simulated_cluster, version, shared):
    """Maintenance mode lives in the DB from 5.1.1 (cloudify-manager commit 868e6ba78,
    maintenance.py), so on a 6.4 cluster every manager answers it; on 5.1.0 it is each
    manager's own file.  A snapshot created through one 6.4 manager downloads from another."""
    cluster = simulated_cluster(version, data='demo')
    a, b, c = cluster.nodes
    activated = raw(a, 'POST', '/api/v3.1/maintenance/activate')
    assert activated.status_code == 200, activated.text
    for node in (b, c):
        assert raw(node, 'GET', '/api/v3.1/maintenance').json()['status'] == \
            ('activated' if shared else 'deactivated')
        blocked = raw(node, 'GET', '/api/v3.1/blueprints')
        assert blocked.status_code == (503 if shared else 200)
    assert raw(a, 'GET', '/api/v3.1/blueprints').status_code == 503
    raw(a, 'POST', '/api/v3.1/maintenance/deactivate')
    if shared:
        payload = make_snapshot(a, 'through-a')
        downloaded = raw(b, 'GET', '/api/v3.1/snapshots/through-a/archive')
        assert downloaded.status_code == 200 and downloaded.content == payload


# ---- python -m tests.simulator --cluster-managers N ------------------------------------------
def test_command_line_cluster():
    """`python -m tests.simulator --cluster-managers 3` prints one JSON line listing every
    node (README 'Clusters') and stops on SIGTERM."""
    proc = subprocess.Popen([sys.executable, '-m', 'tests.simulator', '--manager-version',
                             '7.0', '--cluster-managers', '3', '--no-ssh', '--time-scale',
                             '0.05'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info['cluster'] == 'nodes'
        assert [m['hostname'] for m in info['managers']] == ['manager-1', 'manager-2',
                                                             'manager-3']
        auth = (info['admin_username'], info['admin_password'])
        for manager in info['managers']:
            url = 'http://{0}:{1}/api/v3.1/managers'.format(manager['rest_host'],
                                                            manager['rest_port'])
            response = requests.get(url, auth=auth, timeout=5)
            assert len(response.json()['items']) == 3
        assert len(info['brokers']) == 3 and len(info['db_nodes']) == 3
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == ''
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
