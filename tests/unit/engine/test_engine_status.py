"""`cfy upgrade status` through cfy's real root group, and the report files."""
import json

import pytest
from click.testing import CliRunner

from cloudify_upgrade_plugin.engine import summary as status_module
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, FunctionStep, Runbook
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import StepFailed, UpgradeError
from cloudify_upgrade_plugin.registration import cfy_root

FP = {'source': {'address': '10.0.0.1'}}


def _fail(ctx):
    raise UpgradeError('snapshot failed on the manager', error_id='snapshot-failed')


def _prepare_like(ws):
    runbook = Runbook('prepare', [
        FunctionStep('check-source', title='Check the old manager', run=lambda ctx: None),
        FunctionStep('freeze', run=lambda ctx: None, check=lambda ctx: True),
        FunctionStep('create-snapshot', title='Create a snapshot', run=_fail),
        FunctionStep('download-snapshot', run=lambda ctx: None),
    ])
    with pytest.raises(StepFailed):
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    return runbook


def _invoke(*args):
    return CliRunner().invoke(cfy_root(), ['upgrade', 'status'] + list(args))


def test_status_json_document(ws):
    _prepare_like(ws)
    result = _invoke('--json')
    assert result.exit_code == 0, (result.output, result.exception)
    document = json.loads(result.stdout)
    assert set(document) == {'upgrade_id', 'mode', 'status', 'steps', 'next'}
    assert document['status'] == 'failed'
    assert document['upgrade_id'] == 'upg-test'
    assert document['mode'] == 'new-host'
    assert document['next'] == 'cfy upgrade prepare --upgrade-id upg-test'
    steps = document['steps']
    assert [(s['id'], s['status']) for s in steps] == [
        ('check-source', 'succeeded'), ('freeze', 'skipped'), ('create-snapshot', 'failed'),
        ('download-snapshot', 'pending')]
    for step in steps:
        assert {'id', 'status', 'started_at', 'ended_at'} <= set(step)
    assert steps[0]['started_at'].endswith('Z') and steps[0]['ended_at'].endswith('Z')
    assert steps[0]['started_at'] <= steps[0]['ended_at']
    assert steps[1]['started_at'] is None and steps[1]['ended_at'].endswith('Z')
    assert steps[2]['error_id'] == 'snapshot-failed'
    assert steps[3]['started_at'] is None and steps[3]['ended_at'] is None
    assert steps[0]['title'] == 'Check the old manager'
    assert steps[0]['runbook'] == 'prepare'


def test_status_human_output(ws):
    _prepare_like(ws)
    result = _invoke('--upgrade-id', 'upg-test')
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    for text in ('check-source', 'succeeded', 'create-snapshot', 'failed', 'snapshot-failed',
                 'download-snapshot', 'pending',
                 'Next: cfy upgrade prepare --upgrade-id upg-test'):
        assert text in out, out


def test_status_picks_the_most_recent_and_follows_up(workdir):
    older = Workspace.create('upg-older', mode='new-host')
    Runner(older, Runbook('prepare', [FunctionStep('one', run=lambda c: None)]), FP).run(
        Context(older, yes=True))
    newer = Workspace.create('upg-newer', mode='in-place')
    Runner(newer, Runbook('prepare', [FunctionStep('one', run=lambda c: None)]), FP).run(
        Context(newer, yes=True))
    document = json.loads(_invoke('--json').stdout)
    assert document['upgrade_id'] == 'upg-newer'
    assert document['next'] == 'cfy upgrade in-place --upgrade-id upg-newer'
    Runner(newer, Runbook('in-place', [FunctionStep('two', run=lambda c: None)]), FP).run(
        Context(newer, yes=True))
    document = json.loads(_invoke('--json').stdout)
    assert [s['id'] for s in document['steps']] == ['one', 'two']
    assert document['next'] == 'cfy upgrade verify-heals --upgrade-id upg-newer'
    older_doc = json.loads(_invoke('--json', '--upgrade-id', 'upg-older').stdout)
    assert older_doc['next'] == 'cfy upgrade new-host --upgrade-id upg-older'


def test_status_interrupted_and_running(ws):
    Runner(ws, Runbook('prepare', [FunctionStep('one', run=lambda c: None)]), FP).run(
        Context(ws, yes=True))
    ws.record_runbook('new-host', [FunctionStep('upload', run=print)])
    ws.journal.append('upload', 'started')
    assert status_module.summarize(ws)['steps'][1]['status'] == 'interrupted'
    with ws.lock():
        document = status_module.summarize(ws)
    assert document['steps'][1]['status'] == 'running'
    assert document['next'] is None


def test_status_without_workspace_exit_2(workdir):
    result = _invoke('--json')
    assert result.exit_code == 2
    assert json.loads(result.stdout)['error']['id'] == 'workspace-not-found'


def test_status_of_tampered_journal_exit_2(ws):
    _prepare_like(ws)
    with open(ws.journal.path, 'rb') as stream:
        lines = stream.read().splitlines(keepends=True)
    with open(ws.journal.path, 'wb') as stream:
        stream.write(b''.join(lines[1:]))
    result = _invoke('--json')
    assert result.exit_code == 2   # bad input: a workspace it cannot trust
    assert json.loads(result.stdout)['error']['id'] == 'journal-tampered'


def test_report_files(ws):
    _prepare_like(ws)
    from cloudify_upgrade_plugin.engine.checks import Check, evaluate
    evaluate([Check('running-executions', 'block', 'fail', '1 running')],
             [{'check': 'running-executions', 'reason': 'it is a cron job'}],
             journal=ws.journal)
    doc = {'upgrade_id': ws.upgrade_id, 'mode': 'new-host',
           'checks': [{'id': 'running-executions', 'severity': 'block', 'status': 'waived',
                       'message': '1 running'}],
           'left_to_do': ['Tear down the old manager after verify-heals.']}
    json_path, md_path = write_report(ws, doc)
    entries = ws.journal.entries()
    head = {'entries': len(entries), 'head': entries[-1]['hash']}
    with open(json_path) as stream:
        assert json.load(stream) == dict(doc, journal=head)
    with open(md_path) as stream:
        md = stream.read()
    assert '- journal: {0} entries, head {1}'.format(len(entries), entries[-1]['hash']) in md
    assert '2 done, 1 failed, 1 pending.' in md
    assert '| prepare | create-snapshot | failed |' in md
    assert 'running-executions (' in md and 'it is a cron job' in md
    assert 'Run `cfy upgrade prepare --upgrade-id upg-test`.' in md
    assert 'Tear down the old manager after verify-heals.' in md
    assert 'Step download-snapshot (prepare): pending.' in md


def _heals_run(ws, event, **details):
    ws.journal.append('verify-heals', 'started', {})
    ws.journal.append('verify-heals', event, details)


def test_status_shows_the_latest_real_verify_heals_result(workdir):
    """Issue 15: only a complete, clean verify-heals is `succeeded`; a failed or incomplete
    one leaves verify-heals as the next command and shows its error id."""
    ws = Workspace.create('upg-heals', mode='new-host')
    Runner(ws, Runbook('new-host', [FunctionStep('one', run=lambda c: None)]), FP).run(
        Context(ws, yes=True))

    def row_and_next():
        document = json.loads(_invoke('--json', '--upgrade-id', 'upg-heals').stdout)
        row = next(s for s in document['steps'] if s['id'] == 'verify-heals')
        return row['status'], row.get('error_id'), document['next']

    _heals_run(ws, 'succeeded', ok=True, complete=True, healing_active=False)
    assert row_and_next() == ('succeeded', None, None)
    _heals_run(ws, 'failed', ok=True, complete=False, error_id='heals-incomplete')
    assert row_and_next() == ('failed', 'heals-incomplete',
                              'cfy upgrade verify-heals --upgrade-id upg-heals')
    _heals_run(ws, 'failed', ok=False, complete=True, error_id='heals-suspicious')
    assert row_and_next()[:2] == ('failed', 'heals-suspicious')
    # an old-style record (before issue 15: always `succeeded`) that was not clean
    _heals_run(ws, 'succeeded', ok=False, complete=True, healing_active=False)
    assert row_and_next()[2] == 'cfy upgrade verify-heals --upgrade-id upg-heals'


def test_a_later_command_keeps_the_verify_heals_section_of_the_report(ws):
    write_report(ws, {'verify_heals': {'ok': False, 'complete': True},
                      'left_to_do': ['verify-heals: heal h1 on the old manager', 'other']})
    write_report(ws, {'upgrade_id': 'upg-test', 'left_to_do': ['Keep the old manager.']})
    report = ws.read_json('report.json')
    assert report['verify_heals'] == {'ok': False, 'complete': True}
    assert report['left_to_do'] == ['Keep the old manager.',
                                    'verify-heals: heal h1 on the old manager']
    # the command that owns the section replaces it
    write_report(ws, {'verify_heals': {'ok': True, 'complete': True}, 'left_to_do': []})
    report = ws.read_json('report.json')
    assert report['journal']['entries'] == 0       # item 19: the journal's head, an empty one
    assert {k: v for k, v in report.items() if k != 'journal'} == {
        'verify_heals': {'ok': True, 'complete': True}, 'left_to_do': []}


def _new_host_like(ws, rehearse):
    runbook = Runbook('new-host', [
        FunctionStep('restore', run=lambda ctx: None),
        FunctionStep('cut-over', run=lambda ctx: None, point_of_no_return=True),
        FunctionStep('install-agents', run=lambda ctx: None)])
    return Runner(ws, runbook, FP).run(Context(ws, yes=True, rehearse=rehearse))


def test_status_of_a_rehearsal_then_of_its_continuation(ws):
    """issue 17 item 21: `status` says "rehearsed" until the cut-over runs, and the next
    command is the same one without --rehearse."""
    _new_host_like(ws, rehearse=True)
    human = _invoke().stdout      # first: --json stays on for the rest of the process
    assert 'Status: rehearsed' in human and 'still in charge' in human, human
    result = _invoke('--json')
    assert result.exit_code == 0, (result.output, result.exception)
    document = json.loads(result.stdout)
    assert document['status'] == 'rehearsed'
    assert [(s['id'], s['status']) for s in document['steps']] == [
        ('restore', 'succeeded'), ('cut-over', 'pending'), ('install-agents', 'pending')]
    assert document['next'] == 'cfy upgrade new-host --upgrade-id upg-test'
    write_report(ws, {'status': 'rehearsed'})
    assert '- status: rehearsed' in open(ws.path('report.md')).read()
    _new_host_like(ws, rehearse=False)
    document = json.loads(_invoke('--json').stdout)
    assert document['status'] == 'in-progress'     # verify-heals is next
    assert document['next'] == 'cfy upgrade verify-heals --upgrade-id upg-test'
