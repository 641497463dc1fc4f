"""Contract: simulated 4.x premium HA clusters (active/passive; tests/simulator/cluster.py).

References: behaviour §3.5 (4.1-4.4.x row: refused on a multi-node HA cluster,
`_verify_no_multi_node_cluster`) and §12.9 (last item), Cloudify's source (GET /cluster
fields initialized/logs/error, GET /cluster/nodes ClusterNode fields, the exact refusal:
cloudify-manager@4.1..4.6 rest-service/manager_rest/rest/resources_v2/snapshots.py,
@4.4 rest/resources_v3/cluster.py, cloudify-common@4.4 cloudify_rest_client/cluster.py,
cloudify-cli@4.4 commands/cluster.py), DOCS 4.4.0-build
high-availability-clusters.md ('the active manager returns a 200 response, and all other
managers return a 400 response'), behaviour §6.1 (what cfy 7.0.5 does on managers older than
5.0.5).
"""
import json

import pytest

from tests.simulator.helpers import raw, wait_execution
from tests.simulator.test_contract_restore import FULL_BODY, make_snapshot, upload

REFUSAL = 'Action `restore snapshot` is not available on a cluster with more than one node'


def test_cluster_endpoints(simulated_cluster):
    """COMMON@4.4 cluster.py, MGR@4.4 resources_v3/cluster.py: GET /cluster says the cluster is
    initialized; GET /cluster/nodes lists both nodes, the active one as master (CLI@4.4 `cfy cluster
    nodes list`: state leader / replica); the standby answers 400 `not_cluster_master` (the 4.x
    client's NotClusterMaster, on which the 4.x CLI tried the next node)."""
    cluster = simulated_cluster('4.4', managers=2, data='demo')
    active, standby = cluster.nodes
    state = raw(active, 'GET', '/api/v3.1/cluster').json()
    assert state['initialized'] is True and state['error'] is None and state['logs'] == []
    nodes = raw(active, 'GET', '/api/v3.1/cluster/nodes').json()['items']
    assert [(n['name'], n['host_ip'], n['master'], n['online']) for n in nodes] == [
        ('manager-1', active.rest_host, True, True),
        ('manager-2', standby.rest_host, False, True)]
    answer = raw(standby, 'GET', '/api/v3.1/status')
    assert answer.status_code == 400
    assert answer.json()['error_code'] == 'not_cluster_master'
    assert raw(active, 'GET', '/api/v3.1/status').status_code == 200


def test_failover_to_the_standby(simulated_cluster):
    """DOCS 4.4 high-availability-clusters.md: when the active manager fails, a standby
    becomes active and serves the same (replicated) data."""
    cluster = simulated_cluster('4.4', managers=2, data='demo')
    active, standby = cluster.nodes
    cluster.set_leader(1)
    assert raw(active, 'GET', '/api/v3.1/blueprints').status_code == 400
    blueprints = raw(standby, 'GET', '/api/v3.1/blueprints').json()['items']
    assert {b['id'] for b in blueprints} == {'hello-world', 'web-app'}
    nodes = raw(standby, 'GET', '/api/v3.1/cluster/nodes').json()['items']
    assert [n['master'] for n in nodes] == [False, True]


@pytest.mark.parametrize('version', ['4.1', '4.4', '4.6'])
def test_restore_refused_on_a_multi_node_cluster(simulated_cluster, simulated_manager,
                                                 version):
    """behaviour §3.5, MGR@4.1..4.6 snapshots.py `_verify_no_multi_node_cluster`: POST
    /snapshots/<id>/restore on a two-node HA cluster -> 400 illegal_action_error with the exact
    message, before the body is read and before any execution; the upload is accepted."""
    source = simulated_manager(version, data='demo')
    payload = make_snapshot(source)
    cluster = simulated_cluster(version, managers=2)
    active = cluster.leader
    upload(active, payload, 'ha')
    before = len(active.client().executions.list(_include_system_workflows=True))
    response = raw(active, 'POST', '{0}/snapshots/ha/restore'.format(
        active.rules.api_prefix), json_body=FULL_BODY)
    assert response.status_code == 400
    assert response.json()['error_code'] == 'illegal_action_error'
    assert response.json()['message'] == REFUSAL
    empty = raw(active, 'POST', '{0}/snapshots/ha/restore'.format(active.rules.api_prefix),
                data=b'not json', headers={'Content-Type': 'text/plain'})
    assert (empty.status_code, empty.json()['message']) == (400, REFUSAL)
    after = active.client().executions.list(_include_system_workflows=True)
    assert len(after) == before


def test_single_node_ha_cluster_restores(simulated_cluster, simulated_manager):
    """MGR@4.1..4.6 `_verify_no_multi_node_cluster`: the check counts the cluster's nodes;
    with one node (the documented way: restore on a single node, then re-join) the restore
    runs."""
    source = simulated_manager('4.4', data='demo')
    payload = make_snapshot(source)
    cluster = simulated_cluster('4.4', managers=1)
    active = cluster.leader
    upload(active, payload, 'single')
    response = raw(active, 'POST', '/api/v3.1/snapshots/single/restore',
                   json_body=FULL_BODY)
    assert response.status_code == 200, response.text
    done = wait_execution(active.client(), response.json()['id'])
    assert done.status == 'terminated', done.error


def test_stock_cli_profiles_use_on_ha(simulated_cluster, run_cfy, cfy_workdir):
    """behaviour §6.1: cfy 7.0.5 `profiles use` (validated) asks GET managers, gets 404, falls
    back to GET /cluster; an initialized 4.x cluster makes it ask GET managers again and
    fail (cloudify_cli 7.0.5 commands/cluster.py `_all_in_one_manager`,
    `update_profile_logic`) -- after the profile was written, without a `cluster`
    section."""
    cluster = simulated_cluster('4.4', managers=2)
    active = cluster.leader
    used = run_cfy('profiles', 'use', active.rest_host, '--rest-port', cluster.rest_port,
                   '-u', cluster.admin_username, '-p', cluster.admin_password,
                   '-t', 'default_tenant')
    assert used.returncode == 1, used
    assert 'lower than 5.0.5' in used.stdout + used.stderr
    assert [(e['path'], e['status']) for e in active.requests
            if e['path'].endswith(('/managers', '/cluster'))] == [
        ('/api/v3.1/managers', 404), ('/api/v3.1/cluster', 200),
        ('/api/v3.1/managers', 404)]
    profile = json.loads((cfy_workdir / '.cloudify' / 'profiles' / active.rest_host /
                          'context.json').read_text())
    assert profile['cluster'] == {} == cluster.profile_cluster()


def test_clusters_need_premium(simulated_cluster):
    """behaviour §12.9 / §3.5: clusters are a premium feature (community: no cluster routes)."""
    with pytest.raises(ValueError):
        simulated_cluster('4.4', edition='community')
    with pytest.raises(ValueError):
        simulated_cluster('7.0', edition='community')
