"""The simulated manager's database: tenants, users, tenant-scoped resources, tokens; the
seeded data sets (``empty``, ``demo``, ``large``); per-version presentation of records.

Records are plain dicts holding every field of the newest version; :func:`present` picks the
fields a given version marshals (rules.Rules).  The whole store is guarded by one RLock.
"""
import copy
import datetime
import hashlib
import threading

KINDS = ('blueprints', 'deployments', 'nodes', 'node_instances', 'executions', 'secrets',
         'plugins', 'sites', 'agents', 'snapshots',
         # issue 15: what a restore must carry as well (reconcile_data.py, plugins.py,
         # schedules.py own them)
         'plugins_updates', 'execution_schedules', 'deployment_groups',
         'deployments_filters', 'blueprints_filters', 'user_groups')

# URL resource name -> store kind
URL_KINDS = {'blueprints': 'blueprints', 'deployments': 'deployments', 'nodes': 'nodes',
             'node-instances': 'node_instances', 'executions': 'executions',
             'secrets': 'secrets', 'plugins': 'plugins', 'sites': 'sites', 'agents': 'agents',
             'snapshots': 'snapshots'}

# behaviour §4 '_get_all_results' row: 4.4+ on these lists; MGR@5.1.0+ _paginate honours it for
# every list using it (README: we apply it to every list from 5.1).
GET_ALL_RESULTS_44 = ('blueprints', 'deployments', 'executions', 'nodes', 'secrets', 'tenants')

ACTIVE_STATES = ('pending', 'started', 'cancelling', 'force_cancelling', 'kill_cancelling',
                 'queued')
END_STATES = ('terminated', 'failed', 'cancelled')
SYSTEM_WORKFLOWS = ('create_snapshot', 'restore_snapshot', 'install_plugin',
                    'uninstall_plugin')

BASE_TIME = datetime.datetime(2024, 1, 15, 8, 0, 0)


def ts(moment=None):
    """Timestamps look like "2026-11-26T11:14:58.115Z" (observed-7.0 §5 'Snapshot')."""
    moment = moment or datetime.datetime.utcnow()
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '{0:03d}Z'.format(moment.microsecond // 1000)


def past(seconds):
    return ts(BASE_TIME + datetime.timedelta(seconds=seconds))


def hash_password(salt, password):
    """Stand-in for flask-security's pbkdf2_sha256 keyed by rest-security hash_salt
    (behaviour §7.2 'What each key does'): a different salt means the hash no longer matches."""
    return hashlib.sha256('{0}\0{1}'.format(salt or '', password).encode('utf-8')).hexdigest()


# ----------------------------------------------------------------------------------------
# fields per kind and version
# ----------------------------------------------------------------------------------------
_BASE_FIELDS = {
    'blueprints': ('id', 'description', 'main_file_name', 'created_at', 'updated_at', 'plan'),
    'deployments': ('id', 'blueprint_id', 'description', 'created_at', 'updated_at', 'inputs',
                    'outputs', 'workflows', 'policy_types', 'policy_triggers', 'groups',
                    'scaling_groups'),
    'nodes': ('id', 'deployment_id', 'blueprint_id', 'type', 'type_hierarchy',
              'number_of_instances', 'planned_number_of_instances',
              'deploy_number_of_instances', 'host_id', 'properties', 'relationships',
              'plugins'),
    'node_instances': ('id', 'node_id', 'deployment_id', 'host_id', 'state',
                       'runtime_properties', 'relationships', 'version', 'scaling_groups'),
    'secrets': ('key', 'created_at', 'updated_at'),
    'sites': ('name', 'location', 'created_at'),
}


def fields_for(kind, rules):
    """The fields a version marshals (and accepts in _include/_sort/filters)."""
    if kind == 'executions':
        return rules.execution_fields()
    if kind == 'snapshots':
        return rules.snapshot_fields()
    if kind == 'agents':
        return rules.agent_fields
    if kind in _RULE_FIELDS:
        return getattr(rules, _RULE_FIELDS[kind])()
    fields = _BASE_FIELDS[kind] + rules.tenant_fields()
    if kind == 'deployments' and rules.has_deployment_labels:
        fields += ('labels', 'deployment_groups')        # MGR@5.2.0 Deployment
    if kind == 'blueprints' and rules.has_blueprint_labels:
        fields += ('labels',)                            # MGR@6.0.0 Blueprint
    if kind == 'deployments' and rules.has_sites:
        fields += ('site_name',)
    if kind == 'secrets' and rules.secret_hidden_value_field:
        fields += ('is_hidden_value',)
    return fields


_RULE_FIELDS = {'plugins': 'plugin_fields', 'plugins_updates': 'plugins_update_fields',
                'execution_schedules': 'execution_schedule_fields',
                'deployment_groups': 'deployment_group_fields',
                'deployments_filters': 'filter_fields', 'blueprints_filters': 'filter_fields'}


def id_field(kind):
    return {'secrets': 'key', 'sites': 'name', 'user_groups': 'name'}.get(kind, 'id')


def present(kind, rec, rules, include=None):
    """Marshal one record as `rules`' version does; `include` = the _include projection."""
    out = {}
    fields = include or fields_for(kind, rules)
    for name in fields:
        if name == 'private_resource':
            out[name] = rec.get('visibility') == 'private'
        elif name == 'resource_availability':
            out[name] = rec.get('visibility')
        elif name == 'status_display':
            out[name] = {'terminated': 'completed'}.get(rec.get('status'), rec.get('status'))
        elif name == 'parameters_p':
            out[name] = None
        elif name == 'runtime_properties' and kind == 'node_instances':
            out[name] = copy.deepcopy(rec.get(name) or {})
        elif name == 'labels' and kind in ('deployments', 'blueprints', 'deployment_groups'):
            out[name] = label_view(rec.get(name), rules)
        else:
            value = rec.get(name)
            out[name] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return out


def label_view(labels, rules):
    """Labels as the version marshals them: key, value, created_at and creator_id (5.2-6.4)
    or created_by (7.0) (MGR@5.2.0 / 7.0.0 rest/responses.py Label)."""
    author = rules.label_author_field
    return [{'key': lab['key'], 'value': lab['value'], 'created_at': lab.get('created_at'),
             author: lab.get(author)} for lab in labels or []]


# ----------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------
class Store:
    """The manager's DB.  `res[kind]` maps (tenant, id) -> record, in insertion order."""

    def __init__(self):
        self.lock = threading.RLock()
        self.tenants = {}          # name -> {'name', 'rabbitmq_*'}
        self.users = {}            # username -> user dict (id 0 = bootstrap admin)
        self.res = {kind: {} for kind in KINDS}
        self.tokens = {}           # 7.0 token id -> {'secret', 'username', ...}
        self.config = {}           # config table (scope, name) -> row, never restored (ldap.py)
        self.ldap_ca = None        # the LDAP CA certificate (5.2+: certificates row)
        self.events = []
        self.agent_installs = {}   # (tenant, deployment_id) -> count of install_new_agents

    # -- resources -----------------------------------------------------------------------
    @staticmethod
    def key(kind, rec):
        key = (rec.get('tenant_name') or 'default_tenant', rec[id_field(kind)])
        if kind == 'nodes':
            key = (key[0], rec['deployment_id'] + '/' + rec['id'])
        elif kind == 'execution_schedules':       # unique per deployment (MGR@6.0.0+)
            key = (key[0], rec['id'] + '@' + rec['deployment_id'])
        return key

    def put(self, kind, rec):
        self.res[kind][self.key(kind, rec)] = rec
        return rec

    def delete(self, kind, rec):
        for key, value in list(self.res[kind].items()):
            if value is rec:
                del self.res[kind][key]

    def all(self, kind):
        return list(self.res[kind].values())

    def find(self, kind, rid, tenants=None):
        """Records of `kind` whose id is `rid`, optionally restricted to tenant names."""
        idf = id_field(kind)
        return [r for r in self.res[kind].values()
                if r.get(idf) == rid and (tenants is None or r.get('tenant_name') in tenants
                                          or r.get('visibility') == 'global')]

    def admin(self):
        for user in self.users.values():
            if user['id'] == 0:
                return user
        return None

    def user_by_id(self, uid):
        for user in self.users.values():
            if user['id'] == uid:
                return user
        return None

    # -- dump / load (the snapshot's own data file) ----------------------------------------
    def dump(self):
        with self.lock:
            return {
                'tenants': copy.deepcopy(self.tenants),
                'users': copy.deepcopy(self.users),
                'resources': {kind: [copy.deepcopy(r) for r in self.res[kind].values()]
                              for kind in KINDS},
                'agent_installs': [[t, d, n] for (t, d), n in self.agent_installs.items()],
            }

    def load(self, data, keep_admin=None, into_tenant=None, keep=None):
        """Replace the data by a snapshot's.  keep_admin: the target's admin row to keep
        (behaviour §3.8); into_tenant: a 3.x snapshot's data goes into this tenant (behaviour §3.6
        item 3); keep: execution records to keep (the running restore execution)."""
        with self.lock:
            if into_tenant is None:
                self.tenants = copy.deepcopy(data.get('tenants') or {})
                if not self.tenants:
                    self.tenants = {'default_tenant': new_tenant('default_tenant')}
                users = copy.deepcopy(data.get('users') or {})
                if keep_admin is not None:
                    users = {n: u for n, u in users.items() if u['id'] != 0}
                    users[keep_admin['username']] = keep_admin
                self.users = users
                self.res = {kind: {} for kind in KINDS}
                self.tokens = {}
            else:
                for kind in KINDS:
                    for key in [k for k in self.res[kind] if k[0] == into_tenant]:
                        del self.res[kind][key]
            for kind in KINDS:
                for rec in (data.get('resources') or {}).get(kind, []):
                    rec = copy.deepcopy(rec)
                    if into_tenant is not None:
                        rec['tenant_name'] = into_tenant
                        rec.setdefault('visibility', 'tenant')
                        rec.setdefault('created_by', 'admin')
                    self.put(kind, rec)
            for rec in keep or ():
                self.put('executions', rec)
            self.agent_installs = {}

    def restore_entities(self, entities, skip_users=(), types=KINDS):
        """The 7.0 new route (behaviour §12.1): create what a scanned new-format zip holds
        (archive.read 'entities'), tenants, user groups and users first, then each tenant's
        entities by type; an entity that already exists is skipped (COMMON@7.0.4 `restore`
        methods log the client error and go on); users named in `skip_users` are never created
        (COMMON@7.0.4 users.py `restore` skips admin).  Returns the number created."""
        created = 0
        with self.lock:
            mgmt = entities.get('mgmt') or {}
            for tenant in mgmt.get('tenants', []):
                if tenant.get('name') and tenant['name'] not in self.tenants:
                    self.tenants[tenant['name']] = copy.deepcopy(tenant)
                    created += 1
            for group in mgmt.get('user_groups', []):     # COMMON@7.0.4 user_groups.py
                if group.get('name') and self.key('user_groups', group) not in \
                        self.res['user_groups']:
                    self.put('user_groups', copy.deepcopy(group))
                    created += 1
            for user in mgmt.get('users', []):
                name = user.get('username')
                if not name or name in skip_users or name in self.users:
                    continue
                user = copy.deepcopy(user)
                user['id'] = max([u['id'] for u in self.users.values()] + [0]) + 1
                self.users[name] = user
                created += 1
            for tenant, by_type in (entities.get('tenants') or {}).items():
                if tenant not in self.tenants:
                    continue
                for kind in types:
                    for rec in by_type.get(kind, []):
                        rec = copy.deepcopy(rec)
                        rec['tenant_name'] = tenant
                        if self.key(kind, rec) in self.res[kind]:
                            continue
                        self.put(kind, rec)
                        created += 1
        return created


def new_tenant(name):
    return {'name': name, 'rabbitmq_username': 'rabbitmq_user_' + name,
            'rabbitmq_password': None, 'rabbitmq_vhost': 'rabbitmq_vhost_' + name}


def new_user(uid, username, password_hash, role, tenant_roles, created_at=None):
    return {'id': uid, 'username': username, 'password_hash': password_hash, 'role': role,
            'tenant_roles': dict(tenant_roles), 'active': True,
            'created_at': created_at or past(0), 'first_login_at': None,
            'last_login_at': None, 'api_token_key': hashlib.sha1(
                username.encode('utf-8')).hexdigest()[:16]}


# ----------------------------------------------------------------------------------------
# seeding
# ----------------------------------------------------------------------------------------
class Seeder:
    """Builds data sets deterministically (no randomness, fixed timestamps)."""

    def __init__(self, store, rules, broker, salt, network='default'):
        self.store = store
        self.rules = rules
        self.broker = broker          # {'ip', 'port', 'manager_version'}
        self.salt = salt
        self.network = network
        self.clock = 0
        self.exec_seq = 0

    def tick(self, seconds=7):
        self.clock += seconds
        return past(self.clock)

    def tenant(self, name):
        self.store.tenants[name] = new_tenant(name)

    def user(self, uid, username, password, role, tenant_roles):
        self.store.users[username] = new_user(
            uid, username, hash_password(self.salt, password), role, tenant_roles,
            created_at=self.tick())

    def blueprint(self, tenant, bid, description='', creator='admin', visibility='tenant'):
        created = self.tick()
        return self.store.put('blueprints', {
            'id': bid, 'description': description, 'main_file_name': 'blueprint.yaml',
            'created_at': created, 'updated_at': created, 'plan': {}, 'labels': [],
            'tenant_name': tenant, 'created_by': creator, 'visibility': visibility})

    def deployment(self, tenant, did, bid, hosts, extra_nodes=(), auto_heal=False,
                   host_state='started', instances_per_host=1, creator='admin', site=None,
                   executions=True, network=None):
        """A deployment with Compute `hosts` (node names) and contained nodes."""
        created = self.tick()
        groups, policy_types, policy_triggers = {}, {}, {}
        if auto_heal:
            # behaviour §7.4: groups.<g>.policies of type host_failure + execute_workflow heal
            groups = {'autoheal_group': {'members': list(hosts), 'policies': {
                'host_failure': {
                    'type': 'cloudify.policies.types.host_failure',
                    'properties': {'policy_operating_mode': 'host_failure'},
                    'triggers': {'heal': {
                        'type': 'cloudify.policies.triggers.execute_workflow',
                        'parameters': {'workflow': 'heal', 'workflow_parameters': {
                            'node_instance_id': {'get_property': ['SELF', 'node_id']},
                            'diagnose_value': {'get_property': ['SELF', 'diagnose']}},
                            'force': False, 'allow_custom_parameters': False,
                            'socket_timeout': 1000, 'conn_timeout': 1000}}}}}}}
            policy_types = {'cloudify.policies.types.host_failure': {
                'source': 'riemann_config/host_failure.clj', 'properties': {}}}
            policy_triggers = {'cloudify.policies.triggers.execute_workflow': {
                'source': 'riemann_config/execute_workflow.clj', 'parameters': {}}}
        dep = self.store.put('deployments', {
            'id': did, 'blueprint_id': bid, 'description': None, 'created_at': created,
            'updated_at': created, 'inputs': {}, 'outputs': {},
            'workflows': workflows_of(self.rules),
            'labels': [], 'deployment_groups': [],
            'policy_types': policy_types, 'policy_triggers': policy_triggers,
            'groups': groups, 'scaling_groups': {}, 'site_name': site,
            'tenant_name': tenant, 'created_by': creator, 'visibility': 'tenant'})
        seq = 0
        for host in hosts:
            self.node(tenant, did, bid, host, 'cloudify.nodes.Compute', host_id=host,
                      count=instances_per_host, creator=creator)
            for _ in range(instances_per_host):
                seq += 1
                nid = '{0}_{1}'.format(host, _suffix(did, seq))
                self.node_instance(tenant, did, host, nid, nid, host_state, creator)
                if host_state == 'started':
                    self.agent(tenant, did, host, nid, creator, network or self.network)
                for node_name in extra_nodes:
                    seq += 1
                    cid = '{0}_{1}'.format(node_name, _suffix(did, seq))
                    self.node_instance(tenant, did, node_name, cid, nid, host_state, creator)
        for node_name in extra_nodes:
            self.node(tenant, did, bid, node_name, 'cloudify.nodes.WebServer',
                      host_id=hosts[0] if hosts else None, count=instances_per_host,
                      creator=creator)
        if executions:
            if self.rules.create_deployment_environment_execution:
                self.execution(tenant, 'create_deployment_environment', did, bid,
                               creator=creator)
            self.execution(tenant, 'install', did, bid, creator=creator,
                           status='terminated' if host_state == 'started' else 'failed')
        return dep

    def node(self, tenant, did, bid, name, ntype, host_id, count, creator):
        hierarchy = ['cloudify.nodes.Root', ntype]
        self.store.put('nodes', {
            'id': name, 'deployment_id': did, 'blueprint_id': bid, 'type': ntype,
            'type_hierarchy': hierarchy, 'number_of_instances': count,
            'planned_number_of_instances': count, 'deploy_number_of_instances': count,
            'host_id': host_id, 'properties': {}, 'relationships': [], 'plugins': [],
            'tenant_name': tenant, 'created_by': creator, 'visibility': 'tenant'})

    def node_instance(self, tenant, did, node_id, nid, host_id, state, creator):
        self.store.put('node_instances', {
            'id': nid, 'node_id': node_id, 'deployment_id': did, 'host_id': host_id,
            'state': state, 'runtime_properties': {}, 'relationships': [], 'version': 1,
            'scaling_groups': [], 'tenant_name': tenant, 'created_by': creator,
            'visibility': 'tenant'})

    def agent(self, tenant, did, node_name, nid, creator, network):
        ip = '10.0.{0}.{1}'.format(len(self.store.res['agents']) // 250 % 250,
                                   len(self.store.res['agents']) % 250 + 2)
        self.store.put('agents', new_agent(tenant, did, node_name, nid, ip, creator, network,
                                           self.broker, self.tick(1)))

    def execution(self, tenant, workflow_id, did=None, bid=None, creator='admin',
                  status='terminated', parameters=None, error=''):
        self.exec_seq += 1
        created = self.tick(3)
        rec = new_execution(
            'seed-{0:06d}-{1}'.format(self.exec_seq, _suffix(tenant, self.exec_seq)),
            workflow_id, tenant, creator, did, bid, parameters or {}, created)
        rec['status'] = status
        rec['started_at'] = created
        rec['ended_at'] = created if status in END_STATES else None
        rec['error'] = error if status != 'failed' else (error or 'Workflow failed')
        return self.store.put('executions', rec)

    def secret(self, tenant, key, creator='admin'):
        created = self.tick()
        self.store.put('secrets', {
            'key': key, 'value': 'sim-secret-value', 'created_at': created,
            'updated_at': created, 'is_hidden_value': False, 'tenant_name': tenant,
            'created_by': creator, 'visibility': 'tenant'})

    def plugin(self, tenant, pid, name, version, visibility='global', py=None):
        """A plugin built for `py` (default: this manager's Python, behaviour §12.4)."""
        from tests.simulator import plugins
        return plugins.seed_plugin(self, tenant, pid, name, version, visibility, py)

    def site(self, tenant, name, location):
        self.store.put('sites', {'name': name, 'location': location,
                                 'created_at': self.tick(), 'tenant_name': tenant,
                                 'created_by': 'admin', 'visibility': 'tenant'})


def workflows_of(rules):
    """A deployment's workflows as the types of `rules`' version declare install_new_agents
    (MGR@4.2..7.0.4 types.yaml): the declaration stays with the deployment through a restore, and
    POST /executions checks custom parameters against it (MGR@7.0.4 resource_models.py
    Execution.merge_workflow_parameters)."""
    declared = {'install_new_agents': rules.install_new_agents_params}
    return [{'name': w, 'created_at': None,
             'parameters': {k: {'default': v} for k, v in declared.get(w, {}).items()}}
            for w in ('install', 'uninstall', 'heal', 'scale', 'install_new_agents',
                      'execute_operation')]


def _suffix(text, seq):
    return hashlib.sha1('{0}/{1}'.format(text, seq).encode('utf-8')).hexdigest()[:6]


def new_agent(tenant, did, node_name, nid, ip, creator, network, broker, created):
    """An agent record (observed-7.0 §5 'Agent (list)' fields) + the broker it talks to (behaviour
    §7.6: agents keep talking to the broker in their broker_config)."""
    return {
        'id': nid, 'host_id': nid, 'node_instance_id': nid, 'ip': ip,
        'install_method': 'remote', 'system': 'centos core',
        'version': broker['manager_version'], 'node': node_name, 'deployment': did,
        'tenant_name': tenant, 'created_at': created, 'rabbitmq_exchange': nid,
        'created_by': creator, 'rabbitmq_username': 'rabbitmq_user_' + tenant,
        'visibility': 'tenant', 'rabbitmq_password': 'sim-broker-password',
        'state': 'started', 'network': network,
        'broker': {'ip': broker['ip'], 'port': broker['port']},
        # simulator-only: the agent the node instance's runtime properties name (a move
        # adds a row, AG@7.0.4 operations.py / agents.py), and whether its process runs
        'current': True, 'process': 'running',
    }


def current_agent(store, tenant, node_instance_id):
    """The agent a host node instance's runtime_properties.cloudify_agent names (the row
    added by the last install_new_agents, or the original one)."""
    found = None
    for agent in store.res['agents'].values():
        if agent.get('node_instance_id') == node_instance_id and \
                agent.get('tenant_name') == tenant and agent.get('current', True):
            found = agent
    return found


def is_current_agent(agent):
    return agent.get('current', True)


def agent_runtime_properties(agent):
    """The node instance's runtime_properties.cloudify_agent (behaviour §5.3: broker_config)."""
    return {'cloudify_agent': {
        'name': agent['id'], 'ip': agent['ip'], 'queue': agent['id'],
        'version': agent['version'], 'network': agent.get('network', 'default'),
        'install_method': agent['install_method'],
        'broker_config': {'broker_ip': agent['broker']['ip'],
                          'broker_port': agent['broker']['port'],
                          'broker_user': agent['rabbitmq_username'],
                          'broker_pass': agent['rabbitmq_password'],
                          'broker_vhost': 'rabbitmq_vhost_' + agent['tenant_name'],
                          'broker_ssl_enabled': True}}}


def new_execution(eid, workflow_id, tenant, creator, did=None, bid=None, parameters=None,
                  created=None, is_system=None):
    return {
        'id': eid, 'workflow_id': workflow_id, 'status': 'pending',
        'deployment_id': did, 'blueprint_id': bid, 'parameters': parameters or {},
        'is_system_workflow': (workflow_id in SYSTEM_WORKFLOWS) if is_system is None
        else is_system,
        'created_at': created or ts(), 'started_at': None, 'ended_at': None,
        'error': None, 'scheduled_for': None, 'is_dry_run': False, 'resume': False,
        'total_operations': 0, 'finished_operations': 0, 'allow_custom_parameters': False,
        'deployment_display_name': did, 'tenant_name': tenant, 'created_by': creator,
        'visibility': 'tenant' if did is None else 'tenant',
    }


DATA_SETS = ('empty', 'demo', 'large', 'scale')

# Passwords of the seeded non-admin users (premium only), for tests.
DEMO_USERS = {'alice': ('alice-Pa55', 'default', {'default_tenant': 'user'}),
              'bob': ('bob-Pa55', 'default', {'t_prod': 'manager', 'default_tenant': 'viewer'})}


def seed(store, rules, name, admin_password, broker, salt, network='default'):
    """Fill `store` with data set `name` for a manager following `rules`."""
    if name not in DATA_SETS:
        raise ValueError('unknown data set {0!r}; choose one of {1}'.format(
            name, ', '.join(DATA_SETS)))
    s = Seeder(store, rules, broker, salt, network)
    s.tenant('default_tenant')
    admin_role = 'sys_admin' if rules.roles_42 else 'admin'
    s.user(0, 'admin', admin_password, admin_role, {'default_tenant': 'user'})
    _seed_install(s)
    if name == 'empty':
        return s
    premium = rules.edition == 'premium' and rules.has_tenants
    if name == 'demo':
        _seed_demo(s, rules, premium)
        _seed_demo_more(s, premium)
    elif name == 'scale':
        from tests.simulator import scale
        scale.seed(s, premium)
    else:
        _seed_large(s, rules, premium)
    return s


def _seed_install(s):
    """What every fresh install holds: the config table (5.0+), the system deployment
    filters (6.0+) (ldap.py, reconcile_data.py)."""
    from tests.simulator import ldap, reconcile_data
    ldap.seed_config(s.store, s.rules)
    reconcile_data.seed_system_filters(s)


def _seed_demo_more(s, premium):
    """The demo's plugins in blueprint plans, execution schedules, labels, groups,
    filters, user groups, secrets of every visibility (issue 15; plugins.py, schedules.py,
    reconcile_data.py), where the version has them."""
    from tests.simulator import plugins, reconcile_data, schedules
    plugins.seed_demo(s, premium)
    reconcile_data.seed_demo(s, premium)
    schedules.seed_demo(s, premium)


def _seed_demo(s, rules, premium):
    tenants = ['default_tenant'] + (['t_prod'] if premium else [])
    if premium:
        s.tenant('t_prod')
        user_role = 'default' if rules.roles_42 else 'user'
        for username, (password, _, troles) in DEMO_USERS.items():
            troles = {t: r for t, r in troles.items() if t in s.store.tenants}
            s.user(len(s.store.users), username, password, user_role, troles)
    s.plugin('default_tenant', 'plugin-openstack-2-14-7', 'cloudify-openstack-plugin',
             '2.14.7')
    for tenant in tenants:
        s.secret(tenant, 'db_password')
        s.secret(tenant, 'ssh_private_key')
        if rules.has_sites and tenant == 'default_tenant':
            s.site(tenant, 'london', '51.5074, -0.1278')
    s.blueprint('default_tenant', 'hello-world', 'A web server on one VM')
    s.blueprint('default_tenant', 'web-app', 'Web tier + DB tier')
    s.deployment('default_tenant', 'hw-1', 'hello-world', ['vm'], ['http_web_server'],
                 site='london' if rules.has_sites else None)
    s.deployment('default_tenant', 'web-1', 'web-app', ['web_host', 'db_host'],
                 ['nginx'], auto_heal=True)
    # a deployment whose Compute never started: `cfy agents install` skips it (behaviour §5.2)
    s.deployment('default_tenant', 'draft-1', 'hello-world', ['vm'], [],
                 host_state='uninitialized')
    s.execution('default_tenant', 'heal', 'web-1', 'web-app',
                parameters={'node_instance_id': 'x', 'diagnose_value': 'Not provided'},
                status='failed', error='heal failed: host unreachable')
    if premium:
        s.blueprint('t_prod', 'web-app', 'Web tier + DB tier', creator='bob')
        s.deployment('t_prod', 'prod-web', 'web-app', ['web_host'], ['nginx'],
                     auto_heal=True, instances_per_host=2, creator='bob')
        s.deployment('t_prod', 'prod-db', 'web-app', ['db_host'], [], creator='bob')


def _seed_large(s, rules, premium):
    """Thousands of executions over many tenants (issue 3 item 3), deterministic."""
    tenants = ['default_tenant']
    if premium:
        tenants += ['tenant_{0:02d}'.format(i) for i in range(1, 50)]
        for tenant in tenants[1:]:
            s.tenant(tenant)
    s.blueprint('default_tenant', 'bp-large', 'scale test blueprint')
    # > 1000 deployments / node instances in default_tenant: pagination limits (behaviour §4, §5.2)
    for i in range(1050):
        s.deployment('default_tenant', 'dep-{0:04d}'.format(i), 'bp-large', ['vm'], [],
                     executions=False)
    workflows = ('install', 'uninstall', 'heal', 'scale', 'execute_operation')
    for i in range(2600):
        did = 'dep-{0:04d}'.format(i % 1050)
        s.execution('default_tenant', workflows[i % len(workflows)], did, 'bp-large',
                    status='failed' if i % 17 == 0 else 'terminated')
    for tenant in tenants[1:]:
        s.blueprint(tenant, 'bp-small')
        for j in range(2):
            did = '{0}-dep-{1}'.format(tenant, j)
            s.deployment(tenant, did, 'bp-small', ['vm'], [], executions=False)
            for k in range(10):
                s.execution(tenant, workflows[k % len(workflows)], did, 'bp-small')
        s.secret(tenant, 'key_' + tenant)
