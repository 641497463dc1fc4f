"""What else a restore carries and a real manager lists (issue 15 item 6): deployment groups,
deployment and blueprint filters, deployment / blueprint labels, user groups, and secrets of
every visibility; their REST lists and the demo data set's share of them.  (Execution
schedules: schedules.py; tenant roles: the users' ``tenant_roles``, listed by
``GET /users?_get_data=true`` and ``GET /tenants?_get_data=true``.)

First versions (rules.py): deployment groups, filters (``filters``), deployment labels 5.2
(MGR migration 9d261e90b1f3_5_1_1_to_5_2, MGR@5.2.0 endpoint_mapper.py); 6.0 splits the
filters into ``filters/deployments`` and ``filters/blueprints`` and adds blueprint labels
(MGR@6.0.0); system deployment filters from 6.0 (create_system_filters); user groups in
premium 4.0+ (MGR@4.0 endpoint_mapper.py; the response class is closed premium code, fields
from MGR@7.0.4 management_models.py Group.to_response and COMMON@7.0.4 user_groups.py [U]);
global secrets 4.2+, secret visibility 4.3+ (behaviour §3.2).
"""
from tests.simulator import api as apimod
from tests.simulator import data as datamod
from tests.simulator.api import ApiError, route
from tests.simulator.workflows import RESTORE_HOOKS

apimod.MODEL_NAMES.update(deployment_groups='DeploymentGroup',
                          deployments_filters='DeploymentsFilter',
                          blueprints_filters='BlueprintsFilter', user_groups='Group')


# ----------------------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------------------
def label(key, value, created_at, creator):
    """A label row: both author fields kept, data.label_view shows the version's."""
    return {'key': key, 'value': value, 'created_at': created_at,
            'created_by': creator['username'], 'creator_id': creator['id']}


def filter_record(rules, fid, rules_list, tenant, creator, created_at, visibility='tenant',
                  system=False):
    """5.2: Filter value {'labels': {'equal': {key: [values]}}} (MGR@5.2.0 filters.py put);
    6.0+: FilterBase value = the filter rules (MGR@6.0.0 / 7.0.4)."""
    rec = {'id': fid, 'created_at': created_at, 'updated_at': created_at,
           'tenant_name': tenant, 'created_by': creator, 'visibility': visibility,
           'is_system_filter': system}
    if rules.filters_api == 'filters':
        equal = {}
        for rule in rules_list:
            if rule['type'] == 'label' and rule['operator'] == 'any_of':
                equal.setdefault(rule['key'], []).extend(rule['values'])
        rec['value'] = {'labels': {'equal': equal}}
        rec['labels_filters'] = ['{0}={1}'.format(k, v[0] if len(v) == 1 else
                                                  '[' + ','.join(v) + ']')
                                 for k, v in sorted(equal.items())]
    else:
        rec['value'] = [dict(r) for r in rules_list]
        rec['labels_filter_rules'] = [r for r in rec['value'] if r['type'] == 'label']
        rec['attrs_filter_rules'] = [r for r in rec['value'] if r['type'] == 'attribute']
    return rec


def seed_system_filters(seeder):
    """The deployment filters every 6.0+ install creates (MGR@6.0.0 / 6.4.0
    create_system_filters.py; MGR@7.0.4 configure_manager.py): global, is_system_filter."""
    rules, store = seeder.rules, seeder.store
    for fid in rules.system_filters:
        if fid == 'csys-environment-filter':
            value = [{'key': 'csys-obj-type', 'values': ['environment'],
                      'operator': 'any_of', 'type': 'label'},
                     {'key': 'csys-obj-parent', 'values': [], 'operator': 'is_null',
                      'type': 'label'}]
        elif fid == 'csys-service-filter':
            value = [{'key': 'csys-obj-type', 'values': ['environment'],
                      'operator': 'is_not', 'type': 'label'},
                     {'key': 'csys-obj-parent', 'values': [], 'operator': 'is_null',
                      'type': 'label'}]
        else:
            kind = fid[len('csys-'):-len('-filter')] if fid.startswith('csys-') else \
                fid[:-len('-deployments')]
            value = [{'key': 'obj-type', 'values': [kind], 'operator': 'any_of',
                      'type': 'label'}]
        store.put('deployments_filters', filter_record(
            rules, fid, value, 'default_tenant', 'admin', datamod.past(0),
            visibility='global', system=True))


def seed_demo(seeder, premium):
    """The demo data set's share (where the version has each kind)."""
    rules, store = seeder.rules, seeder.store
    admin = store.users['admin']
    if rules.has_deployment_labels:
        for tenant, did, labels in (('default_tenant', 'hw-1', (('env', 'dev'),
                                                                ('team', 'web'))),
                                    ('default_tenant', 'web-1', (('env', 'prod'),
                                                                 ('team', 'web'))),
                                    ('t_prod', 'prod-web', (('env', 'prod'),))):
            for dep in store.find('deployments', did, [tenant]):
                dep['labels'] = [label(k, v, seeder.tick(1), admin) for k, v in labels]
    if rules.has_blueprint_labels:
        for bp in store.find('blueprints', 'hello-world', ['default_tenant']):
            bp['labels'] = [label('tier', 'demo', seeder.tick(1), admin)]
    if rules.has_deployment_groups:
        members = [d for d in store.all('deployments')
                   if d['tenant_name'] == 'default_tenant' and d['id'] in ('hw-1', 'web-1')]
        group = {'id': 'web-group', 'description': 'the web deployments',
                 'default_inputs': {}, 'created_at': seeder.tick(),
                 'deployment_ids': sorted(d['id'] for d in members),
                 'default_blueprint_id': 'hello-world', 'creation_counter': 0,
                 'labels': [label('team', 'web', seeder.tick(1), admin)],
                 'tenant_name': 'default_tenant', 'created_by': 'admin',
                 'visibility': 'tenant'}
        store.put('deployment_groups', group)
        for dep in members:
            dep['deployment_groups'] = ['web-group']
    if rules.filters_api is not None:
        prod = [{'key': 'env', 'values': ['prod'], 'operator': 'any_of', 'type': 'label'}]
        store.put('deployments_filters', filter_record(
            rules, 'prod-deployments', prod, 'default_tenant', 'admin', seeder.tick()))
        if rules.filters_api == 'split':
            demo = [{'key': 'tier', 'values': ['demo'], 'operator': 'any_of',
                     'type': 'label'}]
            store.put('blueprints_filters', filter_record(
                rules, 'demo-blueprints', demo, 'default_tenant', 'admin', seeder.tick()))
    if rules.has_user_groups and premium:
        role = 'manager' if rules.roles_42 else 'user'
        for name, tenants, users in (('devs', {'default_tenant': 'user'}, ['alice']),
                                     ('ops', {'t_prod': role}, ['bob'])):
            store.put('user_groups', {
                'name': name, 'ldap_dn': None, 'role': 'default' if rules.roles_42 else
                'user', 'tenants': dict(tenants), 'users': list(users),
                'created_at': seeder.tick(), 'tenant_name': None})
    if rules.secret_global:
        created = seeder.tick()
        store.put('secrets', {
            'key': 'shared_api_key', 'value': 'sim-secret-value', 'created_at': created,
            'updated_at': created, 'is_hidden_value': True, 'tenant_name': 'default_tenant',
            'created_by': 'admin', 'visibility': 'global'})
    if premium:
        created = seeder.tick()
        store.put('secrets', {
            'key': 'alice_token', 'value': 'sim-secret-value', 'created_at': created,
            'updated_at': created, 'is_hidden_value': False, 'tenant_name': 'default_tenant',
            'created_by': 'alice', 'visibility': 'private'})


def after_restore(mgr, snapshot, new_format):
    """A 5.2.x snapshot on a 6.0+ target: the DB migration 5.2 -> 5.3 drops the `filters`
    table and creates empty deployments_filters / blueprints_filters (Cloudify source:
    cloudify-manager@7.0.4 rest-service/migrations/versions/396303c07e35_5_2_to_5_3.py
    _create_filters_tables, op.drop_table('filters')): the source's filters are gone.
    `snapshot`: rules.SnapshotRules; nothing to do on the 7.0 new route (`new_format`)."""
    if new_format or not mgr.rules.migration_drops_old_filters or snapshot.has_split_filters:
        return
    for rec in mgr.store.all('deployments_filters'):
        mgr.store.delete('deployments_filters', rec)


RESTORE_HOOKS.append(after_restore)


# ----------------------------------------------------------------------------------------
# REST
# ----------------------------------------------------------------------------------------
@route('GET', r'/deployment-groups', when='has_deployment_groups')
def deployment_groups(api, ctx):
    """MGR@5.2.0..7.0.4 resources_v3_1/deployments.py DeploymentGroups.get."""
    return api.resource_list(ctx, 'deployment_groups')


@route('GET', r'/deployment-groups/(?P<gid>[^/]+)', when='has_deployment_groups')
def deployment_group(api, ctx, gid):
    return api.one(ctx, 'deployment_groups', gid)


@route('GET', r'/filters', when='has_single_filters')
def filters_52(api, ctx):
    """5.2.x: one kind of filter, of deployments (MGR@5.2.0 resources_v3_1/filters.py)."""
    return api.resource_list(ctx, 'deployments_filters')


@route('GET', r'/filters/(?P<fid>[^/]+)', when='has_single_filters')
def filter_52(api, ctx, fid):
    return api.one(ctx, 'deployments_filters', fid)


@route('GET', r'/filters/(?P<kind>deployments|blueprints)', when='has_split_filters')
def filters_split(api, ctx, kind):
    """6.0+: filters/deployments, filters/blueprints (MGR@6.0.0 / 7.0.4)."""
    return api.resource_list(ctx, kind + '_filters')


@route('GET', r'/filters/(?P<kind>deployments|blueprints)/(?P<fid>[^/]+)',
       when='has_split_filters')
def filter_split(api, ctx, kind, fid):
    return api.one(ctx, kind + '_filters', fid)


def _label_page(api, ctx, kind, key=None):
    """get_labels_keys / get_labels_key_values (MGR@7.0.4 resources_v3_1/labels.py):
    distinct keys (or the values of one key) of the tenant's resources, sorted, paged."""
    with api.store.lock:
        records = api.visible(ctx, api.store.all(kind))
        found = set()
        for rec in records:
            for lab in rec.get('labels') or []:
                if key is None:
                    found.add(lab['key'])
                elif lab['key'] == key:
                    found.add(lab['value'])
    search = ctx.request.arg('_search')
    items = sorted(v for v in found if not search or search in v)
    get_all = ctx.request.arg('_get_all_results') in ('true', 'True')
    page, meta = api.paginate(ctx, items, get_all)
    return 200, {'metadata': meta, 'items': page}


@route('GET', r'/labels/deployments', when='has_deployment_labels')
def deployment_label_keys(api, ctx):
    return _label_page(api, ctx, 'deployments')


@route('GET', r'/labels/deployments/(?P<key>[^/]+)', when='has_deployment_labels')
def deployment_label_values(api, ctx, key):
    return _label_page(api, ctx, 'deployments', key)


@route('GET', r'/labels/blueprints', when='has_blueprint_labels')
def blueprint_label_keys(api, ctx):
    return _label_page(api, ctx, 'blueprints')


@route('GET', r'/labels/blueprints/(?P<key>[^/]+)', when='has_blueprint_labels')
def blueprint_label_values(api, ctx, key):
    return _label_page(api, ctx, 'blueprints', key)


_GROUP_FIELDS = ('name', 'ldap_dn', 'tenants', 'users', 'role')


def _group_out(rec, get_data, include):
    """Group.to_response: tenants {name: role} and users [names] with _get_data, else
    their counts."""
    out = {'name': rec['name'], 'ldap_dn': rec.get('ldap_dn'), 'role': rec.get('role'),
           'tenants': dict(rec.get('tenants') or {}) if get_data else
           len(rec.get('tenants') or {}),
           'users': sorted(rec.get('users') or []) if get_data else
           len(rec.get('users') or [])}
    return {k: out[k] for k in (include or _GROUP_FIELDS)}


def _premium_groups(api, ctx):
    if not api.rules.has_user_groups:
        raise ApiError(404, 'missing_premium_package_error',
                       'This feature exists only in the premium edition of Cloudify.\nPlease '
                       'contact sales for additional info.')
    if not ctx.is_admin:
        raise ApiError(403, 'forbidden_error', 'User `{0}` is not permitted to perform the '
                       'action user_group_list'.format(ctx.user['username']))


@route('GET', r'/user-groups', scoped=False, when='has_user_groups_route')
def user_groups(api, ctx):
    _premium_groups(api, ctx)
    get_data = api.query_bool(ctx, '_get_data')
    with api.store.lock:
        groups = [dict(g) for g in api.store.all('user_groups')]
    return api.list_records(ctx, 'user_groups', groups, _GROUP_FIELDS,
                            presenter=lambda rec, inc: _group_out(rec, get_data, inc))


@route('GET', r'/user-groups/(?P<name>[^/]+)', scoped=False, when='has_user_groups_route')
def user_group(api, ctx, name):
    _premium_groups(api, ctx)
    with api.store.lock:
        found = [g for g in api.store.all('user_groups') if g['name'] == name]
        if not found:
            raise apimod.not_found('user_groups', name)
        return 200, _group_out(found[0], api.query_bool(ctx, '_get_data'), None)
