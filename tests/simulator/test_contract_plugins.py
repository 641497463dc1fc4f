"""Contract: plugins (wagons) and plugins updates.

References: behaviour §12.4 (the Python a manager runs plugins with; plugins update is the
documented remedy); Cloudify source: cloudify-manager@7.0.4
rest-service/manager_rest/upload_manager/manager.py (_do_upload_plugin),
rest/resources_v2/plugins.py (Plugins.post), plugins_update/manager.py
(initiate_plugins_update, finalize); cloudify-manager@5.0.5 rest/resources_v3_1/plugins.py
(`force` from the query); cloudify-cli@7.0.5 cloudify_cli/commands/plugins.py (upload zips
the wagon with plugin.yaml); wagon 1.0.3 (package.json).
"""
import pytest

from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator import plugins
from tests.simulator.helpers import raw, wait_execution, wait_until
from tests.simulator.test_contract_restore import make_snapshot, restore_and_wait, upload

PASSWORD = 'Same-Admin-Pw1'


def _upgraded(simulated_manager, source_version, data='demo'):
    """A `source_version` demo restored onto an empty 7.0 (both admins share a password)."""
    source = simulated_manager(source_version, data=data, admin_password=PASSWORD)
    target = simulated_manager('7.0', admin_password=PASSWORD)
    upload(target, make_snapshot(source))
    assert restore_and_wait(target, source=source).status == 'terminated'
    wait_until(lambda: raw(target, 'GET', '/api/v3.1/blueprints').status_code == 200, 10,
               what='the target answers again')
    return source, target


def _wagon_zip(tmp_path, name, version, py):
    wagon = str(tmp_path / '{0}-{1}.wgn'.format(name, version))
    meta = plugins.make_wagon(wagon, name, version, (py,))
    archive = str(tmp_path / '{0}-{1}.zip'.format(name, version))
    plugins.make_plugin_zip(archive, wagon)
    return wagon, archive, meta


@pytest.mark.parametrize('version,py,extra,absent', [
    ('4.4', 'py27', (), ('yaml_url_path', 'title')),
    ('4.6', 'py27', ('yaml_url_path', 'file_server_path'), ('title',)),
    ('5.1', 'py36', ('title', 'installation_state'), ('blueprint_labels',)),
    ('6.4', 'py36', ('blueprint_labels', 'labels', 'resource_tags'), ('yaml_files_paths',)),
    ('7.0', 'py311', ('yaml_files_paths', 'supported_py_versions_p'), ('file_server_path',)),
])
def test_plugin_fields_per_version(simulated_manager, version, py, extra, absent):
    """cloudify-manager@4.0/4.6/5.1.0/6.4.0/7.0.4 storage/resource_models.py Plugin;
    behaviour §12.4: a demo plugin is built for the manager's Python
    (<= 5.0.x 2.7, 5.1-6.4 3.6, 7.0 3.11)."""
    mgr = simulated_manager(version, data='demo')
    items = mgr.client().plugins.list(package_name='cloudify-openstack-plugin')
    assert len(items) == 1
    item = items[0]
    for field in ('package_name', 'package_version', 'supported_py_versions',
                  'supported_platform', 'distribution', 'distribution_release',
                  'distribution_version', 'archive_name', 'wheels') + extra:
        assert field in item, field
    for field in absent:
        assert field not in item, field
    assert item['supported_py_versions'] == [py]
    assert item['package_version'] == '2.14.7' and item['visibility'] == 'global'


def test_blueprint_plan_names_the_plugins_it_uses(simulated_manager):
    """The plugins a blueprint uses are in its plan (deployment_plugins_to_install,
    workflow_plugins_to_install, host_agent_plugins_to_install from 5.0: Cloudify source:
    cloudify-common@5.0.0 dsl_parser/constants.py), which is what the plugins update
    re-evaluates (cloudify-manager@7.0.4 plugins_update/manager.py _plugins_in_a_plan)."""
    new = simulated_manager('5.1', data='demo').client()
    blueprints = {b.id: b for b in new.blueprints.list(_include=['id', 'plan'])}
    used = {bid: sorted({(p['package_name'], p['package_version'])
                         for key in plugins.PLAN_KEYS for p in b['plan'].get(key, [])})
            for bid, b in blueprints.items()}
    assert used == {'hello-world': [('cloudify-openstack-plugin', '2.14.7')],
                    'web-app': [('cloudify-openstack-plugin', '2.14.7'),
                                ('cloudify-utilities-plugin', '1.23.5')]}
    agent_plugins = blueprints['web-app']['plan']['host_agent_plugins_to_install']
    assert [p['executor'] for p in agent_plugins] == ['host_agent']
    old = simulated_manager('4.4', data='demo').client()
    plan = old.blueprints.get('hello-world')['plan']
    assert 'host_agent_plugins_to_install' not in plan and plan['deployment_plugins_to_install']


def test_upload_with_the_stock_client(simulated_manager, tmp_path):
    """`cfy plugins upload` 7.0.5 sends the zip of wagon + plugin.yaml as the raw (chunked)
    body of POST /plugins?visibility=...; the server reads package.json into the row and
    answers 201 (cloudify-manager@7.0.4 Plugins.post)."""
    mgr = simulated_manager('7.0')
    client = mgr.client()
    _, archive, meta = _wagon_zip(tmp_path, 'cloudify-openstack-plugin', '3.3.0', 'py311')
    plugin = client.plugins.upload(archive, visibility='global')
    assert plugin.package_name == 'cloudify-openstack-plugin'
    assert plugin.package_version == '3.3.0'
    assert plugin.supported_py_versions == ['py311']
    assert plugin.archive_name == meta['archive_name']
    assert plugin.distribution == 'rhel' and plugin['visibility'] == 'global'
    assert client.plugins.get(plugin.id).package_version == '3.3.0'
    with pytest.raises(CloudifyClientError) as again:
        client.plugins.upload(archive)
    assert again.value.status_code == 409
    upload_requests = mgr.requests.matching('POST', '/plugins')
    assert upload_requests[0]['query'] == {'visibility': 'global'}


def test_upload_bare_wagon_and_multipart(simulated_manager, tmp_path):
    """A bare wagon is accepted as well, and a multipart/form-data body (save_files_multipart,
    cloudify-manager@7.0.4 upload_manager/utils.py)."""
    mgr = simulated_manager('7.0')
    wagon, _, _ = _wagon_zip(tmp_path, 'cloudify-utilities-plugin', '1.25.0', 'py311')
    bare = raw(mgr, 'POST', '/api/v3.1/plugins', data=open(wagon, 'rb').read(),
               headers={'Content-Type': 'application/octet-stream'})
    assert bare.status_code == 201, bare.text
    assert bare.json()['supported_py_versions'] == ['py311']
    other = str(tmp_path / 'other.wgn')
    plugins.make_wagon(other, 'cloudify-fabric-plugin', '2.0.7', ('py311',))
    with open(other, 'rb') as stream:
        multipart = raw(mgr, 'POST', '/api/v3.1/plugins?visibility=tenant',
                        files={'plugin_archive': ('other.wgn', stream)})
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()['package_name'] == 'cloudify-fabric-plugin'


@pytest.mark.parametrize('version,message', [
    ('7.0', 'input can be only a wagon or a zip file.'),
    ('4.2', 'The provided wagon archive can not be read.'),
])
def test_upload_refuses_what_is_not_a_wagon(simulated_manager, tmp_path, version, message):
    """invalid_plugin_error 400 (cloudify-manager@7.0.4 _do_upload_plugin; 4.2-4.3 read a
    bare wagon only, cloudify-manager@4.2 upload_manager.py)."""
    mgr = simulated_manager(version)
    response = raw(mgr, 'POST', mgr.rules.api_prefix + '/plugins', data=b'not a wagon',
                   headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 400
    assert response.json()['error_code'] == 'invalid_plugin_error'
    assert response.json()['message'].startswith(message)


def test_zip_without_one_wagon(simulated_manager, tmp_path):
    """'Archive must include one wgn file' (cloudify-manager@7.0.4 _do_upload_plugin)."""
    import zipfile
    archive = str(tmp_path / 'empty.zip')
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('plugin.yaml', 'plugins: {}\n')
    mgr = simulated_manager('7.0')
    response = raw(mgr, 'POST', '/api/v3.1/plugins', data=open(archive, 'rb').read(),
                   headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 400
    assert response.json()['message'] == 'Archive must include one wgn file'


def test_py27_plugins_restored_then_updated(simulated_manager, tmp_path):
    """behaviour §12.4: a 4.4 source's py2.7 plugins arrive on 7.0 with the snapshot, the
    blueprints still use them; after a py3.11 wagon is uploaded, the plugins update of a
    blueprint moves updating/executing_workflow -> successful and the blueprint (and the
    nodes of its deployments) use the new version (cloudify-manager@7.0.4
    plugins_update/manager.py finalize)."""
    _, target = _upgraded(simulated_manager, '4.4')
    client = target.client()
    restored = client.plugins.list(package_name='cloudify-openstack-plugin')
    assert [p.supported_py_versions for p in restored] == [['py27']]
    _, archive, _ = _wagon_zip(tmp_path, 'cloudify-openstack-plugin', '3.3.0', 'py311')
    client.plugins.upload(archive, visibility='global')
    update = client.plugins_update.update_plugins('hello-world')
    assert update.state == 'executing_workflow'
    assert update.blueprint_id == 'hello-world' and update.deployments_per_tenant == {
        'default_tenant': ['draft-1', 'hw-1']}
    execution = client.executions.get(update.execution_id)
    assert execution.workflow_id == 'update_plugin' and execution.is_system_workflow
    done = wait_until(lambda: client.plugins_update.get(update.id).state in (
        'successful', 'failed'), 10, what='the plugins update')
    assert done
    assert client.plugins_update.get(update.id).state == 'successful'
    plan = client.blueprints.get('hello-world')['plan']
    assert {p['package_version'] for key in plugins.PLAN_KEYS
            for p in plan.get(key, [])} == {'3.3.0'}
    nodes = client.nodes.list(deployment_id='hw-1')
    assert {p['package_version'] for n in nodes for p in n['plugins']} == {'3.3.0'}
    untouched = client.blueprints.get('web-app')['plan']['deployment_plugins_to_install']
    assert {p['package_version'] for p in untouched} == {'2.14.7', '1.23.5'}
    assert [u.id for u in client.plugins_update.list()] == [update.id]


def test_no_newer_plugin_no_changes(simulated_manager):
    """Nothing newer uploaded: no_changes_required with a terminated update_plugin row
    (cloudify-manager@7.0.4 resource_manager.update_plugins(no_changes_required=True))."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    update = client.plugins_update.update_plugins('web-app')
    assert update.state == 'no_changes_required'
    assert client.executions.get(update.execution_id).status == 'terminated'


def test_active_update_conflicts_and_failure(simulated_manager, tmp_path):
    """A second update of a blueprint while one is active: 409 'There are plugins updates
    still active'; a failed update_plugin execution leaves the update failed."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    _, archive, _ = _wagon_zip(tmp_path, 'cloudify-openstack-plugin', '3.3.0', 'py311')
    client.plugins.upload(archive, visibility='global')
    mgr.faults.hang_execution(workflow_id='update_plugin', times=1)
    first = client.plugins_update.update_plugins('hello-world')
    with pytest.raises(CloudifyClientError) as busy:
        client.plugins_update.update_plugins('hello-world')
    assert busy.value.status_code == 409
    assert 'plugins updates still active' in str(busy.value)
    wait_until(lambda: client.executions.get(first.execution_id).status == 'started', 10,
               what='the hanging update_plugin started')
    client.executions.cancel(first.execution_id, force=True)
    assert wait_execution(client, first.execution_id).status == 'cancelled'
    mgr.faults.fail_execution(workflow_id='update_plugin', times=1)
    second = client.plugins_update.update_plugins('web-app')
    wait_execution(client, second.execution_id)
    assert client.plugins_update.get(second.id).state == 'failed'


def test_plugin_names_filter_keeps_the_others(simulated_manager, tmp_path):
    """plugin_names: a plugin not listed keeps its exact version (cloudify-manager@7.0.4
    _plugin_version_constraints)."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    for name, version in (('cloudify-openstack-plugin', '3.3.0'),
                          ('cloudify-utilities-plugin', '1.25.0')):
        _, archive, _ = _wagon_zip(tmp_path, name, version, 'py311')
        client.plugins.upload(archive, visibility='global')
    update = client.plugins_update.update_plugins(
        'web-app', plugin_names=['cloudify-utilities-plugin'])
    wait_until(lambda: client.plugins_update.get(update.id).state == 'successful', 10,
               what='the plugins update')
    plan = client.blueprints.get('web-app')['plan']
    assert sorted({(p['package_name'], p['package_version'])
                   for p in plan['deployment_plugins_to_install']}) == [
        ('cloudify-openstack-plugin', '2.14.7'), ('cloudify-utilities-plugin', '1.25.0')]


def test_50_takes_force_from_the_query(simulated_manager, tmp_path):
    """5.0.x: POST plugins-updates/<bp>/update/initiate reads only the query's `force`
    (cloudify-manager@5.0.5 PluginsUpdate.post); 5.1+ the JSON body and a body that cannot be
    read counts as {} (cloudify-manager@5.1.0..7.0.4 `except BadRequest: args = {}`)."""
    mgr = simulated_manager('5.0.5', data='demo')
    wagon = str(tmp_path / 'os.wgn')
    plugins.make_wagon(wagon, 'cloudify-openstack-plugin', '2.15.0', ('py27',))
    assert raw(mgr, 'POST', '/api/v3.1/plugins?visibility=global',
               data=open(wagon, 'rb').read()).status_code == 201
    path = '/api/v3.1/plugins-updates/hello-world/update/initiate'
    mgr.faults.hang_execution(workflow_id='update_plugin', times=1)
    first = raw(mgr, 'POST', path)
    assert first.status_code == 200 and first.json()['state'] == 'executing_workflow'
    assert 'deployments_per_tenant' not in first.json()
    assert first.json()['deployments_to_update'] == ['draft-1', 'hw-1']
    assert raw(mgr, 'POST', path).status_code == 409
    forced = raw(mgr, 'POST', path + '?force=true')
    assert forced.status_code == 200 and forced.json()['forced'] is True
    new = simulated_manager('7.0', data='demo')
    not_json = raw(new, 'POST', '/api/v3.1/plugins-updates/web-app/update/initiate',
                   data=b'x', headers={'Content-Type': 'text/plain'})
    assert not_json.status_code == 415
    unreadable = raw(new, 'POST', '/api/v3.1/plugins-updates/web-app/update/initiate',
                     data=b'{not json', headers={'Content-Type': 'application/json'})
    assert unreadable.status_code == 200
    assert unreadable.json()['state'] == 'no_changes_required'


@pytest.mark.parametrize('version,exists', [('4.6', False), ('5.0.5', True)])
def test_plugins_updates_from_50(simulated_manager, version, exists):
    """The plugins-updates endpoints exist from 5.0 (cloudify-manager@5.0
    endpoint_mapper.py); absent at 4.6, whose nginx does not proxy them: a UI 404 page
    (behaviour §2.1)."""
    mgr = simulated_manager(version)
    response = raw(mgr, 'GET', '/api/v3.1/plugins-updates')
    assert response.status_code == (200 if exists else 404)
    if exists:
        assert response.json()['items'] == []
