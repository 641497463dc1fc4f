"""The example blueprint on cloudify-common's real workflow engine (``cloudify.workflows.local``,
in-process) against a simulated fleet: install, the four upgrade workflows, concurrency,
contained failures naming the failed managers, resume by rerun, and secrets kept out of
runtime properties, events and files.
"""
import threading

import pytest
from cloudify.exceptions import WorkflowFailed

from cloudify_upgrade_plugin.fleet import adapter
from tests.fleet.conftest import NODES, SECRETS
from tests.fleet.simulated import STEPS, SimulatedFleet

ADDRESS = {'region_a': '192.0.2.11', 'region_b': '192.0.2.12', 'region_c': '192.0.2.13'}


def _installed(deploy, backend=None):
    fleet = deploy(backend)
    fleet.execute('install')
    return fleet


def test_install_plans_and_prepares_every_manager_but_does_not_cut_over(deploy):
    fleet = _installed(deploy)
    assert sorted(fleet.backend.called('plan')) == list(NODES)
    assert sorted(fleet.backend.called('prepare')) == list(NODES)
    assert fleet.backend.called('cutover') == []
    assert fleet.status('plan') == {node: 'done' for node in NODES}
    assert fleet.status('prepare') == {node: 'done' for node in NODES}
    assert fleet.status('cutover') == {node: None for node in NODES}


def test_the_adapter_gets_the_connections_with_their_secrets_resolved(deploy):
    fleet = _installed(deploy)
    by_node = {upgrade.node_id: upgrade for upgrade in fleet.backend.upgrades}
    region_c = by_node['region_c']
    assert region_c.old.address == '192.0.2.13' and region_c.old.protocol == 'https'
    assert region_c.old.password == SECRETS['region_c_old_password']
    assert region_c.new.password == SECRETS['region_c_new_password']
    assert region_c.old.ssh.user == 'centos'
    assert region_c.old.ssh.key == SECRETS['manager_ssh_key']
    assert region_c.new.ssh.key == SECRETS['manager_ssh_key'] and region_c.new.ssh.port == 22
    assert region_c.old.port == 443 and region_c.new.port == 443
    assert region_c.users_policy == 'rest-security' and by_node['region_a'].users_policy is None
    assert region_c.target_version == '7.0.4' and region_c.mode == 'new-host'
    # the workspace lives in the deployment's work directory, one per node instance
    instance = fleet.instances()['region_c']
    assert region_c.workspace.startswith(fleet.workdir)
    assert region_c.workspace.endswith('/upgrades/fleet-' + instance.id)


def test_three_managers_with_concurrency_2_are_all_upgraded(deploy, barrier):
    backend = SimulatedFleet(barrier=barrier)
    fleet = _installed(deploy, SimulatedFleet())
    fleet.backend = backend
    with adapter.use_backend(backend):
        fleet.execute('upgrade_cutover', concurrency=2)
    assert sorted(backend.called('cutover')) == list(NODES)
    assert not backend.barrier_broken, 'the first two cut-overs did not run at once'
    assert backend.peak == 2
    assert fleet.status('cutover') == {node: 'done' for node in NODES}
    record = fleet.record('region_a', 'cutover')
    assert [step['id'] for step in record['steps']] == STEPS['cutover']
    assert {step['event'] for step in record['steps']} == {'succeeded'}
    assert record['workflow_id'] == 'upgrade_cutover' and record['error'] is None


def test_concurrency_1_runs_one_manager_at_a_time_in_node_order(deploy):
    fleet = _installed(deploy)
    fleet.backend.reset()
    fleet.execute('upgrade_cutover', concurrency=1)
    assert fleet.backend.called('cutover') == list(NODES)
    assert fleet.backend.peak == 1


def test_one_failing_manager_leaves_the_others_upgraded_and_fails_naming_it(deploy):
    backend = SimulatedFleet(fail={('cutover', ADDRESS['region_b']):
                                   ('start-restore', 'restore-failed')})
    fleet = _installed(deploy, backend)
    with pytest.raises(WorkflowFailed) as failure:
        fleet.execute('upgrade_cutover', concurrency=2)
    message = str(failure.value)
    region_b = fleet.instances()['region_b'].id
    assert 'upgrade_cutover failed on 1 of 3' in message
    assert '{0} (node region_b): [restore-failed]'.format(region_b) in message
    assert 'region_a' not in message and 'region_c' not in message
    assert sorted(backend.called('cutover')) == list(NODES)
    assert fleet.status('cutover') == {'region_a': 'done', 'region_b': 'failed',
                                       'region_c': 'done'}
    error = fleet.record('region_b', 'cutover')['error']
    assert error['id'] == 'restore-failed'
    assert error['hints'] == ['Fix the simulated cause, then run the workflow again.']


def test_a_rerun_after_a_failure_reruns_only_what_is_not_done(deploy):
    backend = SimulatedFleet(fail={('cutover', ADDRESS['region_b']):
                                   ('start-restore', 'restore-failed')})
    fleet = _installed(deploy, backend)
    with pytest.raises(WorkflowFailed):
        fleet.execute('upgrade_cutover', concurrency=2)
    backend.fail.clear()                      # the cause is fixed
    backend.reset()
    fleet.execute('upgrade_cutover', concurrency=2)
    assert backend.called('cutover') == ['region_b']
    assert fleet.status('cutover') == {node: 'done' for node in NODES}
    record = fleet.record('region_b', 'cutover')
    assert record['attempt'] == 2 and record['error'] is None
    # the runbook resumed from its journal: the steps done before the failure were skipped
    events = {step['id']: step['event'] for step in record['steps']}
    assert events['check-target'] == events['upload-snapshot'] == 'skipped'
    assert events['start-restore'] == events['install-agents'] == 'succeeded'


def test_a_rerun_after_a_killed_execution_reruns_the_interrupted_manager(deploy):
    fleet = _installed(deploy)
    fleet.execute('upgrade_cutover', concurrency=3)
    # what SIGKILL of the executing process leaves: a record that never ended
    fleet.set_record('region_c', 'cutover', {'status': 'running', 'execution_id': 'dead',
                                             'attempt': 1, 'steps': []})
    fleet.backend.reset()
    fleet.execute('upgrade_cutover', concurrency=3)
    assert fleet.backend.called('cutover') == ['region_c']
    assert fleet.status('cutover') == {node: 'done' for node in NODES}
    assert fleet.record('region_c', 'cutover')['attempt'] == 2


def test_node_ids_and_node_instance_ids_choose_the_managers(deploy):
    fleet = _installed(deploy)
    region_c = fleet.instances()['region_c'].id
    fleet.execute('upgrade_cutover', node_instance_ids=[region_c])
    assert fleet.backend.called('cutover') == ['region_c']
    fleet.execute('upgrade_cutover', node_ids='region_a')      # one id, not a list
    assert fleet.backend.called('cutover') == ['region_c', 'region_a']
    assert fleet.status('cutover') == {'region_a': 'done', 'region_b': None,
                                       'region_c': 'done'}


def test_an_unknown_node_instance_id_runs_nothing(deploy):
    fleet = _installed(deploy)
    with pytest.raises(WorkflowFailed, match='region_z.*Nothing was run'):
        fleet.execute('upgrade_cutover', node_instance_ids=['region_z'])
    with pytest.raises(WorkflowFailed, match='concurrency must be an integer of at least 1'):
        fleet.execute('upgrade_cutover', concurrency=0)
    assert fleet.backend.called('cutover') == []


def test_rehearse_stops_before_the_point_of_no_return_and_is_not_done(deploy):
    fleet = _installed(deploy)
    fleet.execute('upgrade_cutover', concurrency=3, rehearse=True)
    assert fleet.status('cutover') == {node: 'rehearsed' for node in NODES}
    steps = [step['id'] for step in fleet.record('region_a', 'cutover')['steps']]
    assert 'cut-over' not in steps and steps[-1] == 'reconcile'
    assert {call['rehearse'] for call in fleet.backend.calls
            if call['command'] == 'cutover'} == {True}
    fleet.execute('upgrade_cutover', concurrency=3)
    assert fleet.status('cutover') == {node: 'done' for node in NODES}
    assert len(fleet.backend.called('cutover')) == 6


def test_cutover_needs_prepare_done(deploy):
    backend = SimulatedFleet(fail={('prepare', ADDRESS['region_a']):
                                   ('create-snapshot', 'snapshot-failed')})
    fleet = deploy(backend)
    # cloudify-common's install names the task; the cause is in the runtime properties
    with pytest.raises(WorkflowFailed, match='Task failed: .*fleet.operations.prepare'):
        fleet.execute('install')
    assert fleet.record('region_a', 'prepare')['error']['id'] == 'snapshot-failed'
    with pytest.raises(WorkflowFailed) as failure:
        fleet.execute('upgrade_cutover', concurrency=3)
    assert 'failed on 1 of 3' in str(failure.value)
    assert '[prepare-not-finished]' in str(failure.value)
    assert sorted(backend.called('cutover')) == ['region_b', 'region_c']
    assert fleet.record('region_a', 'cutover')['error']['id'] == 'prepare-not-finished'


def test_verify_heals_needs_the_cutover_and_runs_again_when_done(deploy):
    fleet = _installed(deploy)
    with pytest.raises(WorkflowFailed, match='failed on 3 of 3.*cutover-not-finished'):
        fleet.execute('upgrade_verify_heals')
    fleet.execute('upgrade_cutover', concurrency=3)
    fleet.execute('upgrade_verify_heals')
    fleet.execute('upgrade_verify_heals')
    assert sorted(fleet.backend.called('verify_heals')) == sorted(NODES * 2)
    assert fleet.status('verify_heals') == {node: 'done' for node in NODES}


def test_plan_and_prepare_workflows(deploy):
    fleet = _installed(deploy)
    fleet.backend.reset()
    fleet.execute('upgrade_plan')
    fleet.execute('upgrade_prepare')
    # plan observes (always runs); prepare is done since install (not redone)
    assert sorted(fleet.backend.called('plan')) == list(NODES)
    assert fleet.backend.called('prepare') == []


def test_no_secret_reaches_runtime_properties_events_or_files(deploy, capsys):
    backend = SimulatedFleet(fail={('cutover', ADDRESS['region_b']):
                                   ('start-restore', 'restore-failed')})
    fleet = _installed(deploy, backend)
    with pytest.raises(WorkflowFailed):
        fleet.execute('upgrade_cutover', concurrency=2)
    fleet.execute('upgrade_plan')
    assert backend.upgrades, 'nothing ran'
    output = capsys.readouterr()
    assert 'upgrade cutover' in output.out          # the events were captured
    runtime = repr([instance.runtime_properties for instance in fleet.instances().values()])
    assert "'address': '192.0.2.12'" in runtime      # the description was recorded
    texts = [output.out, output.err, runtime]
    for path in fleet.files():
        with open(path, 'rb') as stream:
            texts.append(stream.read().decode('utf-8', 'replace'))
    for name, value in SECRETS.items():
        leaked = [text[:80] for text in texts if value.strip() in text]
        assert not leaked, '{0} leaked into {1}'.format(name, leaked)


def test_a_ssh_key_without_user_or_a_bad_mode_fails_naming_the_property(deploy, tmp_path):
    blueprint = tmp_path / 'bad.yaml'
    blueprint.write_text(BAD_BLUEPRINT)
    fleet = deploy(blueprint=blueprint)
    with pytest.raises(WorkflowFailed) as failure:
        fleet.execute('upgrade_plan')
    message = str(failure.value)
    assert '[bad-fleet-property] Node property mode' in message
    assert '[bad-fleet-property] Node property old_manager.ssh' in message
    assert fleet.backend.calls == []


def test_start_cuts_over_at_install_only_when_the_node_allows_it(deploy, tmp_path):
    blueprint = tmp_path / 'allowed.yaml'
    blueprint.write_text(ALLOWED_BLUEPRINT)
    fleet = deploy(blueprint=blueprint)
    fleet.execute('install')
    assert fleet.backend.called('cutover') == ['allowed']
    assert fleet.record('allowed', 'cutover')['status'] == 'done'
    assert fleet.record('allowed', 'cutover')['workflow_id'] == 'install'


_NODE = '''
  {name}:
    type: cloudify.nodes.upgrade.ManagedUpgrade
    properties:
      mode: {mode}
      cutover_on_install: {allow}
      old_manager:
        address: 192.0.2.{n}
        password: {{ get_secret: region_a_old_password }}
        ssh: {ssh}
      new_manager:
        address: 198.51.100.{n}
        password: {{ get_secret: region_a_new_password }}
'''
_HEAD = '''tosca_definitions_version: cloudify_dsl_1_4
imports:
  - cloudify/types/types.yaml
  - plugin:cloudify-upgrade-plugin
node_templates:
'''
BAD_BLUEPRINT = _HEAD + _NODE.format(name='bad_mode', mode='sideways', allow='false', n=1,
                                     ssh='{}') + \
    _NODE.format(name='bad_ssh', mode='new-host', allow='false', n=2,
                 ssh='{ key: { get_secret: manager_ssh_key } }')
ALLOWED_BLUEPRINT = _HEAD + _NODE.format(name='allowed', mode='new-host', allow='true', n=3,
                                         ssh='{}')


def test_the_simulated_barrier_detects_calls_that_never_overlap(deploy):
    """The concurrency test above can fail: one lane never meets its barrier partner."""
    backend = SimulatedFleet(barrier=threading.Barrier(2, timeout=1))
    fleet = _installed(deploy, SimulatedFleet())
    with adapter.use_backend(backend):
        fleet.execute('upgrade_cutover', concurrency=1)
    assert backend.barrier_broken and backend.peak == 1


def test_a_failure_before_the_operation_runs_is_named_with_the_task_error(deploy, secret_store):
    fleet = _installed(deploy)
    del secret_store.values['region_b_new_password']     # deleted after deployment
    with pytest.raises(WorkflowFailed) as failure:
        fleet.execute('upgrade_plan', concurrency=3)
    message = str(failure.value)
    region_b = fleet.instances()['region_b'].id
    assert 'failed on 1 of 3' in message
    assert '{0} (node region_b): '.format(region_b) in message
    assert 'SecretNotFound: region_b_new_password' in message   # the task's own error
    assert fleet.status('plan') == {'region_a': 'done', 'region_b': 'done',
                                    'region_c': 'done'}   # region_b's record is install's
    assert fleet.record('region_b', 'plan')['workflow_id'] == 'install'
