"""Contract: snapshot create / list / download / upload per version, the archive layout and
metadata.json, and the creating -> created/failed lifecycle.

References: behaviour §3.1-§3.4, §3.7, §7.1-§7.3; observed-7.0 §3.1/§3.2/§5 'Snapshot endpoint'.
"""
import io
import json
import zipfile

import pytest

from tests.simulator.helpers import raw, wait_execution, wait_until


def create_and_wait(mgr, sid='snap1', body=None):
    prefix = mgr.rules.api_prefix
    response = raw(mgr, 'PUT', '{0}/snapshots/{1}'.format(prefix, sid), json_body=body or {})
    assert response.status_code == 201, response.text
    execution = response.json()
    client = mgr.client()
    return execution, wait_execution(client, execution['id'])


def archive_of(mgr, sid='snap1'):
    response = raw(mgr, 'GET', '{0}/snapshots/{1}/archive'.format(mgr.rules.api_prefix, sid))
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_create_returns_execution_then_created(simulated_manager):
    """behaviour §3.1: 201 + Execution (create_snapshot); observed-7.0 §3.2: pending, system
    workflow, then the snapshot is created and the execution terminated."""
    mgr = simulated_manager('7.0', data='demo')
    execution, done = create_and_wait(mgr, body={'include_credentials': True,
                                                 'include_logs': False,
                                                 'include_events': False, 'queue': False})
    assert execution['workflow_id'] == 'create_snapshot'
    assert execution['status'] == 'pending' and execution['is_system_workflow'] is True
    assert execution['status_display'] == 'pending'
    assert done.status == 'terminated' and done['status_display'] == 'completed'
    assert done.started_at and done.ended_at
    snapshot = raw(mgr, 'GET', '/api/v3.1/snapshots/snap1').json()
    assert snapshot['status'] == 'created'
    assert set(snapshot) == {'created_at', 'id', 'visibility', 'status', 'error',
                             'tenant_name', 'created_by', 'resource_availability',
                             'private_resource'}


def test_create_parameters_show_config_password(simulated_manager):
    """observed-7.0 §3.1: the create_snapshot execution shows parameters.config.postgresql_password
    (the plugin must redact it)."""
    mgr = simulated_manager('7.0')
    execution, _ = create_and_wait(mgr)
    assert 'postgresql_password' in execution['parameters']['config']


def test_create_fails_on_demand(simulated_manager):
    """behaviour §3.1: the workflow PATCHes the snapshot to failed with an error;
    behaviour §3.3: a failed snapshot gives 400 snapshot_action_error on download."""
    mgr = simulated_manager('4.2')
    mgr.faults.fail_execution(workflow_id='create_snapshot', error='disk full')
    _, done = create_and_wait(mgr)
    assert done.status == 'failed' and done.error == 'disk full'
    snapshot = raw(mgr, 'GET', '/api/v3.1/snapshots/snap1').json()
    assert snapshot['status'] == 'failed' and snapshot['error'] == 'disk full'
    response = raw(mgr, 'GET', '/api/v3.1/snapshots/snap1/archive')
    assert response.status_code == 400
    assert response.json()['message'] == 'Failed snapshot cannot be downloaded'


@pytest.mark.parametrize('version', ['3.4.2', '4.2', '7.0'])
def test_create_body_must_be_object(simulated_manager, version):
    """behaviour §3.1: the body must be a JSON object (3.4.2 answers 500 otherwise)."""
    mgr = simulated_manager(version)
    response = raw(mgr, 'PUT', mgr.rules.api_prefix + '/snapshots/snap1', data='[]',
                   headers={'Content-Type': 'application/json'})
    assert response.status_code == 500
    assert response.json()['error_code'] == 'internal_server_error'


def test_create_boolean_validation(simulated_manager):
    """observed-7.0: {"include_logs":"perhaps"} -> 400 'include_logs must be <true/false>'."""
    mgr = simulated_manager('7.0')
    body = {'include_logs': 'perhaps'}
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1', json_body=body)
    assert response.status_code == 400
    assert response.json()['message'] == 'include_logs must be <true/false>, got perhaps'


@pytest.mark.parametrize('version,enforced', [('4.2', False), ('4.3', False), ('4.4', True),
                                              ('7.0', True)])
def test_snapshot_id_rules(simulated_manager, version, enforced):
    """behaviour §3.1 constraints: from 4.4 the id must start with a letter and use
    [A-Za-z0-9._-]; observed-7.0 messages."""
    mgr = simulated_manager(version)
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/1startsdigit', json_body={})
    if enforced:
        assert response.status_code == 400
        assert response.json()['message'] == ('The `snapshot_id` argument must begin with a '
                                              'letter')
        illegal = raw(mgr, 'PUT', '/api/v3.1/snapshots/bad%20id', json_body={})
        assert 'illegal characters' in illegal.json()['message']
    else:
        assert response.status_code == 201


def test_create_conflict(simulated_manager):
    """behaviour §3.1: an existing id gives 409; observed-7.0 message."""
    mgr = simulated_manager('7.0')
    create_and_wait(mgr)
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1', json_body={})
    assert response.status_code == 409
    assert response.json()['message'] == (
        '<Snapshot id=`snap1` tenant=`default_tenant`> already exists on <Tenant '
        'name=`default_tenant`> or with global visibility')


@pytest.mark.parametrize('version', ['4.2', '7.0'])
def test_create_refused_while_executions_run(simulated_manager, version):
    """behaviour §3.1 '4.x: ... 400 existing_running_execution_error if any execution visible to
    the caller's tenant is active'; MGR@4.2 resource_manager deletes the snapshot row."""
    mgr = simulated_manager(version, data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    heal = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1', json_body={})
    assert response.status_code == 400
    assert response.json()['error_code'] == 'existing_running_execution_error'
    assert heal.id in response.json()['message']
    assert raw(mgr, 'GET', '/api/v3.1/snapshots/snap1').status_code == 404


@pytest.mark.parametrize('version,queued', [('4.4', False), ('4.5.0', True)])
def test_queue_from_45(simulated_manager, version, queued):
    """behaviour §3.1: from 4.5, queue: true queues the create instead of failing."""
    mgr = simulated_manager(version, data='demo')
    mgr.faults.hang_execution(workflow_id='heal')
    client = mgr.client()
    heal = client.executions.start('hw-1', 'heal', {'node_instance_id': 'x'})
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1', json_body={'queue': True})
    if not queued:
        assert response.status_code == 400
        return
    assert response.status_code == 201 and response.json()['status'] == 'queued'
    client.executions.cancel(heal.id, force=True)
    done = wait_execution(client, response.json()['id'])
    assert done.status == 'terminated'


# behaviour §3.7 'Files in the zip' table and §7.3 (update-3 / patch-1 snapshot versions); the
# 7.0 row is a `legacy: true` archive (behaviour §12.1: the default 7.0 format has no DB dump,
# ssl/ or rest-security.conf; test_contract_route70.py pins it)
ARCHIVES = [
    ('3.4.2', '3.4.2', 'flat', {'es_data'}, {'ssl', 'hash_salt.json', 'pg_data'}),
    ('4.0.0', '4.0.0', 'flat', {'pg_data', 'admin_account.json'}, {'ssl'}),
    ('4.0.0+patch1', '4.1.0-p1-4.0.0', 'tenant', {'pg_data'}, {'ssl'}),
    ('4.0.1', '4.0.1', 'flat', {'ssl'}, {'hash_salt.json'}),
    ('4.0.1+update3', '4.1.0-p3-4.0.1', 'tenant', {'ssl'}, {'hash_salt.json'}),
    ('4.1', '4.1.0', 'tenant', {'ssl'}, {'hash_salt.json', 'rest-security.conf'}),
    ('4.2', '4.2.0', 'tenant', {'ssl', 'hash_salt.json'}, {'rest-security.conf'}),
    ('4.3', '4.3.0', 'tenant', {'hash_salt.json'}, {'rest-security.conf'}),
    ('4.4', '4.4.0', 'tenant', {'rest-security.conf'}, {'hash_salt.json', 'license.json'}),
    ('4.6', '4.6.0', 'tenant', {'rest-security.conf', 'license.json'}, {'hash_salt.json'}),
    ('7.0', '7.0.4', 'tenant', {'rest-security.conf', 'ssl'}, {'hash_salt.json'}),
]


@pytest.mark.parametrize('version,snapshot_version,layout,present,absent', ARCHIVES)
def test_archive_layout(simulated_manager, version, snapshot_version, layout, present,
                        absent):
    mgr = simulated_manager(version, data='demo')
    create_and_wait(mgr, body={'legacy': True} if version == '7.0' else None)
    zf = archive_of(mgr)
    names = set(zf.namelist())
    tops = {n.split('/', 1)[0] for n in names}
    assert present <= tops, tops
    assert not (absent & tops), tops
    metadata = json.loads(zf.read('metadata.json'))
    assert metadata['snapshot_version'] == snapshot_version
    agents = json.loads(zf.read('agents.json'))
    if layout == 'tenant':
        assert 'default_tenant' in agents and 'hw-1' in agents['default_tenant']
    else:
        assert 'hw-1' in agents and 'default_tenant' not in agents
    if version.startswith('3.'):
        assert metadata['has_cloudify_events'] is True          # behaviour §3.7
    if version.startswith('4.0.1'):
        assert 'schema_revision' in metadata                    # behaviour §3.7 4.0.1+
    if version == '4.1':
        assert 'composer_schema_revision' in metadata           # behaviour §3.7 4.1+
    if version == '7.0':
        # behaviour §3.7 '7.0.4: execution_id' is the new format's (test_contract_route70.py);
        # the 7.0.4 legacy create writes none (MGR@7.0.4 snapshot_create_legacy.py
        # `_dump_metadata`, behaviour §12.1)
        assert 'execution_id' not in metadata


def test_archive_ssl_copied_from_host(simulated_manager):
    """behaviour §7.1: snapshots >= 4.0.1 include /etc/cloudify/ssl as ssl/ (4.2+ adds the
    internal CA)."""
    mgr = simulated_manager('4.2')
    create_and_wait(mgr)
    zf = archive_of(mgr)
    ssl = {n[4:] for n in zf.namelist() if n.startswith('ssl/')}
    assert {'cloudify_internal_ca_cert.pem', 'cloudify_internal_cert.pem',
            'certificate_metadata'} <= ssl
    assert zf.read('ssl/cloudify_internal_cert.pem') == mgr.read_host_file(
        'etc/cloudify/ssl/cloudify_internal_cert.pem')


def test_download_headers_and_range(simulated_manager):
    """behaviour §3.3: Content-Disposition attachment; Range answered by nginx (206 +
    Content-Range) — [I/U] in the facts, see README."""
    mgr = simulated_manager('7.0', data='demo')
    create_and_wait(mgr)
    path = '/api/v3.1/snapshots/snap1/archive'
    whole = raw(mgr, 'GET', path)
    assert whole.headers['Content-Disposition'] == 'attachment; filename="snap1.zip"'
    assert int(whole.headers['Content-Length']) == len(whole.content)
    part = raw(mgr, 'GET', path, headers={'Range': 'bytes=10-'})
    assert part.status_code == 206
    assert part.content == whole.content[10:]
    assert part.headers['Content-Range'] == 'bytes 10-{0}/{1}'.format(
        len(whole.content) - 1, len(whole.content))
    beyond = raw(mgr, 'GET', path, headers={'Range': 'bytes={0}-'.format(len(whole.content))})
    assert beyond.status_code == 416
    old = simulated_manager('4.2')
    create_and_wait(old)
    disposition = raw(old, 'GET', '/api/v3.1/snapshots/snap1/archive').headers[
        'Content-Disposition']
    assert disposition == 'attachment; filename=snap1.zip'     # MGR@4.2 rest_utils


def test_download_unknown_is_json_404(simulated_manager):
    """observed-7.0 §5: 404 not_found_error for an unknown id."""
    response = raw(simulated_manager('7.0'), 'GET', '/api/v3.1/snapshots/nosuch/archive')
    assert response.status_code == 404
    assert response.json()['message'] == 'Requested `Snapshot` with ID `nosuch` was not found'


def _zip_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('metadata.json', json.dumps({'snapshot_version': '4.2.0'}))
    return buf.getvalue()


@pytest.mark.parametrize('chunked', [False, True])
def test_upload_raw_and_chunked(simulated_manager, chunked):
    """behaviour §3.4: raw zip body, read whole or chunked (nginx de-chunks, observed-7.0 §3.1);
    201 + Snapshot 'uploaded'."""
    mgr = simulated_manager('4.2')
    payload = _zip_bytes()
    data = iter([payload[:7], payload[7:]]) if chunked else payload
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/up1/archive', data=data,
                   headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 201
    assert response.json()['status'] == 'uploaded'
    with open(mgr.snapshot_path('up1'), 'rb') as f:
        assert f.read() == payload
    listed = raw(mgr, 'GET', '/api/v3.1/snapshots').json()['items']
    assert [s['id'] for s in listed] == ['up1']


@pytest.mark.parametrize('version', ['4.2', '6.4', '7.0'])
def test_upload_existing_id(simulated_manager, version):
    """behaviour §3.4 'If the id already exists': 409 before 7.0.4; 7.0.4 replaces the archive
    and answers 201 with every field null (observed-7.0)."""
    mgr = simulated_manager(version)
    path = '/api/v3.1/snapshots/up1/archive'
    headers = {'Content-Type': 'application/octet-stream'}
    assert raw(mgr, 'PUT', path, data=_zip_bytes(), headers=headers).status_code == 201
    again = raw(mgr, 'PUT', path, data=b'replaced', headers=headers)
    if version == '7.0':
        assert again.status_code == 201
        assert set(again.json().values()) == {None}
        with open(mgr.snapshot_path('up1'), 'rb') as f:
            assert f.read() == b'replaced'
    else:
        assert again.status_code == 409
        assert again.json()['error_code'] == 'conflict_error'


def test_upload_form_content_type_413_on_70(simulated_manager):
    """observed-7.0: upload with curl's default application/x-www-form-urlencoded -> 413 HTML."""
    mgr = simulated_manager('7.0')
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/up1/archive', data=b'abc',
                   headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert response.status_code == 413
    assert response.headers['Content-Type'].startswith('text/html')


def test_official_client_round_trip(simulated_manager, tmp_path):
    """observed-7.0 §3.2: the official client's create / download / upload work (the upload is a
    chunked generator body)."""
    mgr = simulated_manager('7.0', data='demo')
    client = mgr.client()
    execution = client.snapshots.create('snap1', True)
    wait_execution(client, execution.id)
    out = str(tmp_path / 'snap1.zip')
    client.snapshots.download('snap1', out)
    assert zipfile.is_zipfile(out)
    uploaded = client.snapshots.upload(out, 'snap2')
    assert uploaded.status == 'uploaded'
    wait_until(lambda: len(client.snapshots.list()) == 2, 5)
    deleted = raw(mgr, 'DELETE', '/api/v3.1/snapshots/snap2')
    assert deleted.status_code == 200 and deleted.json()['id'] == 'snap2'
    assert [s.id for s in client.snapshots.list()] == ['snap1']
