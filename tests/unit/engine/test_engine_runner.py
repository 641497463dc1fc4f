"""The runner in-process: skip, confirm, failures, resume after failure, fingerprint, log lines."""
import dataclasses
import logging

import pytest

from cloudify_upgrade_plugin.engine.runner import Runner, fingerprint_differences
from cloudify_upgrade_plugin.engine.step import (
    Context, FunctionStep, NotConfirmed, Runbook, Step, validate_step_id)
from cloudify_upgrade_plugin.errors import (
    BlockedError, InputError, StepFailed, UpgradeError)

FP = {'source': {'address': '10.0.0.1', 'version': '4.6'}, 'mode': 'new-host'}


class Recorder(object):
    def __init__(self):
        self.calls = []

    def step(self, step_id, **kwargs):
        def run(ctx):
            self.calls.append(step_id)
            return {'ran': step_id}
        return FunctionStep(step_id, run=kwargs.pop('run', run), **kwargs)


def _events(ws, step_id=None):
    return [(e['step'], e['event']) for e in ws.journal.entries()
            if step_id is None or e['step'] == step_id]


def test_runs_steps_in_order_and_journals(ws):
    rec = Recorder()
    runbook = Runbook('prepare', [rec.step('one'), rec.step('two'), rec.step('three')])
    result = Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert rec.calls == ['one', 'two', 'three']
    assert [s['status'] for s in result['steps']] == ['succeeded'] * 3
    assert result['steps'][0]['details'] == {'ran': 'one'}
    assert _events(ws) == [('one', 'started'), ('one', 'succeeded'), ('two', 'started'),
                           ('two', 'succeeded'), ('three', 'started'),
                           ('three', 'succeeded')]
    meta = ws.meta
    assert meta['fingerprint'] == FP
    assert meta['runbooks'] == [{'name': 'prepare', 'command': 'cfy upgrade prepare',
                                 'steps': [{'id': 'one', 'title': 'One'},
                                           {'id': 'two', 'title': 'Two'},
                                           {'id': 'three', 'title': 'Three'}]}]
    # Second run: nothing is redone.
    Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert rec.calls == ['one', 'two', 'three']
    assert len(_events(ws)) == 6


def test_check_true_skips(ws):
    rec = Recorder()
    runbook = Runbook('prepare', [rec.step('one', check=lambda ctx: True), rec.step('two')])
    Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert rec.calls == ['two']
    assert _events(ws, 'one') == [('one', 'skipped')]


def test_failure_stops_and_resume_reruns_only_the_failed_step(ws):
    rec = Recorder()
    state = {'fail': True}

    def flaky(ctx):
        rec.calls.append('two')
        if state['fail']:
            raise UpgradeError('the manager said no', error_id='manager-said-no',
                               hints=['ask nicely'])

    runbook = Runbook('new-host', [rec.step('one'), rec.step('two', run=flaky),
                                   rec.step('three')])
    with pytest.raises(StepFailed) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    error = info.value
    assert error.step == 'two'
    assert error.error_id == 'manager-said-no'
    assert error.exit_code == 1
    assert 'ask nicely' in error.hints
    assert any('cfy upgrade new-host --upgrade-id upg-test' in h for h in error.hints)
    assert rec.calls == ['one', 'two']
    failed = ws.journal.last_entry('two')
    assert failed['event'] == 'failed'
    assert failed['details']['error_id'] == 'manager-said-no'
    assert failed['details']['message'] == 'the manager said no'
    state['fail'] = False
    Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert rec.calls == ['one', 'two', 'two', 'three']
    assert ws.journal.state() == {'one': 'succeeded', 'two': 'succeeded',
                                  'three': 'succeeded'}


def test_verify_failure_is_a_step_failure(ws):
    def verify(ctx):
        raise UpgradeError('not there', error_id='effect-missing')

    runbook = Runbook('prepare', [FunctionStep('one', run=lambda ctx: None, verify=verify)])
    with pytest.raises(StepFailed) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert info.value.error_id == 'effect-missing'
    assert ws.journal.last_event('one') == 'failed'


def test_unexpected_exception(ws, caplog):
    def broken(ctx):
        raise KeyError('tenant')

    runbook = Runbook('prepare', [FunctionStep('one', run=broken)])
    with caplog.at_level(logging.DEBUG, logger='cloudify.cli.main.upgrade'):
        with pytest.raises(StepFailed) as info:
            Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert info.value.error_id == 'unexpected-error'
    assert "KeyError: 'tenant'" in info.value.message
    assert isinstance(info.value.__cause__, KeyError)
    assert ws.journal.last_entry('one')['details']['error_id'] == 'unexpected-error'
    assert any(record.exc_info for record in caplog.records)


def test_blocked_error_passes_through(ws):
    def blocked(ctx):
        raise BlockedError('a check failed', checks=[{'id': 'x'}])

    runbook = Runbook('prepare', [FunctionStep('checks-step', run=blocked)])
    with pytest.raises(BlockedError) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert info.value.exit_code == 3
    assert info.value.step == 'checks-step'
    assert ws.journal.last_event('checks-step') == 'failed'


def test_check_raising_is_a_step_failure(ws):
    def check(ctx):
        raise UpgradeError('cannot tell', error_id='cannot-tell')

    rec = Recorder()
    runbook = Runbook('prepare', [rec.step('one', check=check)])
    with pytest.raises(StepFailed) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert info.value.error_id == 'cannot-tell'
    assert rec.calls == []


def test_point_of_no_return_asks(ws):
    rec = Recorder()
    asked = []

    def refuse(step):
        asked.append(step.id)
        return False

    runbook = Runbook('new-host', [rec.step('one'),
                                   rec.step('move-agents', point_of_no_return=True)])
    with pytest.raises(NotConfirmed) as info:
        Runner(ws, runbook, FP).run(Context(ws, confirm=refuse))
    assert info.value.error_id == 'not-confirmed'
    assert asked == ['move-agents']
    assert rec.calls == ['one']
    assert ws.journal.last_event('move-agents') is None

    Runner(ws, runbook, FP).run(Context(ws, confirm=lambda step: asked.append(step.id)
                                        or True))
    assert asked == ['move-agents', 'move-agents']
    assert rec.calls == ['one', 'move-agents']


def test_rehearsal_stops_before_the_point_of_no_return_and_the_next_run_goes_on(ws):
    """issue 17 item 21: nothing of the point of no return runs in a rehearsal (not even
    its check or the question); the next run starts there and redoes nothing."""
    rec = Recorder()

    def never(step):
        raise AssertionError('a rehearsal must not ask')

    def checked(ctx):
        rec.calls.append('check cut-over')
        return False

    runbook = Runbook('new-host', [rec.step('one'),
                                   rec.step('cut-over', point_of_no_return=True,
                                            check=checked),
                                   rec.step('three')])
    result = Runner(ws, runbook, FP).run(Context(ws, confirm=never, rehearse=True))
    assert result['rehearsed'] == 'cut-over'
    assert [s['status'] for s in result['steps']] == ['succeeded', 'rehearsed']
    assert rec.calls == ['one']
    assert _events(ws) == [('one', 'started'), ('one', 'succeeded'),
                           ('cut-over', 'rehearsed')]
    # a second rehearsal stops at the same place, still without running anything again
    Runner(ws, runbook, FP).run(Context(ws, confirm=never, rehearse=True))
    assert rec.calls == ['one']
    result = Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert 'rehearsed' not in result
    assert rec.calls == ['one', 'check cut-over', 'cut-over', 'three']
    assert [s['status'] for s in result['steps']] == ['succeeded'] * 3
    # past the point of no return a rehearsal is refused before anything runs
    with pytest.raises(InputError) as info:
        Runner(ws, runbook, FP).run(Context(ws, rehearse=True))
    assert info.value.error_id == 'rehearsal-too-late' and info.value.exit_code == 2
    assert rec.calls == ['one', 'check cut-over', 'cut-over', 'three']


def test_yes_skips_the_question(ws):
    def never(step):
        raise AssertionError('must not ask')

    rec = Recorder()
    runbook = Runbook('new-host', [rec.step('move-agents', point_of_no_return=True)])
    Runner(ws, runbook, FP).run(Context(ws, yes=True, confirm=never))
    assert rec.calls == ['move-agents']


def test_default_confirm_refuses_without_a_terminal(ws, monkeypatch):
    import io
    monkeypatch.setattr('sys.stdin', io.StringIO(''))
    rec = Recorder()
    runbook = Runbook('new-host', [rec.step('move-agents', point_of_no_return=True)])
    with pytest.raises(NotConfirmed):
        Runner(ws, runbook, FP).run(Context(ws))
    assert rec.calls == []


def test_changed_fingerprint_is_refused(ws):
    rec = Recorder()
    runbook = Runbook('prepare', [rec.step('one')])
    Runner(ws, runbook, FP).run(Context(ws, yes=True))
    changed = {'source': {'address': '10.0.0.9', 'version': '4.6'}, 'mode': 'new-host'}
    other = Runbook('prepare', [rec.step('one'), rec.step('two')])
    with pytest.raises(InputError) as info:
        Runner(ws, other, changed).run(Context(ws, yes=True))
    error = info.value
    assert error.error_id == 'fingerprint-changed'
    assert error.exit_code == 2
    assert 'source.address' in error.message
    assert '10.0.0.1' in error.message and '10.0.0.9' in error.message
    assert error.details['changed'] == ['source.address']
    assert rec.calls == ['one']
    assert ws.meta['fingerprint'] == FP


def test_fingerprint_grows_with_new_keys(ws):
    rec = Recorder()
    Runner(ws, Runbook('prepare', [rec.step('one')]), FP).run(Context(ws, yes=True))
    more = dict(FP, target={'address': '10.0.0.2'})
    Runner(ws, Runbook('new-host', [rec.step('two')]), more).run(Context(ws, yes=True))
    assert ws.meta['fingerprint'] == more
    with pytest.raises(InputError):
        Runner(ws, Runbook('new-host', [rec.step('two')]),
               dict(FP, target={'address': '10.0.0.3'})).run(Context(ws, yes=True))
    assert [rb['name'] for rb in ws.meta['runbooks']] == ['prepare', 'new-host']


def test_fingerprint_differences():
    assert fingerprint_differences({'a': {'b': 1, 'c': 2}, 'd': 3},
                                   {'a': {'b': 1, 'c': 5}, 'e': 4}) == [('a.c', 2, 5)]


def test_one_log_line_per_transition(ws, caplog):
    rec = Recorder()
    runbook = Runbook('prepare', [rec.step('one'), rec.step('two', check=lambda c: True)])
    with caplog.at_level(logging.INFO, logger='cloudify.cli.main.upgrade'):
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    messages = [r.getMessage() for r in caplog.records if r.name == 'cloudify.cli.main.upgrade']
    assert messages == ['[1/2] one: started', '[1/2] one: succeeded', '[2/2] two: skipped']


@pytest.mark.parametrize('bad', ['Upload', 'upload_snapshot', '-x', 'x-', 'a--b', '', None])
def test_step_ids_are_kebab_case(bad):
    with pytest.raises(ValueError):
        validate_step_id(bad)
    with pytest.raises(ValueError):
        Step(id=bad)


def test_runbook_refuses_duplicate_steps():
    with pytest.raises(ValueError):
        Runbook('prepare', [FunctionStep('one', run=print), FunctionStep('one', run=print)])


def test_subclassed_step_with_a_typed_context(ws):
    @dataclasses.dataclass(kw_only=True)
    class CountContext(Context):
        count: int = 0

    class Count(Step):
        id = 'count-things'
        title = 'Count things'
        rerunnable = False

        def run(self, ctx):
            ctx.count = 3
            return {'count': 3}

    ctx = CountContext(ws, yes=True)
    Runner(ws, Runbook('prepare', [Count()]), FP).run(ctx)
    assert ctx.count == 3
    assert ws.journal.last_entry('count-things')['details'] == {'count': 3}


def test_ctrl_c_inside_a_step_is_journaled_and_resumed(ws):
    """Ctrl-C (KeyboardInterrupt) inside a step: ``interrupted`` journaled once with the
    signal, ``Interrupted`` (exit 130) names the step; the next run checks and resumes it."""
    from cloudify_upgrade_plugin.errors import Interrupted
    rec = Recorder()
    state = {'interrupt': True}

    def slow(ctx):
        rec.calls.append('two')
        if state['interrupt']:
            raise KeyboardInterrupt()

    runbook = Runbook('prepare', [rec.step('one'), rec.step('two', run=slow),
                                  rec.step('three')])
    with pytest.raises(Interrupted) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert info.value.exit_code == 130 and info.value.step == 'two'
    assert 'interrupted; run the same command again to resume' in info.value.message
    assert _events(ws, 'two') == [('two', 'started'), ('two', 'interrupted')]
    assert ws.journal.last_entry('two')['details']['signal'] == 'SIGINT'
    state['interrupt'] = False
    Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert rec.calls == ['one', 'two', 'two', 'three']
    assert [e for _, e in _events(ws, 'two')] == ['started', 'interrupted', 'resumed',
                                                  'started', 'succeeded']


def test_ctrl_c_before_a_step_started_journals_nothing(ws):
    from cloudify_upgrade_plugin.errors import Interrupted

    def check(ctx):
        raise KeyboardInterrupt()

    runbook = Runbook('prepare', [FunctionStep('one', run=lambda ctx: None, check=check)])
    with pytest.raises(Interrupted) as info:
        Runner(ws, runbook, FP).run(Context(ws, yes=True))
    assert 'had not started' in info.value.message
    assert _events(ws) == []
