"""Plugins (wagons) of the simulated managers: wagon archives (build and read), the plugin
records per version, ``POST /plugins`` (a bare wagon, or the zip of wagon + plugin.yaml that
the stock ``cfy plugins upload`` 7.0.5 sends, raw or multipart), ``GET /plugins/<id>``, which
plugins a blueprint uses (its ``plan``, as ``GET /blueprints?_include=id,plan`` shows it) and
the plugins update (``plugins-updates``, 5.0+): the update record moving ``updating`` ->
``executing_workflow`` -> ``finalizing`` -> ``successful`` (or ``no_changes_required`` /
``failed``), after which the blueprint and its deployments use the new plugin version.

Sources: behaviour §12.4; MGR@7.0.4 rest-service/manager_rest/upload_manager/
manager.py, rest/resources_v2/plugins.py, rest/resources_v3_1/plugins.py, plugins_update/
manager.py; MGR@5.0.5 plugins_update/manager.py; wagon 1.0.3 (``package.json``).
"""
import email.parser
import io
import json
import re
import tarfile
import uuid
import zipfile

from tests.simulator import data as datamod
from tests.simulator import api as apimod
from tests.simulator.api import ApiError, _bool, _conflict, bad, route
from tests.simulator.workflows import WORK_STEP, WorkflowFailed, register_work

METADATA_FILE = 'package.json'        # wagon 1.0.3 METADATA_FILE_NAME

# build_server_os_properties of the wagons the simulator makes per Python tag: CentOS 7
# for 2.7 / 3.6 plugins; the 3.11 wagons Cloudify builds for 7.0 (RHEL 8 family) [U]
_BUILD_OS = {'py27': ('linux_x86_64', 'centos', '7.9.2009', 'core'),
             'py36': ('linux_x86_64', 'centos', '7.9.2009', 'core'),
             'py311': ('manylinux_2_28_x86_64', 'rhel', '8.8', 'ootpa')}

# plugins-updates states (MGR@5.0.5..7.0.4 plugins_update/constants.py)
UPDATING, EXECUTING, FINALIZING = 'updating', 'executing_workflow', 'finalizing'
SUCCESSFUL, FAILED, NO_CHANGES = 'successful', 'failed', 'no_changes_required'
ACTIVE_STATES = (UPDATING, EXECUTING, FINALIZING)
apimod.MODEL_NAMES['plugins_updates'] = 'PluginsUpdate'
PLAN_KEYS = ('deployment_plugins_to_install', 'workflow_plugins_to_install',
             'host_agent_plugins_to_install')


# ----------------------------------------------------------------------------------------
# wagons
# ----------------------------------------------------------------------------------------
def wagon_metadata(package_name, package_version, py_versions=('py311',), platform=None,
                   distribution=None, distribution_version=None, distribution_release=None):
    """The package.json a wagon carries (wagon 1.0.3 _generate_metadata_file)."""
    py_versions = list(py_versions)
    default = _BUILD_OS.get(py_versions[0] if py_versions else 'py311', _BUILD_OS['py311'])
    platform = platform or default[0]
    archive = '{0}-{1}-{2}-none-{3}.wgn'.format(
        package_name.replace('-', '_'), package_version, '.'.join(py_versions), platform)
    return {'created_by_wagon_version': '1.0.3', 'archive_name': archive,
            'supported_platform': platform, 'supported_python_versions': py_versions,
            'python_requires': None,
            'build_server_os_properties': {
                'distribution': default[1] if distribution is None else distribution,
                'distribution_version': (default[2] if distribution_version is None
                                         else distribution_version),
                'distribution_release': (default[3] if distribution_release is None
                                         else distribution_release)},
            'package_name': package_name, 'package_version': package_version,
            'package_build_tag': None, 'package_source': package_name,
            'wheels': ['{0}-{1}-py3-none-any.whl'.format(package_name.replace('-', '_'),
                                                         package_version)],
            'files': []}


def make_wagon(path, package_name, package_version, py_versions=('py311',), **kwargs):
    """Write a wagon (a tar.gz holding ``<package_name>/package.json`` and ``wheels/``) to
    `path` and return its metadata; kwargs as :func:`wagon_metadata`."""
    meta = wagon_metadata(package_name, package_version, py_versions, **kwargs)
    with tarfile.open(path, 'w:gz') as tar:
        for name, blob in ((METADATA_FILE, json.dumps(meta, indent=4, sort_keys=True)),
                           ('wheels/' + meta['wheels'][0], 'simulated wheel')):
            raw = blob.encode('utf-8')
            info = tarfile.TarInfo('{0}/{1}'.format(package_name, name))
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return meta


def make_plugin_zip(path, wagon_path, yaml_text='plugins: {}\n'):
    """The archive `cfy plugins upload` 7.0.5 sends: a zip of the wagon and plugin.yaml
    (CLI@7.0.5 cloudify_cli/commands/plugins.py upload -> utils.zip_files)."""
    with zipfile.ZipFile(path, 'w') as zf:
        zf.write(wagon_path, wagon_path.rsplit('/', 1)[-1])
        zf.writestr('plugin.yaml', yaml_text)


def read_wagon(blob):
    """package.json of a wagon given as bytes; ValueError when it is not one."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode='r:*') as tar:
            for member in tar.getmembers():
                parts = member.name.strip('/').split('/')
                if parts[-1] == METADATA_FILE and len(parts) <= 2 and member.isfile():
                    return json.loads(tar.extractfile(member).read().decode('utf-8'))
    except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise ValueError('{0}: {1}'.format(type(e).__name__, e))
    raise ValueError('ReadError: no {0} in the archive'.format(METADATA_FILE))


def read_upload(blob, rules):
    """(wagon metadata, yaml file names) of an uploaded archive (MGR@7.0.4
    upload_manager.py _do_upload_plugin; 4.2/4.3 take a bare wagon only)."""
    try:
        return read_wagon(blob), []
    except ValueError as error:
        wagon_error = error
    if rules.plugin_upload_zip and zipfile.is_zipfile(io.BytesIO(blob)):
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            names = [n for n in zf.namelist() if not n.endswith('/')]
            wagons = [n for n in names if n.endswith('.wgn')]
            if len(wagons) != 1:
                raise ApiError(400, 'invalid_plugin_error',
                               'Archive must include one wgn file')
            yamls = [n for n in names if n.endswith('.yaml')]
            try:
                return read_wagon(zf.read(wagons[0])), yamls
            except ValueError as error:
                wagon_error = error
    if rules.plugin_upload_zip:
        raise ApiError(400, 'invalid_plugin_error',
                       'input can be only a wagon or a zip file.')
    raise ApiError(400, 'invalid_plugin_error',
                   'The provided wagon archive can not be read.\n{0}'.format(wagon_error))


# ----------------------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------------------
def plugin_record(rules, pid, meta, tenant, creator, visibility, uploaded_at, title=None):
    """A plugin row from wagon metadata (MGR@7.0.4 resources_v2/plugins.py Plugins.post)."""
    build = meta.get('build_server_os_properties') or {}
    archive = meta.get('archive_name')
    return {
        'id': pid, 'package_name': meta.get('package_name'),
        'package_version': meta.get('package_version'), 'archive_name': archive,
        'package_source': meta.get('package_source'),
        'supported_platform': meta.get('supported_platform'),
        'distribution': build.get('distribution'),
        'distribution_version': build.get('distribution_version'),
        'distribution_release': build.get('distribution_release'),
        'wheels': list(meta.get('wheels') or []),
        'excluded_wheels': meta.get('excluded_wheels'),
        'supported_py_versions': meta.get('supported_python_versions'),
        'uploaded_at': uploaded_at,
        'file_server_path': '/opt/manager/resources/plugins/{0}/{1}'.format(pid, archive),
        'yaml_url_path': 'plugin:{0}?version={1}&distribution={2}'.format(
            meta.get('package_name'), meta.get('package_version'), build.get('distribution')),
        'title': title or meta.get('package_name'), 'installation_state': [],
        'blueprint_labels': meta.get('blueprint_labels'), 'labels': meta.get('labels'),
        'resource_tags': meta.get('resource_tags'), 'yaml_files_paths': [],
        'tenant_name': tenant, 'created_by': creator, 'visibility': visibility,
    }


def seed_plugin(seeder, tenant, pid, name, version, visibility='global', py=None):
    """A plugin built for `py` (default: the Python of the seeded manager's version)."""
    rules = seeder.rules
    meta = wagon_metadata(name, version, (py or rules.plugin_python,))
    return seeder.store.put('plugins', plugin_record(rules, pid, meta, tenant, 'admin',
                                                     visibility, seeder.tick()))


def plan_entry(plugin, name, executor='central_deployment_agent'):
    """A plugin as a blueprint's plan lists it (COMMON@7.0.4 dsl_parser/constants.py
    PLUGIN_* keys)."""
    return {'name': name, 'package_name': plugin['package_name'],
            'package_version': plugin['package_version'], 'executor': executor,
            'source': None, 'install': True, 'install_arguments': None,
            'supported_platform': plugin['supported_platform'],
            'distribution': plugin['distribution'],
            'distribution_version': plugin['distribution_version'],
            'distribution_release': plugin['distribution_release']}


def use_plugins(store, rules, blueprint, entries):
    """Make `blueprint` (and the nodes of its deployments) use the plan entries given as
    (plan key, entry) pairs."""
    plan = blueprint.setdefault('plan', {})
    keys = PLAN_KEYS if rules.plan_host_agent_plugins else PLAN_KEYS[:2]
    for key in keys:
        plan.setdefault(key, [])
    for key, entry in entries:
        if key in keys:
            plan[key].append(entry)
    _sync_nodes(store, blueprint)


def _sync_nodes(store, blueprint):
    """nodes[].plugins follow the blueprint's plan (the plugins their operations map to)."""
    plan = blueprint.get('plan') or {}
    entries = [e for key in PLAN_KEYS for e in plan.get(key, [])]
    for node in store.all('nodes'):
        if node.get('blueprint_id') == blueprint['id'] and \
                node.get('tenant_name') == blueprint.get('tenant_name'):
            node['plugins'] = [dict(e) for e in entries]


def blueprint_plugins(blueprint):
    """(package_name, package_version) pairs a blueprint's plan uses."""
    plan = blueprint.get('plan') or {}
    return sorted({(e['package_name'], e['package_version'])
                   for key in PLAN_KEYS for e in plan.get(key, []) if e.get('package_name')})


def seed_demo(seeder, premium):
    """The demo data set's plugins, built for the seeded manager's Python (behaviour §12.4):
    cloudify-openstack-plugin (global, seeded first) used by every blueprint,
    cloudify-utilities-plugin (default_tenant) used by default_tenant's web-app, also as a
    host agent plugin where the plan has that list."""
    store, rules = seeder.store, seeder.rules
    openstack = store.find('plugins', 'plugin-openstack-2-14-7')[0]
    utilities = seed_plugin(seeder, 'default_tenant', 'plugin-utilities-1-23-5',
                            'cloudify-utilities-plugin', '1.23.5', visibility='tenant')
    for bp in store.all('blueprints'):
        entries = [('deployment_plugins_to_install', plan_entry(openstack, 'openstack')),
                   ('workflow_plugins_to_install', plan_entry(openstack, 'openstack'))]
        if bp['id'] == 'web-app' and bp['tenant_name'] == 'default_tenant':
            entries.append(('host_agent_plugins_to_install',
                            plan_entry(utilities, 'utilities', 'host_agent')))
            entries.append(('deployment_plugins_to_install',
                            plan_entry(utilities, 'utilities')))
        use_plugins(store, rules, bp, entries)


# ----------------------------------------------------------------------------------------
# REST: plugins
# ----------------------------------------------------------------------------------------
def _visibility(api, ctx):
    """MGR@7.0.4 resource_manager.get_resource_visibility (4.0-4.2: private_resource)."""
    rules = api.rules
    if not rules.has_tenants:
        return 'tenant'
    if rules.upload_private_resource_param:
        return 'private' if _bool('private_resource',
                                  ctx.request.arg('private_resource', 'false')) else 'tenant'
    visibility = ctx.request.arg('visibility') or 'tenant'
    valid = ['private', 'tenant', 'global']
    if visibility not in valid:
        raise bad("Invalid visibility: `{0}`. Valid visibility's values are: {1}".format(
            visibility, valid))
    if visibility == 'global' and not ctx.is_admin:
        raise ApiError(403, 'forbidden_error', 'User `{0}` is not permitted to set or '
                       'change global visibility'.format(ctx.user['username']))
    return visibility


def _uploaded_bytes(request):
    """The archive from the body: raw (chunked or with Content-Length) or the file part of
    multipart/form-data (MGR@7.0.4 upload_manager/utils.py
    save_file_locally_and_extract_inputs)."""
    body = request.body()
    ctype = request.header('Content-Type') or ''
    if not ctype.startswith('multipart/form-data'):
        return body
    message = email.parser.BytesParser().parsebytes(
        b'Content-Type: ' + ctype.encode('latin-1') + b'\r\n\r\n' + body)
    found = b''
    for part in message.walk() if message.is_multipart() else ():
        disposition = part.get('Content-Disposition') or ''
        if 'form-data' in disposition and 'name="inputs"' not in disposition and \
                not part.is_multipart():
            found = part.get_payload(decode=True) or b''
    return found


@route('POST', r'/plugins', write=True)
def upload_plugin(api, ctx):
    """POST /plugins (MGR@7.0.4 resources_v2/plugins.py Plugins.post): read the wagon's
    package.json into the plugin row; 201 with the plugin."""
    rules, store = api.rules, api.store
    request = ctx.request
    if request.arg('plugin_archive_url'):
        request.drain()
        raise bad('plugin_archive_url is not supported by the simulator')
    visibility = _visibility(api, ctx)
    meta, _yamls = read_upload(_uploaded_bytes(request), rules)
    pid = request.arg('id') or str(uuid.uuid4())
    tenant = ctx.tenant or 'default_tenant'
    with store.lock:
        for rec in store.all('plugins'):
            same = (rec['id'] == pid) or all(
                rec.get(k) == v for k, v in (
                    ('package_name', meta.get('package_name')),
                    ('package_version', meta.get('package_version')),
                    ('distribution', (meta.get('build_server_os_properties') or {})
                     .get('distribution')),
                    ('distribution_release', (meta.get('build_server_os_properties') or {})
                     .get('distribution_release'))))
            if same and (rec.get('tenant_name') == tenant or
                         rec.get('visibility') == 'global'):
                raise _conflict(api, 'plugins', pid, tenant)
        rec = store.put('plugins', plugin_record(
            rules, pid, meta, tenant, ctx.user['username'], visibility,
            request.arg('uploaded_at') or datamod.ts(), title=request.arg('title')))
    return 201, api.present(ctx, 'plugins', rec)


@route('GET', r'/plugins/(?P<pid>[^/]+)')
def get_plugin(api, ctx, pid):
    return api.one(ctx, 'plugins', pid)


# ----------------------------------------------------------------------------------------
# REST: plugins updates (5.0+)
# ----------------------------------------------------------------------------------------
def _version_key(text):
    parts = []
    for piece in re.split(r'[.\-]', str(text or '')):
        parts.append((0, int(piece)) if piece.isdigit() else (1, piece))
    return tuple(parts)


def _constraint(name, current, filters):
    """MGR@7.0.4 plugins_update/manager.py _plugin_version_constraints.prepare_constraint:
    None = latest, ('==', v) = keep, ('minor', v) = same major."""
    if filters.get('plugin_names') and name not in filters['plugin_names']:
        return ('==', current)
    if filters.get('all_to_latest'):
        return ('minor', current) if name in (filters.get('to_minor') or []) else None
    if filters.get('all_to_minor'):
        return None if name in (filters.get('to_latest') or []) else ('minor', current)
    return None


def _resolve(candidates, current, constraint):
    def allowed(plugin):
        version = plugin['package_version']
        if constraint is None:
            return True
        if constraint[0] == '==':
            return version == constraint[1]
        major = str(constraint[1]).split('.')[0]
        return str(version).split('.')[0] == major and \
            _version_key(version) >= _version_key(constraint[1])
    fitting = [p for p in candidates if allowed(p)]
    if not fitting:
        return None
    return max(fitting, key=lambda p: (_version_key(p['package_version']),
                                       p.get('uploaded_at') or ''))


def reevaluated_plan(store, blueprint, filters):
    """The blueprint's plan with each plugin at the version the resolver picks among the
    plugins the blueprint's tenant sees (the latest by default)."""
    tenant = blueprint.get('tenant_name')
    visible = [p for p in store.all('plugins')
               if p.get('tenant_name') == tenant or p.get('visibility') == 'global']
    plan = json.loads(json.dumps(blueprint.get('plan') or {}))
    for key in PLAN_KEYS:
        for entry in plan.get(key, []):
            name = entry.get('package_name')
            if not name or not entry.get('package_version'):
                continue
            best = _resolve([p for p in visible if p['package_name'] == name],
                            entry['package_version'],
                            _constraint(name, entry['package_version'], filters))
            if best is not None:
                entry.update(package_version=best['package_version'],
                             supported_platform=best['supported_platform'],
                             distribution=best['distribution'],
                             distribution_version=best['distribution_version'],
                             distribution_release=best['distribution_release'])
    return plan


def _update_filters(api, ctx):
    """5.0.x: query `force` (MGR@5.0.5); 5.1+: JSON body, a body that cannot be read is {}
    (MGR@5.1.0..7.0.4 PluginsUpdate.post `except BadRequest: args = {}`)."""
    rules, request = api.rules, ctx.request
    if rules.plugins_update_args == 'query':
        request.drain()
        return {'force': _bool('force', request.arg('force', 'false'))}
    ctype = request.header('Content-Type')
    if ctype != 'application/json':
        request.drain()
        raise ApiError(415, 'unsupported_content_type_error',
                       'Content type must be application/json')
    try:
        body = json.loads(request.body().decode('utf-8') or 'null')
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return {}
    types = {'plugin_names': list, 'all_to_latest': bool, 'to_latest': list,
             'all_to_minor': bool, 'to_minor': list, 'mapping': dict}
    if rules.plugins_update_body_force:
        types.update(force=bool, auto_correct_types=bool, reevaluate_active_statuses=bool)
    if rules.plugins_update_per_tenant:
        types['all_tenants'] = bool
    for name, kind in types.items():
        if name in body and not isinstance(body[name], kind):
            raise bad('{0} parameter is expected to be of type {1} but is of type {2}'.format(
                name, kind.__name__, type(body[name]).__name__))
    return {k: v for k, v in body.items() if k in types}


@route('POST', r'/plugins-updates/(?P<bid>[^/]+)/update/(?P<phase>initiate|finalize)',
       write=True, when='has_plugins_update', action='plugins_update_create')
def plugins_update_post(api, ctx, bid, phase):
    """MGR@5.0.5 / 5.1.0 / 7.0.4 resources_v3_1/plugins.py PluginsUpdate.post,
    plugins_update/manager.py initiate_plugins_update."""
    if phase == 'finalize':
        ctx.request.drain()
        update = api.get_one(ctx, 'plugins_updates', bid)
        if update['state'] != EXECUTING:
            raise ApiError(400, 'illegal_action_error',
                           "Cannot finalize plugins update {0}, it's not in the {1} state."
                           .format(bid, EXECUTING))
        finalize(api.mgr, update)
        return 200, api.present(ctx, 'plugins_updates', update)
    filters = _update_filters(api, ctx)
    rules, store, mgr = api.rules, api.store, api.mgr
    with store.lock:
        blueprint = api.get_one(ctx, 'blueprints', bid)
        active = [u['id'] for u in store.all('plugins_updates')
                  if u['blueprint_id'] == bid and u['state'] in ACTIVE_STATES
                  and u['tenant_name'] == blueprint['tenant_name']]
        if active and not (rules.plugins_update_args == 'query' and filters.get('force')):
            raise ApiError(409, 'conflict_error', 'There are plugins updates still active, '
                           'update IDs: {0}'.format(', '.join(active)))
        all_tenants = bool(filters.get('all_tenants'))
        deployments = sorted(
            (d for d in store.all('deployments') if d['blueprint_id'] == bid and
             (all_tenants or d['tenant_name'] == blueprint['tenant_name'])),
            key=lambda d: d['id'])
        temp_plan = reevaluated_plan(store, blueprint, filters)
        changes = temp_plan != (blueprint.get('plan') or {})
        if rules.plugins_update_args == 'query':
            changes = changes and bool(deployments)     # MGR@5.0.5: no deployment, no change
        now = datamod.ts()
        update = {
            'id': str(uuid.uuid4()), 'state': UPDATING if changes else NO_CHANGES,
            # 6.4+ records the deployments per tenant instead (MGR@6.4.0 initiate)
            'deployments_to_update': (None if rules.plugins_update_per_tenant else
                                      [d['id'] for d in deployments] if changes else []),
            'deployments_per_tenant': {}, 'forced': bool(filters.get('force')),
            'all_tenants': all_tenants, 'blueprint_id': bid, 'temp_blueprint_id': None,
            'execution_id': None, 'created_at': now, 'tenant_name': blueprint['tenant_name'],
            'created_by': ctx.user['username'], 'visibility': 'tenant',
            '_temp_plan': temp_plan}
        if changes:
            for dep in deployments:
                update['deployments_per_tenant'].setdefault(dep['tenant_name'], []).append(
                    dep['id'])
            update['temp_blueprint_id'] = 'plugins-update-{0}-{1}'.format(
                now.replace('-', '').replace(':', '').rstrip('Z'), bid)
        ex = datamod.new_execution(str(uuid.uuid4()), 'update_plugin',
                                   blueprint['tenant_name'], ctx.user['username'],
                                   parameters={'update_id': update['id'],
                                               'deployments_to_update':
                                                   update['deployments_to_update'],
                                               'temp_blueprint_id':
                                                   update['temp_blueprint_id'],
                                               'force': update['forced']},
                                   is_system=True)
        update['execution_id'] = ex['id']
        if not changes:
            # MGR@5.0.5 _execute_system_workflow(fake_execution=True) / MGR@7.0.4
            # update_plugins(no_changes_required=True): a terminated execution row
            ex.update(status='terminated', started_at=now, ended_at=now, error='')
        store.put('plugins_updates', update)
        store.put('executions', ex)
        if changes:
            update['state'] = EXECUTING
    if changes:
        mgr.run_execution(ex)
    return 200, api.present(ctx, 'plugins_updates', update)


@route('GET', r'/plugins-updates', when='has_plugins_update')
def plugins_updates_list(api, ctx):
    return api.resource_list(ctx, 'plugins_updates')


@route('GET', r'/plugins-updates/(?P<uid>[^/]+)', when='has_plugins_update')
def plugins_update_get(api, ctx, uid):
    return api.one(ctx, 'plugins_updates', uid)


def finalize(mgr, update):
    """MGR@7.0.4 plugins_update/manager.py finalize: the blueprint takes the temp plan,
    its deployments (and their nodes) follow, the update is successful."""
    store = mgr.store
    with store.lock:
        update['state'] = FINALIZING
        found = store.find('blueprints', update['blueprint_id'], [update['tenant_name']])
        if not found:
            update['state'] = FAILED
            return
        blueprint = found[0]
        blueprint['plan'] = json.loads(json.dumps(update.get('_temp_plan') or {}))
        blueprint['updated_at'] = datamod.ts()
        _sync_nodes(store, blueprint)
        wanted = {(t, d) for t, ds in (update.get('deployments_per_tenant') or {}).items()
                  for d in ds}
        for dep in store.all('deployments'):
            if (dep['tenant_name'], dep['id']) in wanted:
                dep['updated_at'] = datamod.ts()
        update['state'] = SUCCESSFUL


def update_plugin_work(engine, ex, fail_rule):
    """The `update_plugin` system workflow: update each deployment, then finalize
    (MGR@7.0.4 mgmtworker cloudify_system_workflows/plugins.py update -> finalize)."""
    mgr = engine.mgr
    params = ex.get('parameters') or {}
    yield WORK_STEP
    with mgr.store.lock:
        found = [u for u in mgr.store.all('plugins_updates')
                 if u['id'] == params.get('update_id')]
    update = found[0] if found else None
    if fail_rule is not None:
        if update is not None:
            with mgr.store.lock:
                update['state'] = FAILED
        raise WorkflowFailed(fail_rule.error)
    yield WORK_STEP
    if update is not None:
        finalize(mgr, update)


register_work('update_plugin', update_plugin_work)
