"""The ``scale`` data set: 10,000 deployments and 20,000 node instances over 50 tenants
(issue 15 item 7, for the benchmark), built lazily so that starting a manager stays
instant: the records are generated the first time anything reads the store's resources
(a few tenths of a second), not at start-up.

Per tenant (``default_tenant`` and ``tenant_01`` .. ``tenant_49``; community: everything in
``default_tenant``): one blueprint ``bp-scale`` and 200 deployments ``<tenant>-dep-NNNN``,
each with a Compute node ``vm`` (one started instance, one agent talking to this manager's
broker) and a contained node ``app`` (one instance), and one terminated ``install``
execution; two secrets per tenant.  Deterministic: ids and timestamps depend on nothing but
the counters.

``fill(mgr, tenants=2, deployments=1000)`` puts a smaller data set of the same shape into a
running manager (``data='empty'``): the tests' version of the benchmark.
"""
import threading

from tests.simulator import data as datamod

TENANTS = 50
DEPLOYMENTS = 10000
PER_TENANT = DEPLOYMENTS // TENANTS


class LazyResources(dict):
    """``Store.res`` whose content is generated on first access (``generate(store)`` fills
    the per-kind dicts already present)."""

    def __init__(self, initial, store, generate):
        super().__init__(initial)
        self._store = store
        self._generate = generate
        self._done = False
        self._lock = threading.Lock()

    def _materialize(self):
        if self._done:
            return
        with self._lock:
            if self._done:
                return
            self._done = True
            self._generate(self._store, self)

    def __getitem__(self, kind):
        self._materialize()
        return super().__getitem__(kind)

    def get(self, kind, default=None):
        self._materialize()
        return super().get(kind, default)

    def values(self):
        self._materialize()
        return super().values()

    def items(self):
        self._materialize()
        return super().items()


def tenant_names(premium):
    if not premium:
        return ['default_tenant']
    return ['default_tenant'] + ['tenant_{0:02d}'.format(i) for i in range(1, TENANTS)]


def seed(seeder, premium):
    """Register the tenants now and the resources for later."""
    store, rules = seeder.store, seeder.rules
    tenants = tenant_names(premium)
    for tenant in tenants[1:]:
        seeder.tenant(tenant)
    broker = dict(seeder.broker)
    network = seeder.network

    def generate(store_, res):
        _generate(store_, res, rules, tenants, broker, network)
    store.res = LazyResources(store.res, store, generate)


def fill(mgr, tenants=2, deployments=1000):
    """The same shape, ``deployments`` spread over ``tenants`` (premium; community: all in
    default_tenant), written into the running manager ``mgr`` at once."""
    premium = mgr.rules.edition == 'premium' and mgr.rules.has_tenants
    names = tenant_names(premium)[:tenants] if premium else ['default_tenant']
    with mgr.store.lock:
        for tenant in names:
            if tenant not in mgr.store.tenants:
                mgr.store.tenants[tenant] = datamod.new_tenant(tenant)
        _generate(mgr.store, mgr.store.res, mgr.rules, names, dict(mgr.broker), 'default',
                  deployments=deployments)


def _generate(store, res, rules, tenants, broker, network, deployments=DEPLOYMENTS):
    workflows = datamod.workflows_of(rules)          # shared, never mutated
    per_tenant = deployments // len(tenants)
    labels = rules.has_deployment_labels
    seq = 0
    for t_index, tenant in enumerate(tenants):
        base = datamod.past(t_index)
        res['blueprints'][(tenant, 'bp-scale')] = {
            'id': 'bp-scale', 'description': 'scale test blueprint',
            'main_file_name': 'blueprint.yaml', 'created_at': base, 'updated_at': base,
            'plan': {}, 'labels': [], 'tenant_name': tenant, 'created_by': 'admin',
            'visibility': 'tenant'}
        for key in ('db_password', 'api_token'):
            res['secrets'][(tenant, key)] = {
                'key': key, 'value': 'sim-secret-value', 'created_at': base,
                'updated_at': base, 'is_hidden_value': False, 'tenant_name': tenant,
                'created_by': 'admin', 'visibility': 'tenant'}
        for d_index in range(per_tenant):
            seq += 1
            did = '{0}-dep-{1:04d}'.format(tenant, d_index)
            created = datamod.past(100 + seq)
            common = {'tenant_name': tenant, 'created_by': 'admin', 'visibility': 'tenant'}
            res['deployments'][(tenant, did)] = dict(
                common, id=did, blueprint_id='bp-scale', description=None,
                created_at=created, updated_at=created, inputs={}, outputs={},
                workflows=workflows, policy_types={}, policy_triggers={}, groups={},
                scaling_groups={}, site_name=None, labels=[] if labels else None,
                deployment_groups=[])
            host = 'vm_{0:06x}'.format(seq)
            app = 'app_{0:06x}'.format(seq)
            for name, ntype, host_id in (('vm', 'cloudify.nodes.Compute', 'vm'),
                                         ('app', 'cloudify.nodes.WebServer', 'vm')):
                res['nodes'][(tenant, did + '/' + name)] = dict(
                    common, id=name, deployment_id=did, blueprint_id='bp-scale', type=ntype,
                    type_hierarchy=['cloudify.nodes.Root', ntype], number_of_instances=1,
                    planned_number_of_instances=1, deploy_number_of_instances=1,
                    host_id=host_id, properties={}, relationships=[], plugins=[])
            for nid, node in ((host, 'vm'), (app, 'app')):
                res['node_instances'][(tenant, nid)] = dict(
                    common, id=nid, node_id=node, deployment_id=did, host_id=host,
                    state='started', runtime_properties={}, relationships=[], version=1,
                    scaling_groups=[])
            res['agents'][(tenant, host)] = datamod.new_agent(
                tenant, did, 'vm', host, '10.{0}.{1}.{2}'.format(
                    t_index, seq // 250 % 250, seq % 250 + 2), 'admin', network, broker,
                created)
            eid = 'scale-{0:06d}'.format(seq)
            ex = datamod.new_execution(eid, 'install', tenant, 'admin', did, 'bp-scale', {},
                                       created)
            ex.update(status='terminated', started_at=created, ended_at=created, error='')
            res['executions'][(tenant, eid)] = ex
