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
from tests.waiting import wait_until

REST_SECURITY = 'opt/manager/rest-security.conf'
DEMO_AGENT_DEPLOYMENTS = {('default_tenant', 'hw-1'), ('default_tenant', 'web-1'),
                          ('t_prod', 'prod-web'), ('t_prod', 'prod-db')}


def _restores(node):
    return [e for e in node.started_executions() if e['workflow_id'] == 'restore_snapshot']


def _settled(node):
    """The restore and its post-restore work ended on ``node`` (snapshot-status off)."""
    flags = [e for e in node.events() if e.startswith('snapshot-status')]
    return bool(flags) and flags[-1] == 'snapshot-status not-running'


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
        flow.cluster_profile(cluster, 'new', activate=False)
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
    assert (doc['reconciliation']['ok'], doc['reconciliation']['differences']) == (True, [])
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
    if pause[0] == 'wait-restore':
        # as the reliability suite does: the re-run comes once the restore's post-restore
        # work is over (on 4.6+ targets neither admin password works for a moment inside it)
        wait_until(lambda: _settled(a), flows.KILL_TIMEOUT, 'the end of the restore on A')
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


def test_failover_between_upload_and_restore_is_reported_not_followed(flow, into_cluster):
    """behaviour §12.9: cfy's own cluster client moves to the next manager when one stops
    answering, so an upload on A and the restore after it could land on different managers.
    The plugin's upload, restore and credential switch stay on the pinned manager: its loss
    is reported (cluster-node-lost), never followed, not even once stock cfy moved the
    profile to another manager; once it is back, the same command completes there."""
    old, cluster = into_cluster()
    a, b, c = cluster.nodes
    a.fail_after(1, method='PUT', path=flows.SNAPSHOT_ARCHIVE)
    args = ('--to-profile', 'new', '--yes')
    first = flow.upgrade('new-host', *args)
    assert first.returncode == 1, first
    error = first.json['error']
    assert error['id'] == 'cluster-node-lost'
    assert 'manager-1' in error['message'] and a.rest_host in error['message']
    assert any('cfy_manager start' in hint for hint in error['hints'])
    assert flow.events('upload-snapshot')[-1] == 'succeeded'
    assert flow.events('start-restore')[-1] == 'failed'
    assert [r['status'] for r in flows.upload_requests(a)] == [201]
    for node in cluster.nodes:
        assert flows.restore_requests(node) == [] and _restores(node) == []
    assert not a.running and not b.running and not c.running

    # an operator starts manager-2: stock cfy's cluster client fails over to it (and puts it
    # first in the profile); the operator even points the profile at it
    b.cfy_manager('start')
    flow.activate('new')
    listed = flow.run('snapshots', 'list')
    assert listed.returncode == 0, listed
    assert flow.read_profile('new')['cluster']['manager'][0]['hostname'] == 'manager-2'
    moved = flow.run('profiles', 'set', '--manager-ip', b.rest_host,
                     '--skip-credentials-validation')
    assert moved.returncode == 0, moved
    assert flow.read_profile('new')['manager_ip'] == b.rest_host
    flow.activate('old')
    second = flow.upgrade('new-host', *args)
    assert second.returncode == 1, second
    assert second.json['error']['id'] == 'cluster-node-lost'
    assert b.rest_host in second.json['error']['message']      # the profile's new node
    assert flows.upload_requests(b) == [] and flows.restore_requests(b) == []
    assert not [r for r in b.requests if r['method'] in flows.MUTATING]

    # manager-1 is back: the upgrade goes on there (manager-2 stopped again first)
    a.cfy_manager('start')
    at_restore = _observe_restore(a, b, c)
    final = flow.upgrade('new-host', *args)
    assert final.returncode == 0, final
    assert at_restore == [{'manager-2': False, 'manager-3': False}]
    assert len(flows.restore_requests(a)) == 1 and len(_restores(a)) == 1
    assert _restores(b) == [] and _restores(c) == []
    _assert_cluster_serves_restored_data(flow, old, cluster)


def test_4x_ha_target_with_two_nodes_is_blocked_before_the_upload(flow, simulated_manager,
                                                                  simulated_cluster):
    """behaviour §3.5: 4.1-4.6 refuse a restore on an HA cluster of more than one node, after
    the upload.  The plugin blocks before anything is uploaded (exit 3) with the documented
    way, and no --waive passes that check."""
    old = simulated_manager('4.3', data='demo', ssh=True)
    flow.profile('old', old)
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    cluster = simulated_cluster('4.4', managers=2)
    flow.cluster_profile(cluster, 'new', activate=False)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 3, result
    error = result.json['error']
    assert error['id'] == 'blocked'
    checks = {check['id']: check for check in result.json['checks']}
    assert checks['ha4-cluster-restore']['status'] == 'fail'
    assert 'cfy cluster join' in checks['ha4-cluster-restore']['message']
    assert any('cfy cluster start' in hint for hint in error['hints'])
    assert not any('--waive ha4-cluster-restore' in hint for hint in error['hints'])
    waived = flow.upgrade('new-host', '--to-profile', 'new', '--yes',
                          '--waive', 'ha4-cluster-restore', '--reason', 'try anyway')
    assert waived.returncode == 2, waived
    assert waived.json['error']['id'] == 'waiver-not-allowed'
    for node in cluster.nodes:
        assert flows.upload_requests(node) == []
        assert node.requests.matching('POST', '/restore') == []
        assert not [r for r in node.requests if r['method'] in flows.MUTATING]
    assert flow.meta()['target_layout']['kind'] == 'ha4'
    assert [n['role'] for n in flow.meta()['target_layout']['managers']] == \
        ['leader', 'standby']
    assert flow.events('upload-snapshot') == []


@pytest.mark.parametrize('version,shared', [('6.4', True), ('5.1', False)])
def test_source_cluster_is_fenced_as_a_whole(flow, simulated_manager, simulated_cluster,
                                             version, shared):
    """A 3-manager source cluster -> a 7.0.4 all-in-one: the snapshot is taken through one
    manager; at the cut-over every manager of the old cluster is put in maintenance mode
    (one call through the shared DB on 6.4, one per manager on 5.1.0: cloudify-manager commit
    868e6ba78) and reports it."""
    old = simulated_cluster(version, colocated=True, data='demo',
                            admin_password=flows.OLD_ADMIN_PASSWORD)
    a, b, c = old.nodes
    flow.cluster_profile(old, 'old')
    new = simulated_manager('7.0', data='empty', ssh=True,
                            admin_password=flows.NEW_ADMIN_PASSWORD)
    flow.profile('new', new, activate=False)
    prepared = flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json').json
    assert prepared['layout']['kind'] == 'cluster'
    assert [n['name'] for n in prepared['layout']['managers']] == \
        ['manager-1', 'manager-2', 'manager-3']
    assert [n['name'] for n in prepared['layout']['db_nodes']] == ['db-1', 'db-2', 'db-3']
    assert prepared['cluster']['snapshot_through'] == {'name': 'manager-1',
                                                       'address': a.rest_host}
    assert flow.meta()['source_pin']['name'] == 'manager-1'
    for node in (b, c):
        assert not [r for r in node.requests if r['method'] in flows.MUTATING]
        assert not flows.requests_matching(node, 'GET', flows.SNAPSHOT_ARCHIVE)
    assert len(flows.requests_matching(a, 'PUT', flows.SNAPSHOT_CREATE, status=201)) == 1

    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    fenced = result.json['cluster']['old_cluster_fenced']
    assert fenced['nodes'] == {n.hostname: 'activated' for n in old.nodes}
    assert fenced['shared_db'] is shared
    for node in old.nodes:
        assert node.maintenance_state()['status'] == 'activated', node.hostname
        activations = flows.requests_matching(node, 'POST', r'/maintenance/activate$')
        assert len(activations) == (1 if node is a or not shared else 0), node.hostname
    assert result.json['cluster']['pinned'] is None
    assert result.json['agents']['succeeded'] == 4
    installs = new.agent_installs()
    assert {key: installs.get(key) for key in DEMO_AGENT_DEPLOYMENTS} == \
        {key: 1 for key in DEMO_AGENT_DEPLOYMENTS}
    assert flows.data_view(new) == flows.data_view(a)


def test_plan_shows_the_cluster_and_the_vendor_rpm_route(flow, simulated_cluster):
    """plan shows a source cluster's layout (managers, brokers, DB nodes and their state)
    and, for a 5.1+ cluster going to 7.0, the vendor's in-place RPM route (behaviour §12.9:
    `cfy_cluster_manager upgrade`, DB nodes -> brokers -> managers) beside the snapshot route;
    it only reads."""
    old = simulated_cluster('6.4', data='demo')
    flow.cluster_profile(old, 'old', ssh=False)
    result = flow.run('upgrade', 'plan', '--target-version', '7.0', '--json')
    assert result.returncode == 0, result
    doc = result.json
    layout = doc['layout']
    assert layout['kind'] == 'cluster'
    assert [(n['name'], n['address'], n['role'], n['status']) for n in layout['managers']] == [
        (n.hostname, n.rest_host, 'active', 'OK') for n in old.nodes]
    assert [n['address'] for n in layout['brokers']] == ['127.0.2.1', '127.0.2.2', '127.0.2.3']
    assert [n['address'] for n in layout['db_nodes']] == ['127.0.3.1', '127.0.3.2', '127.0.3.3']
    assert 'password' not in json.dumps(layout)
    routes = {route['id']: route for route in doc['cluster']['routes']}
    assert set(routes) == {'snapshot', 'rpm-in-place'}
    rpm = routes['rpm-in-place']
    assert rpm['order'] == ['db', 'broker', 'manager'] and rpm['rpm_install'] is True
    assert rpm['nodes'] == ['db-1', 'db-2', 'db-3', 'broker-1', 'broker-2', 'broker-3',
                            'manager-1', 'manager-2', 'manager-3']
    assert 'cfy_cluster_manager upgrade' in rpm['command']
    assert 'maintenance mode' in doc['cluster']['fence']
    assert [s['id'] for s in doc['cluster_target_steps']] == [
        'cluster-pin', 'cluster-stop-others', 'cluster-sync-rest-security',
        'cluster-start-others', 'cluster-verify-nodes']
    for node in old.nodes:
        assert {r['method'] for r in node.requests} <= {'GET'}
    human = flow.run('upgrade', 'plan', '--target-version', '7.0')
    assert human.returncode == 0, human
    text = human.stdout + human.stderr
    assert 'Source layout: cluster' in text and 'Route rpm-in-place' in text
    assert flow.upgrade_ids() == []


def test_4x_ha_source_has_riemann_stopped_on_every_node(flow, simulated_manager,
                                                        simulated_cluster):
    """behaviour §7.4: auto-heal runs where cloudify-riemann runs, and a 4.x HA standby may become
    the active manager: at the cut-over riemann is stopped on every node of the old HA
    cluster (its profile has no cluster section: the profile's SSH settings at each node's
    address)."""
    old = simulated_cluster('4.4', managers=2, data='demo', ssh=True,
                            admin_password=flows.OLD_ADMIN_PASSWORD)
    leader, standby = old.nodes
    flow.cluster_profile(old, 'old')
    assert flow.read_profile('old')['cluster'] == {}
    new = simulated_manager('7.0', data='empty', ssh=True,
                            admin_password=flows.NEW_ADMIN_PASSWORD)
    flow.profile('new', new, activate=False)
    prepared = flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json').json
    assert prepared['layout']['kind'] == 'ha4'
    assert [(n['name'], n['role']) for n in prepared['layout']['managers']] == [
        ('manager-1', 'leader'), ('manager-2', 'standby')]
    assert 'riemann' in prepared['cluster']['fence']
    assert leader.unit_active('cloudify-riemann') and standby.unit_active('cloudify-riemann')
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    fenced = result.json['cluster']['old_cluster_fenced']
    assert fenced['nodes'] == {'manager-1': 'riemann stopped', 'manager-2': 'riemann stopped'}
    assert not leader.unit_active('cloudify-riemann')
    assert not standby.unit_active('cloudify-riemann')
    assert result.json['healing_fenced'] is True
    assert result.json['agents']['succeeded'] == 4
