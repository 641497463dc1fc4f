"""Issue 17 items 18 and 19 at the engine level: the command skeleton gives every document its
warnings and rewrites the report on every end of a command, with the journal's head."""
import json

import pytest

from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.checks import Check
from cloudify_upgrade_plugin.engine.command import Command
from cloudify_upgrade_plugin.engine.report import REPORT_JSON, REPORT_MD, journal_head
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError


class _Cmd(Command):
    """A command whose check/execute do what the test says."""

    def __init__(self, ws, check_error=None, execute_error=None):
        self.ws = ws
        self.check_error = check_error
        self.execute_error = execute_error
        self.rendered = []

    def check(self):
        self.workspace = self.ws
        self.ws.journal.append('check-target', 'started', {})
        if self.check_error:
            raise self.check_error

    def execute(self):
        self.ws.journal.append('work', 'started', {})
        notices.warn(self.ws, 'users-policy', 'Old users were not restored.', 'work')
        if self.execute_error:
            raise self.execute_error
        self.ws.journal.append('work', 'succeeded', {})

    def failed(self, error):
        document = {'upgrade_id': self.ws.upgrade_id, 'error': error.to_dict()}
        error.document = dict(document, **(error.document or {}))
        return error.document

    def document(self):
        return {'upgrade_id': self.ws.upgrade_id,
                'checks': [Check('target-licence', 'warn', 'warn', 'No licence.').to_dict()]}

    def render(self, document):
        self.rendered.append(document)


def _report(ws):
    return ws.read_json(REPORT_JSON)


def _md(ws):
    with open(ws.path(REPORT_MD), encoding='utf-8') as stream:
        return stream.read()


def _last_hash(ws):
    return ws.journal.entries()[-1]['hash']


def test_success_reports_warnings_and_the_journal_head(ws):
    outcome = _Cmd(ws).run()
    ids = [w['id'] for w in outcome.document['warnings']]
    assert ids == ['users-policy', 'target-licence']
    report = _report(ws)
    assert report['journal'] == {'entries': len(ws.journal.entries()), 'head': _last_hash(ws)}
    assert [w['id'] for w in report['warnings']] == ids
    md = _md(ws)
    assert '## Warnings' in md and '- [target-licence] No licence.' in md
    assert _last_hash(ws) in md


def test_a_blocked_check_rewrites_the_report(ws):
    ws.write_json(REPORT_JSON, {'upgrade_id': ws.upgrade_id, 'stale': True})
    blocked = BlockedError('blocked', error_id='blocked', document={'checks': [
        Check('target-not-clean', 'block', 'fail', 'Not empty.').to_dict()]})
    with pytest.raises(BlockedError) as caught:
        _Cmd(ws, check_error=blocked).run()
    report = _report(ws)
    assert 'stale' not in report
    assert report['error']['id'] == 'blocked'
    assert report['checks'][0]['id'] == 'target-not-clean'
    assert report['journal']['head'] == _last_hash(ws)
    assert caught.value.document['warnings'] == report['warnings']


def test_bad_input_in_check_writes_nothing(ws):
    ws.write_json(REPORT_JSON, {'upgrade_id': ws.upgrade_id, 'stale': True})
    with pytest.raises(InputError):
        _Cmd(ws, check_error=InputError('bad', error_id='bad-name')).run()
    assert _report(ws) == {'upgrade_id': ws.upgrade_id, 'stale': True}


def test_a_failure_reports_the_warnings_so_far(ws):
    with pytest.raises(UpgradeError) as caught:
        _Cmd(ws, execute_error=UpgradeError('boom', error_id='boom')).run()
    report = _report(ws)
    assert report['error']['id'] == 'boom'
    assert [w['id'] for w in report['warnings']] == ['users-policy']
    assert caught.value.document['warnings'] == report['warnings']
    assert report['journal']['head'] == _last_hash(ws)


def test_another_process_holding_the_lock_gets_no_report_from_us(ws):
    ws.write_json(REPORT_JSON, {'upgrade_id': ws.upgrade_id, 'stale': True})
    with ws.lock():
        _Cmd(ws).run()
    assert _report(ws) == {'upgrade_id': ws.upgrade_id, 'stale': True}


def test_journal_head_of_an_empty_journal(ws):
    assert journal_head(ws) == {'entries': 0, 'head': '0' * 64}


def test_warn_keeps_one_per_id_and_step_and_masks_secrets(ws):
    from cloudify_upgrade_plugin.engine.redact import register_secret
    register_secret('s3cr3t-value')
    notices.warn(ws, 'x', 'first s3cr3t-value', 'a')
    notices.warn(ws, 'x', 'second', 'a')
    notices.warn(ws, 'x', 'other step', 'b')
    assert [(w['step'], w['message']) for w in ws.meta['warnings']] == [
        ('a', 'second'), ('b', 'other step')]
    notices.warn(ws, 'y', 'a s3cr3t-value here')
    assert 's3cr3t-value' not in json.dumps(ws.meta['warnings'])


def test_collect_reads_the_checks_kept_in_the_workspace(ws):
    ws.update_meta(checks=[{'id': 'no-active-executions', 'status': 'warn', 'message': 'm1'},
                           {'id': 'source-healthy', 'status': 'pass', 'message': 'ok'}],
                   target_checks=[{'id': 'target-licence', 'status': 'warn',
                                   'message': 'm2'}])
    found = notices.collect(ws, [{'id': 'target-licence', 'status': 'warn',
                                  'message': 'm2'}])
    assert [(w['id'], w['step']) for w in found] == [
        ('no-active-executions', 'check-source'), ('target-licence', 'check-target')]
    assert notices.lines(found)[0] == 'Warning [no-active-executions]: m1'
