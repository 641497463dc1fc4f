"""Agents of the simulated managers: ``GET /agents`` per version, the ``install_new_agents``
workflow of the manager that runs it (which hosts move, the old-broker validation, the new
agent row, ``stop_old_agent``), the agent rows a restore creates, and test helpers that set a
deployment's install method.

What a move does (AG@7.0.4 cloudify_agent/operations.py create_agent_amqp; COMMON@7.0.4
cloudify/plugins/workflows.py _make_install_agents_graph, _create_hosts_list): the hosts are
filtered by install method (``init_script``, ``plugin``, ``remote`` by default, behaviour §12.6),
every remaining host must be ``started``, the validate subgraph (the old agent through the
old broker) runs before any install; each install marks the old row ``upgrading``, creates a
new row named ``<old name>_<uuid>`` (``starting`` -> ``started``, the target's version),
marks the old row ``upgraded`` and, with ``stop_old_agent``, stops the old agent process and
marks its row ``stopped``.  So after a move ``GET /agents`` lists both rows of every host
(Cloudify source: cloudify-manager@6.3.0..7.0.4 rest/responses_v3.py AgentResponse).
"""
import uuid

from tests.simulator import data as datamod
from tests.simulator.api import route
from tests.simulator.workflows import WORK_STEP, RESTORE_HOOKS, WorkflowFailed, register_work

METHODS = ('none', 'remote', 'init_script', 'provided', 'plugin')   # COMMON@7.0.4 constants


@route('GET', r'/agents', when='has_agents_endpoint')
def agents_list(api, ctx):
    """GET /agents (MGR@4.5/4.5.5/5.0.5/6.3.0/7.0.4 resources_v3_1/agents.py Agents.get,
    responses_v3.py AgentResponse): fields per version (rules.agent_fields); the agents table
    from 4.5.5 (every row), 4.5.0 lists each host's agent from its node instance; filters
    deployment_id, node_ids, node_instance_ids, install_methods (the 7.0.5 client's)."""
    rules = api.rules
    extra = None if rules.has_agents_table else {'current': ['True']}
    filter_map = {'deployment_id': 'deployment', 'node_ids': 'node',
                  'node_instance_ids': 'node_instance_id', 'install_methods': 'install_method'}
    if 'state' in rules.agent_fields:
        filter_map['state'] = 'state'
    return api.resource_list(ctx, 'agents', extra_filter=extra, filter_map=filter_map)


# ----------------------------------------------------------------------------------------
# install_new_agents
# ----------------------------------------------------------------------------------------
def install_method(agent):
    return (agent or {}).get('install_method') or 'remote'


def _hosts(mgr, tenant, did, params):
    """COMMON@7.0.4 workflows.py _create_hosts_list + _assert_hosts_started."""
    store, rules = mgr.store, mgr.rules
    instances = [ni for ni in store.all('node_instances')
                 if ni['tenant_name'] == tenant and ni['deployment_id'] == did]
    methods = {ni['id']: install_method(datamod.current_agent(store, tenant, ni['id']) or
                                        {'install_method': ni.get('_install_method')})
               for ni in instances}
    node_ids = params.get('node_ids') or []
    ni_ids = params.get('node_instance_ids') or []
    if node_ids or ni_ids:
        chosen = [ni for ni in instances
                  if (not node_ids or ni['node_id'] in node_ids)
                  and (not ni_ids or ni['id'] in ni_ids)]
        errors = ['Node instance {0} is not host.'.format(ni['id'])
                  for ni in chosen if ni['id'] != ni['host_id']]
        if any(methods[ni['id']] == 'none' for ni in chosen if ni['id'] == ni['host_id']):
            # COMMON@4.6..7.0.4: `errors.append('...').format(...)` on None
            raise WorkflowFailed("AttributeError: 'NoneType' object has no attribute "
                                 "'format'")
        if errors:
            raise WorkflowFailed('ValueError: Specified filters are not correct:\n' +
                                 '\n'.join(errors))
        hosts = chosen
    else:
        wanted = params.get('install_methods') or rules.agent_methods_moved
        hosts = [ni for ni in instances
                 if ni['id'] == ni['host_id'] and methods[ni['id']] in wanted]
    for ni in hosts:
        if ni['state'] != 'started':
            raise WorkflowFailed('RuntimeError: Node {0} is not started (state: {1})'.format(
                ni['id'], ni['state']))
    return hosts


def _old_manager(mgr, agent):
    from tests.simulator import manager as managermod
    broker = agent.get('broker') or {}
    with managermod._REGISTRY_LOCK:
        # keyed by (REST address, REST port): cluster nodes share a port (manager.py)
        other = managermod._REGISTRY.get((broker.get('ip') or '127.0.0.1', broker.get('port')))
    return other if other is not mgr else None


def _stop_old_process(mgr, agent):
    """stop_old_agent: the old agent's process stops on its host; the old manager's row is
    not told (only the new manager's table says 'stopped')."""
    old = _old_manager(mgr, agent)
    if old is None:
        return
    with old.store.lock:
        found = datamod.current_agent(old.store, agent['tenant_name'],
                                      agent['node_instance_id'])
        if found is not None:
            found['process'] = 'stopped'


def new_agent_name(old_name):
    """AG@7.0.4 cloudify_agent/api/utils.py generate_new_agent_name."""
    suffix = str(uuid.uuid4())
    base = old_name
    if len(old_name) > len(suffix):
        try:
            uuid.UUID(old_name[-len(suffix):])
            base = old_name[:-len(suffix)].rstrip('_')
        except ValueError:
            base = old_name
    return '{0}_{1}'.format(base, suffix)


def install_new_agents_work(engine, ex, fail_rule):
    """behaviour §5.3, §12.6 (see the module docstring)."""
    mgr = engine.mgr
    store = mgr.store
    params = ex.get('parameters') or {}
    tenant, did = ex['tenant_name'], ex['deployment_id']
    validate = params.get('validate', True) not in (False, 'false', 'False')
    install = params.get('install', True) not in (False, 'false', 'False')
    stop_old = params.get('stop_old_agent') in (True, 'true', 'True')
    yield WORK_STEP
    with store.lock:
        hosts = _hosts(mgr, tenant, did, params)
        agents = {ni['id']: datamod.current_agent(store, tenant, ni['id']) for ni in hosts}
    if validate:
        for ni in hosts:
            agent = agents.get(ni['id'])
            if agent is None or not mgr.broker_alive(agent['broker']):
                where = (agent or {}).get('broker') or {}
                raise WorkflowFailed(
                    'validate_amqp failed for {0}: cannot connect to the old broker at '
                    '{1}:{2}'.format(ni['id'], where.get('ip'), where.get('port')))
            with store.lock:
                ni['_agent_status'] = True
    failed = []
    wanted_fail = None
    if fail_rule is not None:
        wanted_fail = set(fail_rule.node_instance_ids or [ni['id'] for ni in hosts])
    if install:
        for ni in hosts:
            agent = agents.get(ni['id'])
            if agent is None:
                failed.append("{0}: NonRecoverableError: cloudify_agent key not available "
                              "in runtime_properties".format(ni['id']))
                continue
            if not ni.get('_agent_status'):
                failed.append('{0}: NonRecoverableError: agent_status key not available in '
                              'runtime_properties, validation needs to be performed before '
                              'new agent installation'.format(ni['id']))
                continue
            if wanted_fail is not None and ni['id'] in wanted_fail:
                failed.append('{0}: {1}'.format(ni['id'], fail_rule.error))
                continue
            if mgr.faults.take_agent_stay(tenant, ni['id']):
                continue
            with store.lock:
                new = dict(agent)
                new.update(id=new_agent_name(agent['id']), state='started',
                           version=mgr.broker['manager_version'],
                           broker={'ip': mgr.broker['ip'], 'port': mgr.broker['port']},
                           created_at=datamod.ts(), created_by=ex['created_by'],
                           installs=agent.get('installs', 0) + 1, current=True,
                           process='running')
                new['rabbitmq_exchange'] = new['id']
                agent.update(current=False, state='upgraded')
                if stop_old:
                    agent['state'] = 'stopped'
                store.put('agents', new)
            if stop_old:
                _stop_old_process(mgr, agent)
    with store.lock:
        key = (tenant, did)
        store.agent_installs[key] = store.agent_installs.get(key, 0) + 1
    yield WORK_STEP
    if failed:
        raise WorkflowFailed('install_new_agents failed for: ' + '; '.join(failed))


register_work('install_new_agents', install_new_agents_work)


def after_restore(mgr, snapshot, new_format):
    """After a legacy restore (MGR@7.0.4 snapshots/agents.py): the results of the old
    manager's agent validation are dropped from every host ("Might be incorrect for new
    manager"); snapshots older than 4.5.5 have no agents table, so the restore creates a row
    per agent (install method not 'none') with state 'restored' (insert_agent_to_db); newer
    ones bring their rows as they were.  `snapshot`: rules.SnapshotRules; the 7.0 new route
    (`new_format`) restores agents as entities and skips this."""
    if new_format:
        return
    rules = mgr.rules
    for ni in mgr.store.all('node_instances'):
        ni.pop('_agent_status', None)
    if not rules.has_agents_table or snapshot.has_agents_table:
        return
    for agent in mgr.store.all('agents'):
        if datamod.is_current_agent(agent) and install_method(agent) != 'none':
            agent['state'] = 'restored'


RESTORE_HOOKS.append(after_restore)


def set_install_method(mgr, deployment_id, method, tenant='default_tenant',
                       node_instance_ids=None):
    """Test helper: the hosts of a deployment were installed with `method` (the blueprint's
    agent_config.install_method); 'none' hosts have no agent at all."""
    if method not in METHODS:
        raise ValueError('install method must be one of {0}'.format(', '.join(METHODS)))
    store = mgr.store
    with store.lock:
        hosts = [ni for ni in store.all('node_instances')
                 if ni['tenant_name'] == tenant and ni['deployment_id'] == deployment_id
                 and ni['id'] == ni['host_id']
                 and (node_instance_ids is None or ni['id'] in node_instance_ids)]
        if not hosts:
            raise ValueError('no host node instance in {0}/{1}'.format(tenant, deployment_id))
        for ni in hosts:
            ni['_install_method'] = method
            agent = datamod.current_agent(store, tenant, ni['id'])
            if agent is None:
                continue
            if method == 'none':
                store.delete('agents', agent)
            else:
                agent['install_method'] = method
    return [ni['id'] for ni in hosts]
