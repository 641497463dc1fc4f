"""Checks: all run together, raising checks become failures, waivers, blocked exit code."""
import json
import sys

import click
import pytest
from click.testing import CliRunner

from cloudify_upgrade_plugin.engine.checks import Check, CheckSet, evaluate
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError


def _checkset():
    checks = CheckSet(catalogue=['snapshot-checksum'])
    checks.run('manager-reachable', 'block', lambda: True)
    checks.run('running-executions', 'block',
               lambda: ('fail', '2 executions are running', {'ids': ['e1', 'e2']}))
    checks.run('disk-space', 'block', lambda: 1 / 0)
    checks.run('ssh-access', 'warn', lambda: ('warn', 'no ssh_key in the profile'))
    checks.run('edition', 'info', lambda: Check('edition', 'info', 'pass', 'premium'))

    def upgrade_error():
        raise UpgradeError('update 3 missing', error_id='update-3-missing', hints=['apply it'])
    checks.run('update-3', 'block', upgrade_error)
    return checks


def test_checkset_collects_everything_and_never_crashes():
    checks = _checkset()
    by_id = {check.id: check for check in checks}
    assert list(by_id) == ['manager-reachable', 'running-executions', 'disk-space',
                           'ssh-access', 'edition', 'update-3']
    assert by_id['manager-reachable'].status == 'pass'
    assert by_id['running-executions'].details == {'ids': ['e1', 'e2']}
    assert by_id['disk-space'].status == 'fail'
    assert 'ZeroDivisionError' in by_id['disk-space'].message
    assert by_id['update-3'].status == 'fail'
    assert by_id['update-3'].details['error_id'] == 'update-3-missing'
    assert by_id['ssh-access'].status == 'warn'
    assert 'snapshot-checksum' in checks.known_ids


def test_blocked_lists_every_failed_blocking_check():
    with pytest.raises(BlockedError) as info:
        evaluate(_checkset(), [])
    error = info.value
    assert error.exit_code == 3
    for check_id in ('running-executions', 'disk-space', 'update-3'):
        assert check_id in error.message
    assert '2 executions are running' in error.message
    assert 'ssh-access' not in error.message
    assert [c['id'] for c in error.document['checks']] == [
        'manager-reachable', 'running-executions', 'disk-space', 'ssh-access', 'edition',
        'update-3']
    assert error.document['checks'][1] == {
        'id': 'running-executions', 'severity': 'block', 'status': 'fail',
        'message': '2 executions are running', 'details': {'ids': ['e1', 'e2']}}
    assert any('--waive' in hint for hint in error.hints)


def test_waivers_unblock_and_are_journaled(ws):
    waivers = [{'check': c, 'reason': 'operator accepts the risk'}
               for c in ('running-executions', 'disk-space', 'update-3')]
    result = evaluate(_checkset(), waivers, journal=ws.journal)
    statuses = {check.id: check.status for check in result}
    assert statuses == {'manager-reachable': 'pass', 'running-executions': 'waived',
                        'disk-space': 'waived', 'ssh-access': 'warn', 'edition': 'pass',
                        'update-3': 'waived'}
    waived = [check.to_dict() for check in result if check.status == 'waived']
    assert waived[0]['waiver'] == {'reason': 'operator accepts the risk'}
    entries = ws.journal.entries()
    assert [(e['event'], e['details']['check'], e['details']['reason']) for e in entries] == [
        ('waived', 'running-executions', 'operator accepts the risk'),
        ('waived', 'disk-space', 'operator accepts the risk'),
        ('waived', 'update-3', 'operator accepts the risk')]
    # Check waivers are not step transitions.
    assert ws.journal.state() == {}


def test_partial_waiver_still_blocks_on_the_rest(ws):
    with pytest.raises(BlockedError) as info:
        evaluate(_checkset(), [{'check': 'disk-space', 'reason': 'big disk'}],
                 journal=ws.journal)
    message = info.value.message
    assert 'disk-space' not in message
    assert 'running-executions' in message and 'update-3' in message
    statuses = {c['id']: c['status'] for c in info.value.document['checks']}
    assert statuses['disk-space'] == 'waived'
    assert [e['details']['check'] for e in ws.journal.waivers()] == ['disk-space']


def test_unknown_waiver_lists_known_ids():
    with pytest.raises(InputError) as info:
        evaluate(_checkset(), [{'check': 'no-such-check', 'reason': 'x'}])
    error = info.value
    assert error.error_id == 'unknown-waiver'
    assert error.exit_code == 2
    assert 'no-such-check' in error.message
    assert 'running-executions' in error.message
    assert 'snapshot-checksum' in error.message     # from the catalogue
    assert error.details['known_ids'] == sorted(_checkset().known_ids)


def test_known_ids_beyond_the_checks_that_ran():
    result = evaluate([Check('a', 'block', 'pass', 'ok')], [{'check': 'b', 'reason': 'r'}],
                      known_ids=['a', 'b'])
    assert [check.status for check in result] == ['pass']


def test_waiver_without_reason():
    with pytest.raises(InputError) as info:
        evaluate(_checkset(), [{'check': 'disk-space', 'reason': '  '}])
    assert info.value.error_id == 'waiver-needs-reason'


def test_warn_and_info_failures_do_not_block():
    result = evaluate([Check('a', 'warn', 'fail', 'meh'), Check('b', 'info', 'fail', 'fyi')],
                      [])
    assert [check.status for check in result] == ['fail', 'fail']


def test_bad_check_values():
    with pytest.raises(ValueError):
        Check('a', 'fatal', 'fail', 'x')
    with pytest.raises(ValueError):
        Check('a', 'block', 'broken', 'x')
    checks = CheckSet()
    result = checks.run('weird', 'block', lambda: 42)
    assert result.status == 'fail'


def test_blocked_through_the_cli_boundary_exit_3_and_json(monkeypatch):
    """cli.boundary merges BlockedError.document into the --json document."""
    from cloudify_cli import logger as cli_logger
    from cloudify_upgrade_plugin.cli import boundary

    @click.command()
    @boundary
    def command():
        evaluate(_checkset(), [{'check': 'disk-space', 'reason': 'big disk'}])

    monkeypatch.setattr(cli_logger, 'json_output', True)
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 3, (result.output, result.exception)
    assert result.stdout.count('\n') == 1
    document = json.loads(result.stdout)
    assert document['error']['id'] == 'blocked'
    assert document['error']['exit_code'] == 3
    assert {c['id']: c['status'] for c in document['checks']}['disk-space'] == 'waived'
    assert sys.modules['cloudify_upgrade_plugin.cli'].boundary is boundary


# -- issue 14: checks that cannot be waived, waivers validated once per command ----------

def _registry():
    from cloudify_upgrade_plugin.engine.checks import CheckRegistry
    registry = CheckRegistry('test')

    @registry.check('licence', 'block', unwaivable={'licence': 'the manager refuses it'})
    def licence():
        return 'fail', 'no licence'

    @registry.check('path', 'block', also=('path-x', 'path-y'),
                    unwaivable={'path-y': 'refused by the target'})
    def path():
        return 'pass', 'ok'

    registry.declare('late-one', 'block')
    return registry, licence


def test_registry_knows_what_cannot_be_waived():
    registry, _ = _registry()
    assert registry.ids == {'licence', 'path', 'path-x', 'path-y', 'late-one'}
    assert registry.unwaivable == {'licence': 'the manager refuses it',
                                   'path-y': 'refused by the target'}
    from cloudify_upgrade_plugin.engine.checks import CheckRegistry
    with pytest.raises(ValueError):
        CheckRegistry('bad').check('a', 'block', unwaivable={'b': 'not its id'})


def test_validate_waivers_once_per_command():
    from cloudify_upgrade_plugin.engine.checks import validate_waivers
    registry, _ = _registry()
    assert validate_waivers([{'check': 'path-x', 'reason': 'r'},
                             {'check': 'late-one', 'reason': 'later'}],
                            registry.ids, registry.unwaivable) == {'path-x': 'r',
                                                                   'late-one': 'later'}
    for waiver, error_id in (({'check': 'nonsense', 'reason': 'r'}, 'unknown-waiver'),
                             ({'check': 'licence', 'reason': 'r'}, 'waiver-not-allowed'),
                             ({'check': 'path-x', 'reason': ' '}, 'waiver-needs-reason')):
        with pytest.raises(InputError) as info:
            validate_waivers([waiver], registry.ids, registry.unwaivable)
        assert info.value.error_id == error_id and info.value.exit_code == 2
    with pytest.raises(InputError) as info:
        validate_waivers([{'check': 'path-y', 'reason': 'r'}], registry.ids,
                         registry.unwaivable)
    assert 'refused by the target' in info.value.message


def test_unwaivable_failures_block_and_hints_offer_only_waivable_checks():
    registry, licence = _registry()
    checks = CheckSet(catalogue=registry.ids)
    fixed = checks.run_check(licence)
    assert fixed.not_waivable == 'the manager refuses it' and not fixed.waivable
    assert fixed.to_dict()['not_waivable'] == 'the manager refuses it'
    checks.run('disk', 'block', lambda: ('fail', 'full'))
    with pytest.raises(BlockedError) as info:
        evaluate(checks, [])
    hints = info.value.hints
    assert any('--waive disk' in hint for hint in hints)
    assert not any('--waive licence' in hint for hint in hints)
    assert any(hint.startswith('licence cannot be waived') for hint in hints)
    with pytest.raises(InputError) as info:
        evaluate(checks, [{'check': 'licence', 'reason': 'please'}])
    assert info.value.error_id == 'waiver-not-allowed'
    with pytest.raises(ValueError):
        fixed.waived('please')


def test_only_unwaivable_failures_offer_no_waiver_at_all():
    checks = [Check('route', 'block', 'fail', 'restores nothing', not_waivable='refused')]
    with pytest.raises(BlockedError) as info:
        evaluate(checks, [])
    assert not any('--waive' in hint for hint in info.value.hints)
