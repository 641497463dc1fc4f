"""Agents moved and verified (issue 15 item 4), through the real `cfy` against simulators.

install-agents moves only the hosts whose install_method install_new_agents moves
(``init_script``, ``plugin``, ``remote``: behaviour §12.6); ``provided`` and ``none`` hosts are
reported as not moved.  ``--skip-node-instances`` routes around dead hosts (the workflow gets
the others as ``node_instance_ids``); ``--stop-old-agents`` passes ``stop_old_agent`` where the
deployment declares it.  After the move ``GET /agents`` on the target must show every moved
host's newest agent at the target's version and ``started``; a host left behind
(``agent_stays_old``) fails the step with its name, and a re-run moves only that host again.

Asserted on the simulators: install_new_agents executions and their parameters, agent rows
and processes, and the JSON document, the journal and the human output.
"""
import pytest

from tests import flows
from tests.simulator import agents as simagents

NEW_HOST = ('--to-profile', 'new', '--yes')


@pytest.fixture
def prepared(flow, simulated_manager, make_profile):
    """prepared(old_version, setup=None) -> (old, new): a demo old manager (``setup(old)``
    run before the snapshot) prepared for new-host to an empty 7.0."""

    def make(old_version, setup=None):
        old = simulated_manager(old_version, data='demo', ssh=True)
        new = simulated_manager('7.0', data='empty', ssh=True)
        if setup is not None:
            setup(old)
        make_profile('new', new)
        make_profile('old', old)
        flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
        return old, new
    return make


def _hosts(sim, deployment_id, tenant='default_tenant'):
    with sim.state.lock:
        return sorted(n['id'] for n in sim.state.all('node_instances')
                      if n['tenant_name'] == tenant and n['deployment_id'] == deployment_id
                      and n['id'] == n['host_id'])


def _installs(sim):
    """[(tenant, deployment, parameters)] of the install_new_agents executions, in order."""
    return [(e['tenant_name'], e['deployment_id'], e['parameters'])
            for e in sorted(flows.executions(sim, 'install_new_agents'),
                            key=lambda e: e['created_at'])]


def _current_agent(sim, host, tenant='default_tenant'):
    [agent] = [a for a in sim.agents(tenant) if a['node_instance_id'] == host]
    return agent


def test_provided_and_none_hosts_are_reported_not_moved(flow, prepared):
    def setup(old):
        simagents.set_install_method(old, 'web-1', 'provided')
        simagents.set_install_method(old, 'prod-db', 'none', tenant='t_prod')
    old, new = prepared('5.2.7', setup)
    result = flow.upgrade('new-host', *NEW_HOST)
    assert result.returncode == 0, result
    agents = result.json['agents']
    # only hw-1 and prod-web had agents the workflow moves
    assert (agents['deployments'], agents['succeeded']) == (2, 2)
    assert agents['hosts_moved'] == 3 and agents['verified'] is True
    assert agents['unverified'] == [] and agents['failed'] == []
    not_moved = {(n['tenant'], n['deployment_id'], n['node_instance_id']):
                 (n['install_method'], n['reason']) for n in agents['not_moved']}
    web = _hosts(new, 'web-1')
    [db] = _hosts(new, 'prod-db', 't_prod')
    assert set(not_moved) == {('default_tenant', 'web-1', h) for h in web} | {
        ('t_prod', 'prod-db', db)}
    for host in web:
        method, reason = not_moved[('default_tenant', 'web-1', host)]
        assert method == 'provided' and 'provided' in reason
    assert not_moved[('t_prod', 'prod-db', db)][0] == 'none'
    # nothing ran for them, their agents are where they were
    assert sorted(new.agent_installs()) == [('default_tenant', 'hw-1'),
                                            ('t_prod', 'prod-web')]
    for host in web:
        assert _current_agent(new, host)['broker']['port'] == old.rest_port
    human = flow.run('upgrade', 'new-host', '--upgrade-id', flow.upgrade_id, *NEW_HOST)
    assert human.returncode == 0, human
    output = human.stdout + human.stderr
    assert 'Agents: 2 of 2 deployment(s) moved.' in output
    for host in web:
        assert 'Not moved: default_tenant/web-1 host {0}: install_method provided'.format(
            host) in output


def test_a_host_left_on_the_old_version_fails_the_step_and_only_it_moves_again(
        flow, prepared):
    old, new = prepared('5.2.7')
    stuck = _hosts(old, 'prod-web', 't_prod')[0]
    other = _hosts(old, 'prod-web', 't_prod')[1]
    new.faults.agent_stays_old(stuck, tenant='t_prod', times=1)
    first = flow.upgrade('new-host', *NEW_HOST)
    assert first.returncode == 1, first
    error = first.json['error']
    assert error['id'] == 'agents-not-verified' and error['step'] == 'install-agents'
    assert 't_prod/prod-web/' + stuck in error['message']
    assert other not in error['message']
    [unverified] = first.json['agents']['unverified']
    assert (unverified['tenant'], unverified['deployment_id'],
            unverified['node_instance_ids']) == ('t_prod', 'prod-web', [stuck])
    assert flow.events('install-agents')[-1] == 'failed'
    assert flow.events('finish') == []
    # the re-run checks again and moves only that host
    second = flow.upgrade('new-host', *NEW_HOST)
    assert second.returncode == 0, second
    installs = _installs(new)
    assert [(t, d) for t, d, _ in installs].count(('t_prod', 'prod-web')) == 2
    assert installs[-1][:2] == ('t_prod', 'prod-web')
    assert installs[-1][2]['node_instance_ids'] == [stuck]
    assert {(t, d) for t, d, _ in installs} == {
        ('default_tenant', 'hw-1'), ('default_tenant', 'web-1'), ('t_prod', 'prod-web'),
        ('t_prod', 'prod-db')}
    assert len(installs) == 5
    assert _current_agent(new, stuck, 't_prod')['version'] == new.version
    assert second.json['agents']['unverified'] == []
    assert second.json['agents']['succeeded'] == 4


def test_skip_node_instances_routes_around_a_dead_host(flow, prepared):
    old, new = prepared('5.2.7')
    dead, alive = _hosts(old, 'prod-web', 't_prod')
    # an id that is no host of the new manager is bad input, before any agent moves
    bad = flow.upgrade('new-host', *NEW_HOST + ('--skip-node-instances', 'nope_1'))
    assert bad.returncode == 2, bad
    assert bad.json['error']['id'] == 'unknown-node-instances'
    assert new.agent_installs() == {}
    result = flow.upgrade('new-host', *NEW_HOST + ('--skip-node-instances', dead))
    assert result.returncode == 0, result
    [prod_web] = [p for t, d, p in _installs(new) if d == 'prod-web']
    assert prod_web['node_instance_ids'] == [alive]
    others = [p for t, d, p in _installs(new) if d != 'prod-web']
    assert others and all(not p.get('node_instance_ids') for p in others)
    assert _current_agent(new, alive, 't_prod')['broker']['port'] == new.rest_port
    assert _current_agent(new, dead, 't_prod')['broker']['port'] == old.rest_port
    [skipped] = result.json['agents']['not_moved']
    assert (skipped['node_instance_id'], skipped['reason']) == (
        dead, 'skipped: named by --skip-node-instances')
    assert result.json['agents']['hosts_moved'] == 5
    # a malformed list is a usage error
    usage = flow.upgrade('new-host', *NEW_HOST + ('--skip-node-instances', 'a,,b'))
    assert usage.returncode == 2, usage


@pytest.mark.parametrize('version, declared', [('5.2.7', True), ('4.1', False)])
def test_stop_old_agents_where_the_deployment_declares_it(
        flow, prepared, version, declared):
    old, new = prepared(version)
    args = NEW_HOST + ('--stop-old-agents',)
    if not declared:
        args += ('--users', 'rest-security')
    result = flow.upgrade('new-host', *args)
    assert result.returncode == 0, result
    installs = _installs(new)
    assert len(installs) == 4
    assert all(bool(p.get('stop_old_agent')) is declared for _, _, p in installs)
    kept = result.json['agents']['old_agents_kept']
    if declared:
        assert kept == []
        # the old agents' processes of every moved host are stopped
        moved = {a['node_instance_id'] for a in new.agents()
                 if a['broker']['port'] == new.rest_port}
        assert len(moved) == 6
        assert {a['process'] for a in old.agents() if a['node_instance_id'] in moved} == \
            {'stopped'}
    else:
        # 4.1 types declare no stop_old_agent: not passed (it would be refused), reported
        assert sorted((k['tenant'], k['deployment_id']) for k in kept) == sorted(
            (t, d) for t, d, _ in installs)
        assert all('stop_old_agent' in k['reason'] for k in kept)
        assert {a['process'] for a in old.agents()} == {'running'}
