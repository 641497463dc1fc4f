"""Cluster managers through the real `cfy` against simulated clusters (issue 16).

The simulated clusters (tests/simulator/cluster.py, README 'Clusters'): nodes on 127.0.1.n
sharing one DB, each with its own REST service, SSH host and rest-security.conf; `cfy_manager
stop|start` over SSH; `fail_after` for a failover.  Asserted: exit codes, the --json
documents (docs/cli-contract.md), what each node received and holds, the journal.
"""
import json
import os

import pytest

from tests import flows
from tests.simulator import data as simdata

REST_SECURITY = 'opt/manager/rest-security.conf'
DEMO_AGENT_DEPLOYMENTS = {('default_tenant', 'hw-1'), ('default_tenant', 'web-1'),
                          ('t_prod', 'prod-web'), ('t_prod', 'prod-db')}


def _restores(node):
    return [e for e in node.started_executions() if e['workflow_id'] == 'restore_snapshot']


def _mode(node, rel):
    return os.stat(node.host_path(rel)).st_mode & 0o777


def _observe_restore(node, *others):
    """[{other hostname: running}] at each `POST .../restore` that reaches ``node``."""
    seen = []
    original = node.api.handle

    def handle(request):
        if request.method == 'POST' and request.path.endswith('/restore'):
            seen.append({other.hostname: other.running for other in others})
        return original(request)
    node.api.handle = handle
    return seen


@pytest.fixture
def into_cluster(flow, simulated_manager, simulated_cluster):
    """A prepared 5.1 premium all-in-one (profile ``old``) and a new 3-manager 7.0.4 cluster
    (profile ``new``, written as stock cfy writes it, with every node's SSH settings)."""

    def make(**cluster_kwargs):
        old = simulated_manager('5.1', data='demo', ssh=True,
                                admin_password=flows.OLD_ADMIN_PASSWORD)
        flow.profile('old', old)
        flow.old = old
        flow.source_view = flows.data_view(old)
        cluster_kwargs.setdefault('ssh', True)
        cluster = simulated_cluster('7.0', admin_password=flows.NEW_ADMIN_PASSWORD,
                                    **cluster_kwargs)
        cluster.write_profile(flow.workdir, name='new', activate=False)
        flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
        return old, cluster
    return make


def _assert_cluster_serves_restored_data(flow, old, cluster):
    for node in cluster.nodes:
        assert node.running, node.hostname
        assert flows.can_login(node, 'admin', old.admin_password), node.hostname
        assert not flows.can_login(node, 'admin', flows.NEW_ADMIN_PASSWORD), node.hostname
        for user, (password, _, tenants) in simdata.DEMO_USERS.items():
            assert flows.can_login(node, user, password, tenant=sorted(tenants)[0]), \
                (node.hostname, user)
    assert flows.data_view(cluster.nodes[1]) == flow.source_view
    restored = cluster.nodes[0].read_host_file(REST_SECURITY)
    for node in cluster.nodes[1:]:
        assert node.read_host_file(REST_SECURITY) == restored, node.hostname
        assert _mode(node, REST_SECURITY) == 0o600
        assert not [name for name in os.listdir(node.host_path('opt/manager'))
                    if name.startswith('.cfy-upgrade')]
    installs = cluster.nodes[0].agent_installs()
    assert {key: installs.get(key) for key in DEMO_AGENT_DEPLOYMENTS} == \
        {key: 1 for key in DEMO_AGENT_DEPLOYMENTS}


def test_new_host_into_a_three_manager_cluster(flow, into_cluster):
    """behaviour §12.9 (the vendor's 5.1 cluster upgrade guide): the other managers are stopped,
    the snapshot is uploaded and restored on one, every manager gets the restored
    rest-security.conf (written privately), the others are started, each accepts the
    restored credentials; the agents move."""
    old, cluster = into_cluster()
    a, b, c = cluster.nodes
    at_restore = _observe_restore(a, b, c)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    assert at_restore == [{'manager-2': False, 'manager-3': False}]
    doc = result.json
    assert doc['reconciliation'] == {'ok': True, 'differences': []}
    assert doc['agents']['succeeded'] == doc['agents']['deployments'] == 4
    section = doc['cluster']
    assert section['pinned']['name'] == 'manager-1'
    assert section['pinned']['address'] == a.rest_host
    assert section['stopped'] == ['manager-2', 'manager-3']
    assert section['rest_security']['nodes'] == {'manager-2': 'copied', 'manager-3': 'copied'}
    assert section['verified'] == {n.hostname: {'rest_security': 'restored',
                                                'login': 'accepted'}
                                   for n in cluster.nodes}
    assert [m['name'] for m in section['target_layout']['managers']] == \
        ['manager-1', 'manager-2', 'manager-3']
    # one upload and one restore, both on the pinned manager
    assert [r['status'] for r in flows.upload_requests(a)] == [201]
    assert len(flows.restore_requests(a)) == 1 and len(_restores(a)) == 1
    for node in (b, c):
        assert flows.upload_requests(node) == [] and flows.restore_requests(node) == []
        assert _restores(node) == []
        events = node.events()
        assert events.index('cfy_manager stop') < events.index('cfy_manager start')
    _assert_cluster_serves_restored_data(flow, old, cluster)
    # the copy was staged in a root-only directory next to the file, never in /tmp
    for node in (b, c):
        commands = node.machine.host.commands
        assert not [line for line in commands if '/tmp' in line], commands
        mkdir = [i for i, line in enumerate(commands) if 'mkdir -m 700' in line]
        tar = [i for i, line in enumerate(commands) if 'tar xf -' in line]
        assert mkdir and tar and mkdir[0] < tar[0], commands
    pinned = flow.last_entry('cluster-pin', 'succeeded')
    assert pinned['details']['name'] == 'manager-1'
    assert flow.meta()['target_layout']['kind'] == 'cluster'
    assert flow.read_profile('new')['manager_password'] == old.admin_password
    assert flow.files_containing(old.admin_password, flows.NEW_ADMIN_PASSWORD) == []
    text = json.dumps(flow.meta())
    for node in cluster.nodes:
        conf = json.loads(node.read_host_file(REST_SECURITY))
        assert conf['hash_salt'] not in text and conf['secret_key'] not in text


@pytest.mark.parametrize('pause', [
    ('cluster-stop-others', 'succeeded', 'before'),      # the others stopped, not journaled
    ('wait-restore', 'started', 'after'),                 # the restore runs, others stopped
    ('cluster-sync-rest-security', 'succeeded', 'before'),  # files copied, others stopped
], ids=['after-stop', 'restoring', 'after-sync'])
def test_killed_after_stopping_the_others_the_same_command_completes(flow, into_cluster,
                                                                     pause):
    """Killed (SIGKILL) once the other managers were stopped, the same command starts them
    again and completes the job: the journal says which managers it stopped."""
    old, cluster = into_cluster()
    a, b, c = cluster.nodes
    args = ('upgrade', 'new-host', '--upgrade-id', flow.upgrade_id, '--to-profile', 'new',
            '--yes', '--json')
    flow.crash(*args, pause=pause, inside=pause[0] if pause[1] == 'succeeded' else None)
    assert not b.running and not c.running
    assert flow.meta()['cluster_stopped'] == ['manager-2', 'manager-3']
    result = flow.run(*args)
    assert result.returncode == 0, result
    assert result.json['cluster']['stopped'] == ['manager-2', 'manager-3']
    assert flow.events('cluster-start-others')[-1] == 'succeeded'
    if pause[0] == 'cluster-stop-others':
        assert flow.events(pause[0]) == ['started', 'interrupted', 'succeeded']
        assert flow.last_entry(pause[0], 'succeeded')['details']['recovered'] is True
    assert len(flows.restore_requests(a)) == 1 and len(_restores(a)) == 1
    assert _restores(b) == [] and _restores(c) == []
    _assert_cluster_serves_restored_data(flow, old, cluster)
