"""Contract: POST /snapshots/<id>/restore per version (required keys, 500 on a missing
`force`, the Snapshot-shaped 200), the restore workflow's refusals, and what happens after a
restore per target (data, admin password, REST restart, certificates and reboot,
snapshot-status, the snapshot leaving the list).

References: behaviour §3.5 (table), §3.6 (validator), §3.8 (after the restore), §7.2
(rest-security / salts); observed-7.0 §3.2 restore rows.
"""
import json
import os

import pytest

from cloudify_rest_client import CloudifyClient
from cloudify_rest_client.exceptions import CloudifyClientError

from tests.simulator.helpers import raw, wait_execution, wait_execution_any, wait_until

FULL_BODY = {'recreate_deployments_envs': True, 'force': False, 'restore_certificates': False,
             'no_reboot': False, 'ignore_plugin_failure': False, 'timeout': 300,
             'tenant_name': None}


def make_snapshot(mgr, sid='snap1'):
    response = raw(mgr, 'PUT', '{0}/snapshots/{1}'.format(mgr.rules.api_prefix, sid),
                   json_body={})
    assert response.status_code == 201, response.text
    done = wait_execution(mgr.client(), response.json()['id'])
    assert done.status == 'terminated', done.error
    archive = raw(mgr, 'GET', '{0}/snapshots/{1}/archive'.format(mgr.rules.api_prefix, sid))
    assert archive.status_code == 200
    return archive.content


def upload(mgr, payload, sid='snap1'):
    response = raw(mgr, 'PUT', '{0}/snapshots/{1}/archive'.format(mgr.rules.api_prefix, sid),
                   data=payload, headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 201, response.text


def restore(mgr, sid='snap1', body=None, **overrides):
    payload = dict(FULL_BODY if body is None else body)
    payload.update(overrides)
    return raw(mgr, 'POST', '{0}/snapshots/{1}/restore'.format(mgr.rules.api_prefix, sid),
               json_body=payload)


def restore_and_wait(mgr, sid='snap1', source=None, **overrides):
    """Restore and wait; `source` = the source manager, whose admin password becomes the
    target's around the restore (behaviour §3.8)."""
    response = restore(mgr, sid, **overrides)
    assert response.status_code == 200, response.text
    passwords = [mgr.admin_password] + ([source.admin_password] if source else [])
    return wait_execution_any(mgr, response.json()['id'], passwords, timeout=20)


def client_for(mgr, password, username='admin', tenant='default_tenant'):
    return CloudifyClient(host='127.0.0.1', port=mgr.rest_port,
                          api_version=mgr.rules.api_prefix.rsplit('/', 1)[1],
                          username=username, password=password, tenant=tenant)


def can_login(mgr, password, username='admin'):
    response = raw(mgr, 'GET', mgr.rules.api_prefix + '/blueprints', username=username,
                   password=password)
    return response.status_code == 200


# ---- the request ---------------------------------------------------------------------
@pytest.mark.parametrize('version,missing', [
    ('3.4.2', 'recreate_deployments_envs'),
    ('4.0.0', 'tenant_name'),
    ('4.0.1', 'tenant_name'),
    ('4.2', 'recreate_deployments_envs'),
    ('4.5.0', 'ignore_plugin_failure'),
    ('4.5.5', 'recreate_deployments_envs'),
    ('5.2.7', 'recreate_deployments_envs'),
])
def test_required_keys(simulated_manager, version, missing):
    """behaviour §3.5 table 'required' column: a missing key -> 400 'Missing X in json request
    body'."""
    mgr = simulated_manager(version)
    upload(mgr, b'zip')
    body = {k: v for k, v in FULL_BODY.items() if k != missing}
    response = restore(mgr, body=body)
    assert response.status_code == 400
    assert response.json()['message'] == 'Missing {0} in json request body'.format(missing)


@pytest.mark.parametrize('version', ['4.5.5', '5.1', '6.0', '7.0'])
def test_optional_keys(simulated_manager, version):
    """behaviour §3.5 table: ignore_plugin_failure optional from 4.5.5; recreate_deployments_envs
    gone from 6.0 (RD-1945)."""
    mgr = simulated_manager(version)
    upload(mgr, b'zip')
    body = {'force': True}
    if version < '6':
        body['recreate_deployments_envs'] = True
    assert restore(mgr, body=body).status_code == 200


@pytest.mark.parametrize('version', ['3.4.2', '4.2', '7.0'])
def test_missing_force_is_500(simulated_manager, version):
    """behaviour §3.5 'force is read as request_dict['force'] on every version' -> 500."""
    mgr = simulated_manager(version)
    upload(mgr, b'zip')
    body = {k: v for k, v in FULL_BODY.items() if k != 'force'}
    response = restore(mgr, body=body)
    assert response.status_code == 500
    assert response.json()['error_code'] == 'internal_server_error'
    assert "KeyError: 'force'" in response.json()['message']


@pytest.mark.parametrize('version,rejected', [('4.0.1', False), ('4.1', True), ('7.0', True)])
def test_no_reboot_needs_restore_certificates(simulated_manager, version, rejected):
    """behaviour §3.5 4.1-4.4 row / observed-7.0: no_reboot without restore_certificates -> 400."""
    mgr = simulated_manager(version)
    upload(mgr, b'zip')
    response = restore(mgr, no_reboot=True)
    if rejected:
        assert response.status_code == 400
        assert response.json()['message'] == ('`no_reboot` is only relevant when '
                                              '`restore_certificates` is activated')
    else:
        assert response.status_code == 200


def test_response_is_snapshot_shaped_execution(simulated_manager):
    """behaviour §3.5: 200 marshalled with the Snapshot model, id = execution id (observed-7.0)."""
    mgr = simulated_manager('7.0')
    upload(mgr, b'zip')
    response = restore(mgr, body={'force': False, 'restore_certificates': False,
                                  'no_reboot': False})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {'created_at', 'id', 'visibility', 'status', 'error', 'tenant_name',
                         'created_by', 'resource_availability', 'private_resource'}
    assert body['status'] == 'pending' and body['error'] is None
    execution = mgr.client().executions.get(body['id'])
    assert execution.workflow_id == 'restore_snapshot'


def test_request_errors_70(simulated_manager):
    """observed-7.0 restore rows: force 'maybe' -> 400; unknown snapshot -> 404; failed -> 400."""
    mgr = simulated_manager('7.0')
    upload(mgr, b'zip')
    maybe = restore(mgr, body={'force': 'maybe'})
    assert maybe.json()['message'] == 'force must be <true/false>, got maybe'
    assert restore(mgr, 'nosuch', body={'force': False}).status_code == 404
    raw(mgr, 'PATCH', '/api/v3.1/snapshots/snap1', json_body={'status': 'failed',
                                                              'error': 'boom'})
    failed = restore(mgr, body={'force': False})
    assert failed.status_code == 400
    assert failed.json()['error_code'] == 'snapshot_action_error'


def test_stock_client_restore_against_42(simulated_manager):
    """behaviour §1 item 1 / behaviour §13.5: rc705 restore never sends
    recreate_deployments_envs -> 400 on 4.1..5.2.x (works on 6.0+)."""
    mgr = simulated_manager('4.2')
    upload(mgr, b'zip')
    with pytest.raises(CloudifyClientError) as err:
        mgr.client().snapshots.restore('snap1')
    assert err.value.status_code == 400
    assert 'Missing recreate_deployments_envs' in str(err.value)
    new = simulated_manager('6.0')
    upload(new, b'zip')
    assert new.client().snapshots.restore('snap1').status == 'pending'


@pytest.mark.parametrize('version,leaves_row', [('4.2', False), ('7.0', True)])
def test_restore_refused_while_executions_run(simulated_manager, version, leaves_row):
    """observed-7.0: existing_running_execution_error still leaves a pending restore row on 7.0;
    MGR@4.2 resource_manager checks before creating the execution."""
    mgr = simulated_manager(version, data='demo')
    upload(mgr, b'zip')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    response = restore(mgr, force=True)
    assert response.status_code == 400
    assert response.json()['error_code'] == 'existing_running_execution_error'
    restores = [e for e in client.executions.list(include_system_workflows=True)
                if e.workflow_id == 'restore_snapshot']
    assert bool(restores) is leaves_row
    if leaves_row:
        assert restores[0].status == 'pending'


# ---- the workflow's checks (behaviour §3.6) ------------------------------------------------------
def test_newer_snapshot_refused(simulated_manager):
    """behaviour §3.6 item 1: 'Cannot restore a newer manager's snapshot on this manager'."""
    payload = make_snapshot(simulated_manager('7.0', data='demo'))
    target = simulated_manager('4.2')
    upload(target, payload)
    done = restore_and_wait(target)
    assert done.status == 'failed'
    assert "Cannot restore a newer manager's snapshot" in done.error


@pytest.mark.parametrize('target_version,outcome', [('4.2', 'restored'), ('4.6', 'restored'),
                                                    ('5.0.5', 'refused'), ('7.0', 'nothing')])
def test_3x_snapshots(simulated_manager, target_version, outcome):
    """behaviour §3.6 item 3: 4.1-4.6 restore a 3.x snapshot into the request's tenant;
    5.0.0-6.x refuse: 'Restoring snapshot from version 3.x is not supported'.  behaviour §12.1
    (correcting §3.6 on 7.0): a 3.x zip lacks the schema revisions, so 7.0 takes the new
    route, whose validator never runs: the execution terminates and nothing is restored."""
    payload = make_snapshot(simulated_manager('3.4.2', data='demo'))
    target = simulated_manager(target_version)
    upload(target, payload)
    done = restore_and_wait(target)
    if outcome == 'refused':
        assert done.status == 'failed'
        assert 'Restoring snapshot from version 3.x is not supported' in done.error
        return
    if outcome == 'nothing':
        assert done.status == 'terminated', done.error
        assert list(target.client().deployments.list(_all_tenants=True)) == []
        return
    assert done.status == 'terminated', done.error
    deployments = target.client().deployments.list()
    assert {d.id for d in deployments} >= {'hw-1', 'web-1'}
    assert {d['tenant_name'] for d in deployments} == {'default_tenant'}


def test_3x_snapshot_on_40_premium_needs_tenant_name(simulated_manager):
    """behaviour §3.5 4.0.x row: premium needs a non-null new tenant for 3.x snapshots."""
    payload = make_snapshot(simulated_manager('3.4.2', data='demo'))
    target = simulated_manager('4.0.1')
    upload(target, payload)
    assert restore_and_wait(target).status == 'failed'
    done = restore_and_wait(target, tenant_name='migrated')
    assert done.status == 'terminated', done.error
    moved = target.client(tenant='migrated').deployments.list()
    assert {d.id for d in moved} >= {'hw-1'}


def test_only_bootstrap_admin(simulated_manager):
    """behaviour §3.6 item 2: a v4+ snapshot may only be restored by the bootstrap admin."""
    payload = make_snapshot(simulated_manager('4.2', data='demo'))
    target = simulated_manager('4.2')
    upload(target, payload)
    from tests.simulator import data
    with target.store.lock:
        target.store.users['admin2'] = data.new_user(
            7, 'admin2', data.hash_password(target.rest_security['hash_salt'], 'pw'),
            'sys_admin', {'default_tenant': 'user'})
    response = raw(target, 'POST', '/api/v3.1/snapshots/snap1/restore', json_body=FULL_BODY,
                   username='admin2', password='pw')
    assert response.status_code == 200
    done = wait_execution(target.client(), response.json()['id'])
    assert done.status == 'failed' and 'bootstrap admin' in done.error


@pytest.mark.parametrize('target_version', ['4.2', '6.4'])
def test_dirty_target_needs_force(simulated_manager, target_version):
    """behaviour §3.6 item 2: no blueprints in any tenant unless force."""
    source = simulated_manager('4.2', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager(target_version, data='demo')
    upload(target, payload)
    done = restore_and_wait(target)
    assert done.status == 'failed' and 'dirty manager' in done.error
    assert restore_and_wait(target, source=source, force=True).status == 'terminated'


def test_agent_networks_must_exist(simulated_manager):
    """behaviour §3.6 item 2: from 4.2 every network with live agents in the snapshot must exist
    on the target ('Upgrade is not allowed!')."""
    source = simulated_manager('4.2', data='demo', networks={'default': '127.0.0.1',
                                                             'private': '10.0.0.1'})
    with source.store.lock:
        source.store.all('agents')[0]['network'] = 'private'
    payload = make_snapshot(source)
    target = simulated_manager('4.3')
    upload(target, payload)
    done = restore_and_wait(target)
    assert done.status == 'failed' and 'Upgrade is not allowed!' in done.error
    wide = simulated_manager('4.3', networks={'default': '127.0.0.1', 'private': '10.0.0.2'})
    upload(wide, payload)
    assert restore_and_wait(wide, source=source).status == 'terminated'


def test_70_new_format_skips_clean_check(simulated_manager):
    """behaviour §3.6 item 5: 7.0.4 non-legacy snapshots run neither validator nor clean check."""
    source = simulated_manager('7.0', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager('7.0', data='demo')
    upload(target, payload)
    assert restore_and_wait(target, source=source).status == 'terminated'


# ---- after the restore (behaviour §3.8) ----------------------------------------------------------
def test_41_to_70_new_host(simulated_manager):
    """The demo path: 4.1 premium demo -> 7.0 empty.  Data replaced (every tenant), roles
    mapped (behaviour §9 item 7), admin keeps the target password (snapshot < 4.2, behaviour §3.8),
    other users cannot log in until the source hash_salt is installed and the REST service
    restarted (behaviour §7.2)."""
    source = simulated_manager('4.1', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager('7.0')
    upload(target, payload)
    done = restore_and_wait(target)
    assert done.status == 'terminated', done.error
    client = target.client()
    every = client.deployments.list(_all_tenants=True)
    assert {(d['tenant_name'], d.id) for d in every} >= {('default_tenant', 'hw-1'),
                                                         ('t_prod', 'prod-web')}
    users = {u.username: u.role for u in client.users.list()}
    assert users == {'admin': 'sys_admin', 'alice': 'default', 'bob': 'default'}
    assert can_login(target, target.admin_password)
    alice = source.user_passwords['alice']
    assert not can_login(target, alice, 'alice')
    salt = json.loads(source.read_host_file('opt/manager/rest-security.conf'))['hash_salt']
    target.merge_rest_security({'hash_salt': salt})
    target.systemctl('restart', 'cloudify-restservice')
    wait_until(lambda: can_login(target, alice, 'alice'), 10, what='alice can log in')
    assert not target.events('admin updated')


@pytest.mark.parametrize('target_version', ['4.2', '4.5.5'])
def test_42_target_restart_after_terminated(simulated_manager, target_version):
    """behaviour §3.8 '4.2 - 4.5.x targets': the execution terminates, then the detached shell
    installs the source admin and restarts cloudify-restservice (after `terminated`)."""
    source = simulated_manager('4.2', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager(target_version)
    upload(target, payload)
    done = restore_and_wait(target, source=source)
    assert done.status == 'terminated', done.error
    wait_until(lambda: can_login(target, source.admin_password), 10,
               what='source admin password works')
    assert not can_login(target, target.admin_password)
    events = target.events()
    terminated = events.index('execution restore_snapshot terminated ' + done.id)
    assert events.index('cloudify-restservice stopped') > terminated
    assert events.index('admin updated') > terminated


@pytest.mark.parametrize('target_version', ['4.6', '7.0'])
def test_46_target_restart_inside_workflow(simulated_manager, target_version):
    """behaviour §3.8 '4.6+ targets': rest-security restored and the REST service restarted
    inside the workflow; the admin update stays in the post-restore shell."""
    source = simulated_manager('4.4', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager(target_version)
    upload(target, payload)
    done = restore_and_wait(target, source=source)
    assert done.status == 'terminated', done.error
    wait_until(lambda: can_login(target, source.admin_password), 10)
    events = target.events()
    terminated = events.index('execution restore_snapshot terminated ' + done.id)
    assert events.index('cloudify-restservice stopped') < terminated
    assert events.index('admin updated') > terminated
    conf = json.loads(target.read_host_file('opt/manager/rest-security.conf'))
    source_conf = json.loads(source.read_host_file('opt/manager/rest-security.conf'))
    assert conf['secret_key'] == source_conf['secret_key']         # behaviour §7.2 4.4+


def test_restore_certificates_and_reboot(simulated_manager):
    """behaviour §3.8: restore_certificates moves the snapshot's internal certificates over
    /etc/cloudify/ssl and reboots (connections refused, then the same port again)."""
    source = simulated_manager('4.2', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager('4.3')
    upload(target, payload)
    done = restore_and_wait(target, source=source, restore_certificates=True)
    assert done.status == 'terminated', done.error
    wait_until(lambda: 'booted' in target.events(), 15, what='reboot over')
    assert target.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem') == \
        source.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem')
    assert target.read_host_file('etc/cloudify/ssl/cloudify_external_cert.pem') != \
        source.read_host_file('etc/cloudify/ssl/cloudify_external_cert.pem')
    events = target.events()
    assert events.index('certificates replaced') < events.index('reboot')
    wait_until(lambda: can_login(target, source.admin_password), 10)


def test_restore_certificates_no_reboot(simulated_manager):
    """behaviour §3.8: certificates replaced, no reboot with no_reboot."""
    source = simulated_manager('4.2', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager('4.2')
    upload(target, payload)
    restore_and_wait(target, source=source, restore_certificates=True, no_reboot=True)
    wait_until(lambda: 'certificates replaced' in target.events(), 10)
    wait_until(lambda: can_login(target, source.admin_password), 10)
    assert 'reboot' not in target.events()


def test_snapshot_status_until_post_restore_done(simulated_manager):
    """behaviour §2.3: 5.0.5+ snapshot-status is 'running' until the post-restore shell ends."""
    source = simulated_manager('5.0.5', data='demo')
    payload = make_snapshot(source)
    target = simulated_manager('5.0.5')
    upload(target, payload)
    done = restore_and_wait(target, source=source)
    assert done.status == 'terminated', done.error
    status = lambda: raw(target, 'GET', '/api/v3.1/snapshot-status',  # noqa: E731
                         auth=False).json()['status']
    wait_until(lambda: status() == 'not-running', 10)
    events = target.events()
    assert events.index('snapshot-status running') < events.index('admin updated') < \
        events.index('snapshot-status not-running')


@pytest.mark.parametrize('target_version,listed', [('6.0', True), ('6.4', False)])
def test_snapshot_leaves_the_list_from_63(simulated_manager, target_version, listed):
    """behaviour §3.8 '6.3+ targets': the uploaded zip is deleted and the snapshot no longer
    appears; before, the list is the restored DB's (the source's rows)."""
    source = simulated_manager('5.2.7', data='demo')
    payload = make_snapshot(source, 'upg')
    target = simulated_manager(target_version)
    upload(target, payload, 'upg')
    done = restore_and_wait(target, 'upg', source=source)
    assert done.status == 'terminated', done.error
    wait_until(lambda: can_login(target, source.admin_password), 10)
    ids = [s.id for s in target.client(password=source.admin_password).snapshots.list()]
    assert ('upg' in ids) is listed
    assert os.path.exists(target.snapshot_path('upg')) is listed


def test_failed_restore_leaves_data(simulated_manager):
    """A failed restore execution changes nothing (the validator runs before the DB step)."""
    payload = make_snapshot(simulated_manager('4.2', data='demo'))
    target = simulated_manager('4.2', data='demo')
    target.faults.fail_execution(workflow_id='restore_snapshot', error='boom')
    upload(target, payload)
    done = restore_and_wait(target, force=True)
    assert done.status == 'failed' and done.error == 'boom'
    assert 'db restored' not in target.events()
