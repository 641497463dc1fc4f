"""Contract: the stock cfy 7.0.5 CLI (a subprocess with a private CFY_WORKDIR, fixture
`run_cfy` of tests/conftest.py) against the simulated 7.0 and 4.2 managers (issue 3
acceptance)."""
import zipfile

from tests.simulator.helpers import raw, wait_execution, wait_until


def use_profile(run_cfy, mgr, *extra):
    result = run_cfy('profiles', 'use', '127.0.0.1', '--rest-port', mgr.rest_port, '-u',
                     mgr.admin_username, '-p', mgr.admin_password, '-t', 'default_tenant',
                     *extra)
    assert result.returncode == 0, result
    return result


def test_stock_cli_against_70(simulated_manager, run_cfy, cfy_workdir):
    mgr = simulated_manager('7.0', data='demo')
    use_profile(run_cfy, mgr)
    # cfy profiles use asks managers/brokers/db-nodes (behaviour §6.1)
    assert mgr.requests.matching('GET', '/api/v3.1/managers')
    status = run_cfy('status')
    assert status.returncode == 0, status
    assert 'Manager Rest-Service' in status.stdout and 'Active' in status.stdout

    created = run_cfy('snapshots', 'create', 'snap1')
    assert created.returncode == 0, created
    client = mgr.client()
    wait_until(lambda: client.snapshots.get('snap1').status == 'created', 10)
    listed = run_cfy('snapshots', 'list')
    assert listed.returncode == 0 and 'snap1' in listed.stdout

    target = cfy_workdir / 'snap1.zip'
    downloaded = run_cfy('snapshots', 'download', 'snap1', '-o', target)
    assert downloaded.returncode == 0, downloaded
    assert zipfile.is_zipfile(str(target))
    uploaded = run_cfy('snapshots', 'upload', target, '-s', 'snap2')
    assert uploaded.returncode == 0, uploaded
    assert client.snapshots.get('snap2').status == 'uploaded'

    executions = run_cfy('executions', 'list', '--all-tenants')
    assert executions.returncode == 0, executions
    assert 'prod-web' in executions.stdout          # t_prod rows: all tenants listed

    agents = run_cfy('agents', 'install', '--all-tenants')
    assert agents.returncode == 0, agents
    assert "deployment 'draft-1' will be skipped" in agents.stderr + agents.stdout
    assert mgr.agent_installs() == {('default_tenant', 'hw-1'): 1,
                                    ('default_tenant', 'web-1'): 1,
                                    ('t_prod', 'prod-web'): 1, ('t_prod', 'prod-db'): 1}

    restored = run_cfy('snapshots', 'restore', 'snap2', '--force')
    assert restored.returncode == 0, restored
    restore_id = restored.stdout.split("execution's id is ")[1].split('.')[0]
    assert wait_execution(client, restore_id).status == 'terminated'


def test_stock_cli_restore_against_42_fails(simulated_manager, run_cfy):
    """behaviour §1 item 1 / §11: the 7.0.5 CLI's v3.1 prefix works on 4.2, but its restore
    lacks recreate_deployments_envs -> 400 like a real 4.2; its premium upload stops at
    GET /license-check (absent before 4.6)."""
    source = simulated_manager('4.2', data='demo')
    client = source.client()
    wait_execution(client, client.snapshots.create('snap1', True).id)
    payload = raw(source, 'GET', '/api/v3.1/snapshots/snap1/archive').content

    mgr = simulated_manager('4.2')
    use_profile(run_cfy, mgr)
    assert mgr.requests.matching('GET', '/api/v3.1/cluster')   # the < 5.0.5 fallback
    upload = run_cfy('snapshots', 'upload', '/dev/null', '-s', 'snap1')
    assert upload.returncode != 0
    assert mgr.requests.matching('GET', '/license-check')[0]['status'] == 404
    assert raw(mgr, 'PUT', '/api/v3.1/snapshots/snap1/archive', data=payload, headers={
        'Content-Type': 'application/octet-stream'}).status_code == 201
    listed = run_cfy('snapshots', 'list')
    assert listed.returncode == 0 and 'snap1' in listed.stdout
    restore = run_cfy('snapshots', 'restore', 'snap1')
    assert restore.returncode != 0
    assert 'Missing recreate_deployments_envs in json request body' in (
        restore.stdout + restore.stderr)
    posted = mgr.requests.matching('POST', '/api/v3.1/snapshots/snap1/restore')
    assert [e['status'] for e in posted] == [400]
