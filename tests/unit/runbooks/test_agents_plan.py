"""Unit tests of runbooks/agents.py: which hosts move (install_method, --skip-node-instances,
--stop-old-agents) and the check of the move through the target's agent rows (issue 15)."""
import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.runbooks import agents


class FakeTarget:
    """A target manager: node instances, deployments and agent rows per tenant (listed
    tenant by tenant, as the inventory's ``Lister`` does without tenants)."""

    has_tenants = False

    def __init__(self, version='7.0.4', tenants=('t1',), data=None):
        self.version = versions.Version.parse(version)
        self.tenants = list(tenants)
        self.data = data or {}
        self.includes = {}

    def list_tenants(self):
        return list(self.tenants)

    def list_all(self, resource, tenant=None, include=None, **_):
        self.includes[resource] = include
        return [dict(item) for item in self.data.get((tenant, resource), [])]


def _host(nid, dep, state='started'):
    return {'id': nid, 'host_id': nid, 'deployment_id': dep, 'state': state}


def _row(nid, dep, version, method='remote', state='started', created='2026-01-01'):
    return {'id': nid + '_x', 'host_id': nid, 'node_instance_id': nid, 'deployment': dep,
            'install_method': method, 'version': version, 'state': state,
            'created_at': created}


def _target(rows, version='7.0.4', workflows=None):
    instances = [_host('a1', 'd1'), _host('a2', 'd1'), _host('p1', 'd2'), _host('n1', 'd3'),
                 {'id': 'app', 'host_id': 'a1', 'deployment_id': 'd1', 'state': 'started'}]
    deployments = [{'id': d, 'workflows': (workflows or {}).get(d, [])}
                   for d in ('d1', 'd2', 'd3')]
    return FakeTarget(version, data={('t1', 'node-instances'): instances,
                                     ('t1', 'deployments'): deployments,
                                     ('t1', 'agents'): rows})


OLD_ROWS = [_row('a1', 'd1', '5.2.7'), _row('a2', 'd1', '5.2.7', method='init_script'),
            _row('p1', 'd2', '5.2.7', method='provided')]      # n1: no agent (none)


def test_provided_and_none_hosts_are_not_moved_and_listed():
    found = agents.plan(_target(OLD_ROWS))
    assert found.verifiable is True
    assert [(m.deployment_id, m.hosts, m.parameters) for m in found.moves] == [
        ('d1', ['a1', 'a2'], {})]
    not_moved = {n['node_instance_id']: n for n in found.not_moved}
    assert set(not_moved) == {'p1', 'n1'}
    assert not_moved['p1']['install_method'] == 'provided'
    assert 'provided' in not_moved['p1']['reason']
    assert not_moved['n1']['install_method'] == 'none'
    assert found.not_eligible == []


def test_before_45_every_method_but_none_moves_and_nothing_is_checked():
    found = agents.plan(_target(OLD_ROWS, version='4.4'))
    assert found.verifiable is False and found.not_moved == []
    assert [m.deployment_id for m in found.moves] == ['d1', 'd2', 'd3']
    assert versions.moved_install_methods('4.4') == (
        'init_script', 'plugin', 'remote', 'provided')


def test_agent_fields_asked_per_version():
    target = _target(OLD_ROWS, version='6.3.0')
    agents.plan(target)
    assert 'state' not in target.includes['agents']
    target = _target(OLD_ROWS, version='7.0.4')
    agents.plan(target)
    assert {'state', 'node_instance_id', 'created_at'} <= set(target.includes['agents'])
    assert 'rabbitmq_password' not in target.includes['agents']


def test_skipped_hosts_leave_the_rest_of_their_deployment_with_node_instance_ids():
    found = agents.plan(_target(OLD_ROWS), skip=['a2'])
    [move] = found.moves
    assert move.hosts == ['a1'] and move.parameters == {'node_instance_ids': ['a1']}
    assert [(n['node_instance_id'], n['reason']) for n in found.not_moved
            if n['node_instance_id'] == 'a2'] == [('a2', agents.SKIPPED_REASON)]
    # a dead host that is not started no longer makes its deployment not eligible
    target = _target(OLD_ROWS)
    target.data[('t1', 'node-instances')][1]['state'] = 'stopped'
    unskipped = agents.plan(target)
    assert unskipped.moves == []
    assert unskipped.not_eligible[0]['deployment_id'] == 'd1'
    assert 'a2' in unskipped.not_eligible[0]['reason']
    assert [m.hosts for m in agents.plan(target, skip=['a2']).moves] == [['a1']]


def test_unknown_skip_id_is_bad_input():
    with pytest.raises(InputError) as info:
        agents.plan(_target(OLD_ROWS), skip=['app', 'zz'])
    assert info.value.error_id == 'unknown-node-instances'
    assert 'app, zz' in info.value.message


def test_stop_old_agent_only_where_the_deployment_declares_it():
    declared = {'d1': [{'name': 'install_new_agents',
                        'parameters': {'stop_old_agent': {'default': False}}}]}
    found = agents.plan(_target(OLD_ROWS, workflows=declared), stop_old_agents=True)
    assert found.moves[0].parameters == {'stop_old_agent': True}
    assert found.old_agents_kept == []
    found = agents.plan(_target(OLD_ROWS), stop_old_agents=True)
    assert found.moves[0].parameters == {}
    assert [k['deployment_id'] for k in found.old_agents_kept] == ['d1']


@pytest.mark.parametrize('rows, wrong', [
    # a move: the old row upgraded, a newer started row at the target's version
    ([_row('a1', 'd1', '5.2.7', state='upgraded', created='2026-01-01'),
      _row('a1', 'd1', '7.0.4', created='2026-01-02')], None),
    # left on the old version (agent_stays_old)
    ([_row('a1', 'd1', '5.2.7', state='restored')], 'version 5.2.7'),
    # the new row exists but did not start
    ([_row('a1', 'd1', '5.2.7', state='upgraded', created='2026-01-01'),
      _row('a1', 'd1', '7.0.4', state='failed', created='2026-01-02')], 'failed'),
    # an older new row does not hide a newer wrong one
    ([_row('a1', 'd1', '7.0.4', created='2026-01-03'),
      _row('a1', 'd1', '5.2.7', state='started', created='2026-01-04')], 'version 5.2.7'),
    ([], 'no agent'),
])
def test_verify_reads_the_newest_row_per_host(rows, wrong):
    target = FakeTarget('7.0.4', data={('t1', 'agents'): rows})
    problems = agents.verify(target, [agents.Move('t1', 'd1', ['a1'])])
    if wrong is None:
        assert problems == []
    else:
        [problem] = problems
        assert problem['node_instance_id'] == 'a1' and wrong in problem['reason']


def test_before_64_the_version_alone_is_checked():
    rows = [{'id': 'a1', 'host_id': 'a1', 'install_method': 'remote', 'version': '5.0.5',
             'deployment': 'd1'},
            {'id': 'a1_x', 'host_id': 'a1', 'install_method': 'remote', 'version': '6.2.0',
             'deployment': 'd1'}]
    target = FakeTarget('6.2.0', data={('t1', 'agents'): rows})
    assert agents.verify(target, [agents.Move('t1', 'd1', ['a1'])]) == []


class _Workspace:
    def __init__(self):
        self.files = {}

    def read_json(self, rel):
        return self.files.get(rel)

    def write_json(self, rel, obj):
        import json
        self.files[rel] = json.loads(json.dumps(obj))

    def makedirs(self, rel):
        return rel


def test_a_move_a_killed_run_installed_is_checked_not_redone():
    rows = [_row('a1', 'd1', '5.2.7', state='upgraded', created='2026-01-01'),
            _row('a1', 'd1', '7.0.4', created='2026-01-02'),
            _row('a2', 'd1', '5.2.7', state='restored', created='2026-01-01')]
    target = _target(rows)
    state = agents.AgentState(_Workspace())
    state.update('t1', 'd1', status=agents.INSTALLED, execution_id='e1')
    found = agents.plan(target)
    agents._check(target, state, found)
    entry = state.get('t1', 'd1')
    assert entry['status'] == agents.UNVERIFIED and entry['unverified'] == ['a2']
    # the next run retries only a2
    assert agents._retry_of(found.moves[0], entry).parameters == {'node_instance_ids': ['a2']}
    target.data[('t1', 'agents')].append(_row('a2', 'd1', '7.0.4', created='2026-01-03'))
    agents._check(target, state, found)
    assert state.get('t1', 'd1')['status'] == agents.SUCCEEDED
