"""`cfy upgrade plan` through the real `cfy` against simulated managers (issue 5).

plan runs the checks prepare runs before its snapshot and prints the ordered steps of the
chosen mode; it must change nothing: the simulated manager receives only GETs, the
simulated host only read commands over SSH, and no upgrade workspace is created.
Asserted: exit codes, the JSON document (docs/cli-contract.md), the request log and the SSH
command log of the simulators, the cfy workdir.
"""
import os
import shlex

import pytest

from tests.simulator import data as simdata

# What a read-only plan may run on the manager host (host_patch_marker, ssh_probe, the
# free space for source-disk).
READ_COMMANDS = ('true', 'test', 'grep', 'cat', 'ls', 'whoami', 'echo', 'df')


def _upgrades_dir(cfy_workdir):
    return os.path.join(str(cfy_workdir), '.cloudify', 'upgrades')


def _assert_read_only(sim):
    methods = {entry['method'] for entry in sim.requests}
    assert methods == {'GET'}, [(e['method'], e['path']) for e in sim.requests
                                if e['method'] != 'GET']
    if sim.machine.host is not None:
        for line in sim.machine.host.commands:
            argv = shlex.split(line)
            while argv and argv[0] in ('sudo', '-n', '--'):
                argv = argv[1:]
            assert argv and argv[0] in READ_COMMANDS, line


def _by_id(document):
    return {check['id']: check for check in document['checks']}


def test_plan_41_in_place_is_read_only_and_lists_the_steps(
        simulated_manager, make_profile, run_cfy, cfy_workdir):
    sim = simulated_manager('4.1', data='demo', ssh=True)
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'plan', '--mode', 'in-place', '--target-version', '4.2',
                     '--json')

    assert result.returncode == 0, result
    document = result.json
    assert document['upgrade_id'] is None
    assert document['mode'] == 'in-place'
    assert document['source'] == {'version': '4.1.0', 'edition': 'premium',
                                  'api_prefix': '/api/v3.1',
                                  'address': 'http://127.0.0.1:{0}'.format(sim.rest_port)}
    checks = _by_id(document)
    for check in document['checks']:
        assert set(check) >= {'id', 'status', 'message'}
    assert checks['upgrade-path']['status'] == 'pass'
    assert checks['users-rest-security']['status'] == 'warn'
    assert checks['ssh-access']['status'] == 'pass'
    assert 'snapshot' not in document and 'backups' not in document
    steps = [(step['command'], step['id']) for step in document['steps']]
    # prepare first, then the manual teardown/reinstall, then the in-place runbook
    assert steps[0] == ('prepare', 'check-source')
    assert ('prepare', 'backup-host-files') in steps
    manual = steps.index(('manual', 'teardown-and-reinstall'))
    assert all(command == 'prepare' for command, _ in steps[:manual])
    assert all(command == 'in-place' for command, _ in steps[manual + 1:])
    assert steps[-1][0] == 'in-place' and len(steps) > manual + 3
    backup = [step for step in document['steps'] if step['id'] == 'backup-host-files'][0]
    assert '/opt/manager/rest-security.conf' in backup['changes']
    assert '/etc/cloudify/ssl' in backup['changes']
    assert document['next'] == 'cfy upgrade prepare --mode in-place --target-version 4.2.0'

    _assert_read_only(sim)
    assert sim.state.all('snapshots') == []
    assert sim.maintenance_state()['status'] == 'deactivated'
    assert not os.path.exists(_upgrades_dir(cfy_workdir))


def test_plan_human_output_and_from_profile(
        simulated_manager, make_profile, run_cfy, cfy_workdir):
    sim = simulated_manager('5.2.7', data='demo')
    make_profile('old', sim, ssh=False)
    run_cfy('profiles', 'use', 'local')
    sim.requests.clear()

    result = run_cfy('upgrade', 'plan', '--from-profile', 'old', '--target-version', '7.0.4')

    assert result.returncode == 0, result
    out = result.stdout + result.stderr
    assert '[pass  ] upgrade-path: 5.2.7 -> 7.0.4 (new-host)' in out
    assert '[new-host] upload-snapshot' in out
    assert 'backup-host-files' in out and 'nothing (no host file is needed' in out
    assert ('Next: cfy upgrade prepare --mode new-host --target-version 7.0.4 '
            '--from-profile old') in out
    _assert_read_only(sim)
    assert not os.path.exists(_upgrades_dir(cfy_workdir))


def test_plan_blocks_on_a_running_execution_without_changing_anything(
        simulated_manager, make_profile, run_cfy, cfy_workdir):
    sim = simulated_manager('4.2', data='demo', ssh=True)
    running = simdata.new_execution('exec-running-1', 'install', 't_prod', 'admin',
                                    'prod-db', 'web-app', {}, is_system=False)
    running['status'] = 'started'
    sim.state.put('executions', running)
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'plan', '--target-version', '4.6', '--json')

    assert result.returncode == 3, result
    document = result.json
    check = _by_id(document)['no-active-executions']
    assert check['status'] == 'fail'
    assert 'exec-running-1' in check['message'] and 't_prod' in check['message']
    assert document['error']['exit_code'] == 3
    assert document['steps'], 'a blocked plan still lists the steps'
    _assert_read_only(sim)
    assert not os.path.exists(_upgrades_dir(cfy_workdir))


@pytest.mark.parametrize('version,target,mode,problem', [
    ('3.4.2', '5.2', 'new-host', 'source-3x-needs-stepping-stone'),
    ('4.1', '4.0.1', 'new-host', 'target-version-too-old'),
    ('3.4.2', '4.2', 'in-place', 'in-place-unsupported'),
    ('4.0.0+patch1', '4.2', 'in-place', 'in-place-certificates'),   # no SSH in the profile
])
def test_plan_refuses_impossible_paths(
        simulated_manager, make_profile, run_cfy, version, target, mode, problem):
    sim = simulated_manager(version, data='empty')
    make_profile('old', sim, ssh=False)
    sim.requests.clear()

    result = run_cfy('upgrade', 'plan', '--mode', mode, '--target-version', target, '--json')

    assert result.returncode == 3, result
    checks = _by_id(result.json)
    assert checks[problem]['status'] == 'fail'
    assert problem in result.stderr       # the reason, named, for humans too
    _assert_read_only(sim)


def test_plan_estimates_the_snapshot_and_blocks_on_a_full_old_host(
        simulated_manager, make_profile, run_cfy, cfy_workdir):  # noqa: F811
    """issue 17 item 22: plan estimates the snapshot's size from what the manager lists,
    the disk it needs (old host, here, new host) and the transfer time at --link-mbps,
    reads `df -Pk` on the old host over SSH, and blocks (source-disk, waivable) when the
    old host has too little room."""
    sim = simulated_manager('4.4', data='demo', ssh=True)
    make_profile('old', sim, ssh=True)
    sim.requests.clear()

    result = run_cfy('upgrade', 'plan', '--target-version', '5.0.5', '--link-mbps', '8',
                     '--json')
    assert result.returncode == 0, result
    estimates = result.json['estimates']
    with sim.state.lock:
        deployments = len(sim.state.all('deployments'))
        blueprints = len(sim.state.all('blueprints'))
        node_instances = len(sim.state.all('node_instances'))
    assert deployments and blueprints and node_instances
    assert estimates['counts']['deployments'] == deployments
    assert estimates['counts']['blueprints'] == blueprints
    assert estimates['counts']['node-instances'] == node_instances
    size = estimates['snapshot_bytes']
    assert 0 < size <= estimates['uncompressed_bytes']
    assert estimates['link_mbps'] == 8
    assert estimates['transfer_seconds']['download'] == round(size * 8 / 8e6)
    assert set(estimates['needs']) == {'old_host', 'local', 'new_host'}
    assert estimates['needs']['local']['workspace'] >= size
    checks = _by_id(result.json)
    assert checks['source-disk']['status'] == 'pass', checks['source-disk']
    assert checks['local-disk']['status'] == 'pass'
    measured = estimates['free']['old_host']['filesystems']
    assert measured and measured[0]['mount'] == '/' and measured[0]['free_bytes'] > 0
    assert any(line.startswith('df -Pk') for line in sim.machine.host.commands)
    _assert_read_only(sim)

    human = run_cfy('upgrade', 'plan', '--target-version', '5.0.5')
    out = human.stdout + human.stderr
    assert 'Estimates' in out and 'Transfer at 100 Mbit/s' in out, out
    assert 'Disk needed on the old manager host' in out

    sim.machine.host.disk_kb = (10 * 1024 * 1024, 1024)     # 1 MiB free on the old host
    blocked = run_cfy('upgrade', 'plan', '--target-version', '5.0.5', '--json')
    assert blocked.returncode == 3, blocked
    check = _by_id(blocked.json)['source-disk']
    assert check['status'] == 'fail' and 'Too little free space' in check['message']
    assert blocked.json['estimates']['free']['old_host']['filesystems'][0][
        'free_bytes'] == 1024 * 1024
    waived = run_cfy('upgrade', 'plan', '--target-version', '5.0.5', '--json',
                     '--waive', 'source-disk', '--reason', 'snapshots go to another disk')
    assert waived.returncode == 0, waived
    assert _by_id(waived.json)['source-disk']['status'] == 'waived'
    bad = run_cfy('upgrade', 'plan', '--link-mbps', '0')
    assert bad.returncode == 2, bad
    _assert_read_only(sim)
    assert not os.path.exists(_upgrades_dir(cfy_workdir))
