"""manager/cluster.py: layouts of simulated managers and clusters, read in process
(behaviour §12.9, §3.5; tests/simulator README 'Clusters')."""
import json

import pytest
from cloudify_cli.env import ProfileContext

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.cluster import (
    ALL_IN_ONE, CLUSTER, HA4, Layout, discover_layout, manager_at, node_answers,
    node_ssh_profile, profile_section)
from cloudify_upgrade_plugin.manager.retry import RetryPolicy


def _manager(sim, host, profile=None):
    return Manager.connect(host, sim.rest_port, 'http', username=sim.admin_username,
                           password=sim.admin_password, profile=profile)


def test_a_70_cluster(simulated_cluster):
    """GET managers / brokers / db-nodes and cluster-status; the profile's entries give the
    addresses and each node's SSH settings; broker credentials are never kept."""
    cluster = simulated_cluster('7.0', ssh=True)
    a, b, c = cluster.nodes
    context = cluster.profile_context(name='new', ssh=True)
    context['cluster']['manager'][2]['ssh_user'] = 'operator'
    profile = ProfileContext(context, profile_name='new')
    manager = _manager(cluster.first, a.rest_host, profile)
    layout = discover_layout(manager)
    assert layout.kind == CLUSTER and layout.multi_manager
    assert [(n.name, n.address, n.role, n.status) for n in layout.managers] == [
        (n.hostname, n.rest_host, 'active', 'OK') for n in cluster.nodes]
    assert [n.address for n in layout.brokers] == ['127.0.2.1', '127.0.2.2', '127.0.2.3']
    assert [n.name for n in layout.db_nodes] == ['db-1', 'db-2', 'db-3']
    assert layout.managers[2].ssh['ssh_user'] == 'operator'
    assert layout.managers[0].ssh['ssh_user'] == cluster.ssh_user
    doc = layout.to_dict()
    assert 'sim-rabbitmq-password' not in json.dumps(doc)
    assert doc['managers'][2]['ssh'] == 'operator@{0}:{1}'.format(
        c.rest_host, cluster.ssh_port)
    assert 'ssh_key' not in json.dumps(doc)
    assert layout.manager('manager-2') is layout.manager(b.rest_host)
    again = Layout.from_dict(doc, profile)
    assert again.to_dict() == doc and again.managers[2].ssh['ssh_user'] == 'operator'
    b.cfy_manager('stop')
    assert not node_answers(manager, layout.managers[1])
    assert node_answers(manager, layout.managers[2])
    assert [n.status for n in discover_layout(manager).managers] == ['OK', 'Fail', 'OK']


def test_the_same_manager_at_another_node(simulated_cluster):
    cluster = simulated_cluster('7.0')
    a, b, _ = cluster.nodes
    manager = _manager(cluster.first, a.rest_host)
    moved = manager_at(manager, b.rest_host)
    assert moved.address == 'http://{0}:{1}'.format(b.rest_host, cluster.rest_port)
    assert moved.version == manager.version and moved.credentials == manager.credentials
    seen_on_a = len(a.requests)
    moved.version_data()
    assert b.requests.matching('GET', '/version')
    assert len(a.requests) == seen_on_a        # no discovery, nothing sent to A


def test_an_all_in_one_manager(simulated_manager):
    for version in ('7.0', '4.4'):
        sim = simulated_manager(version)
        layout = discover_layout(_manager(sim, '127.0.0.1'))
        assert layout.kind == ALL_IN_ONE and not layout.multi_manager
        assert [n.address for n in layout.managers] == ['127.0.0.1']


def test_a_4x_ha_cluster(simulated_cluster):
    """behaviour §3.5: GET /cluster (initialized) and /cluster/nodes (master, online)."""
    cluster = simulated_cluster('4.4', managers=2)
    leader, standby = cluster.nodes
    layout = discover_layout(_manager(cluster.first, leader.rest_host))
    assert layout.kind == HA4 and layout.multi_manager
    assert [(n.name, n.address, n.role, n.status) for n in layout.managers] == [
        ('manager-1', leader.rest_host, 'leader', 'online'),
        ('manager-2', standby.rest_host, 'standby', 'online')]


def test_profile_sections():
    """behaviour §12.9: a 7.0 profile's dict; a 4.x profile's list of manager nodes."""
    entry = {'hostname': 'm1', 'host_type': 'manager', 'host_ip': '10.0.0.1',
             'ssh_user': 'centos', 'ssh_key': '/k', 'ssh_port': '2222'}
    profile = {'manager_ip': '10.0.0.9', 'ssh_user': 'root', 'ssh_key': '/root.key',
               'ssh_port': 22, 'cluster': {'manager': [entry], 'broker': [], 'db': []}}
    assert profile_section(profile)['manager'] == [entry]
    assert node_ssh_profile(profile, '10.0.0.1') == {
        'name': 'm1 (10.0.0.1)', 'manager_ip': '10.0.0.1', 'ssh_user': 'centos',
        'ssh_key': '/k', 'ssh_port': '2222'}
    assert node_ssh_profile(profile, '10.0.0.2', name='m2') == {
        'name': 'm2 (10.0.0.2)', 'manager_ip': '10.0.0.2', 'ssh_user': 'root',
        'ssh_key': '/root.key', 'ssh_port': 22}
    legacy = {'cluster': [{'manager_ip': '10.0.0.3', 'hostname': 'old'}, 'junk']}
    assert profile_section(legacy) == {'manager': [
        {'manager_ip': '10.0.0.3', 'hostname': 'old', 'host_ip': '10.0.0.3'}]}
    assert profile_section({'cluster': 'junk'}) == {}
    assert profile_section({'cluster': {}}) == {}
    assert profile_section(None) == {}


def test_the_plugins_manager_never_fails_over(simulated_cluster, cfy_workdir):
    """behaviour §12.9: cfy's own client (a ClusterHTTPClient for a profile with cluster managers)
    moves to the next node when one stops answering; the plugin's Manager, built from the
    same profile, stays on its node: the loss is an error, nothing reaches another node."""
    cluster = simulated_cluster('7.0')
    name = cluster.write_profile(cfy_workdir, ssh=False)
    manager = Manager.from_profile(name, retry_policy=RetryPolicy(attempts=1))
    a, b, c = cluster.nodes
    assert manager.host == a.rest_host
    a.fail_after(1, mode='stop')
    manager.version_data()                     # answered by A, which then goes down
    with pytest.raises(UpgradeError) as caught:
        manager.version_data()
    assert caught.value.error_id == 'manager-unreachable'
    assert not b.requests.matching('GET', '/version')
    assert not c.requests.matching('GET', '/version')
