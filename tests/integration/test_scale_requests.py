"""The scale benchmark's request bound, small (issue 15 item 7): benchmarks/scale.py measures
10,000 deployments over 50 tenants; here 1,000 deployments (2,000 node instances) over 2
tenants, and only the number of list requests is asserted, never a time.

The inventory (prepare, and new-host's reconcile) and the agents plan run in process against
simulated managers holding the `scale` data set's shape (tests.simulator.scale.fill); every
paged listing they make (a GET carrying `_offset`, as the simulator logged it) must stay
within max(1, ceil(rows / 1000)) requests: one listing over every tenant, pages of 1,000.
"""
import math

import pytest

from cloudify_upgrade_plugin.manager import Manager
from cloudify_upgrade_plugin.runbooks import agents, inventory, reconcile
from tests.simulator import scale

ROWS = {'/deployments': 'deployments', '/node-instances': 'node_instances',
        '/blueprints': 'blueprints', '/secrets': 'secrets', '/plugins': 'plugins',
        '/sites': 'sites', '/deployment-groups': 'deployment_groups',
        '/filters/deployments': 'deployments_filters', '/filters': 'deployments_filters',
        '/filters/blueprints': 'blueprints_filters',
        '/execution-schedules': 'execution_schedules', '/user-groups': 'user_groups',
        '/agents': 'agents'}


def _list_requests(sim):
    prefix = sim.rules.api_prefix
    found = {}
    for entry in list(sim.requests):
        if entry['method'] == 'GET' and '_offset' in (entry.get('query') or {}):
            path = entry['path'][len(prefix):]
            found[path] = found.get(path, 0) + 1
    return found


def _rows(sim, path):
    with sim.state.lock:
        if path == '/tenants':
            return len(sim.state.tenants)
        if path == '/users':
            return len(sim.state.users)
        return len(sim.state.all(ROWS[path]))


def _assert_bounded(sim):
    requests = _list_requests(sim)
    assert requests, 'no listing was made'
    over = {path: (count, _rows(sim, path)) for path, count in requests.items()
            if count > max(1, math.ceil(_rows(sim, path) / 1000.0))}
    assert over == {}, over
    return requests


@pytest.mark.parametrize('version', ['5.2.7', '7.0'])
def test_inventory_reconcile_and_agents_plan_stay_within_one_request_per_1000_rows(
        simulated_manager, version):
    sim = simulated_manager(version, data='empty')
    scale.fill(sim, tenants=2, deployments=1000)
    manager = Manager.connect('127.0.0.1', sim.rest_port, 'http', username='admin',
                              password=sim.admin_password, tenant='default_tenant')
    sim.requests.clear()
    collected = inventory.collect(manager)
    requests = _assert_bounded(sim)
    assert requests['/deployments'] == 1 and requests['/node-instances'] == 2
    assert sorted(collected['tenants']) == ['default_tenant', 'tenant_01']
    assert sum(e['deployments']['count'] for e in collected['tenants'].values()) == 1000
    assert sum(e['node_instances']['count'] for e in collected['tenants'].values()) == 2000
    assert reconcile.compare(collected, collected)['ok'] is True

    sim.requests.clear()
    found = agents.plan(manager)
    assert (len(found.eligible), found.not_eligible) == (1000, [])
    assert _assert_bounded(sim) == {'/tenants': 1, '/node-instances': 2, '/agents': 1}
