"""The runner survives SIGKILL inside any step, and a second process fails fast on the lock."""
import json
import os
import signal

import pytest

from cloudify_upgrade_plugin.engine.journal import Journal
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, FunctionStep, Runbook
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import UpgradeError
from tests.waiting import wait_until

STEP_IDS = ['alpha', 'bravo', 'charlie', 'delta']
UPGRADE_ID = 'upg-crash'
POLL_LIMIT = 60.0   # seconds; only a safety net against a hung test, never asserted on


def _stderr_once_ended(proc):
    """What the script printed on stderr, once it ended (its pipe is read only then)."""
    if proc.poll() is None:
        return '(the script is still running)'
    return 'stderr={0}'.format(proc.stderr.read().decode())


def _journal(workdir):
    return Journal(os.path.join(str(workdir), '.cloudify', 'upgrades', UPGRADE_ID,
                                'journal.jsonl'))


def _effects(effects_dir):
    path = os.path.join(str(effects_dir), 'effects.log')
    with open(path) as stream:
        return stream.read().split()


def _kill_inside(run_script, workdir, effects_dir, step, phase):
    proc = run_script('run', UPGRADE_ID, effects_dir,
                      env={'CRASH_HANG': '{0}:{1}'.format(step, phase)}, wait=False)
    hanging = os.path.join(str(effects_dir), 'hanging')
    try:
        wait_until(lambda: os.path.exists(hanging), POLL_LIMIT,
                   'the kill point {0}:{1}'.format(step, phase), proc=proc,
                   describe=lambda: _stderr_once_ended(proc))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    os.unlink(hanging)
    # The process died inside the step: its last journal event is "started".
    assert _journal(workdir).last_event(step) == 'started'


@pytest.mark.parametrize('phase', ['run', 'after'])
@pytest.mark.parametrize('step', STEP_IDS)
def test_killed_inside_each_step_resumes_and_completes_once(run_script, workdir, tmp_path,
                                                            step, phase):
    effects_dir = tmp_path / 'effects'
    effects_dir.mkdir()
    _kill_inside(run_script, workdir, effects_dir, step, phase)

    result = run_script('run', UPGRADE_ID, effects_dir)
    if step == 'bravo' and phase == 'run':
        # Not rerunnable and its effect is not in place: refused, nothing re-run.
        assert result.returncode == 1, result
        error = json.loads(result.stdout)['error']
        assert error['id'] == 'step-interrupted'
        assert error['step'] == 'bravo'
        assert 'end:bravo' not in _effects(effects_dir)
        assert _effects(effects_dir).count('start:bravo') == 1
        # Refused again on the next run, still without running it.
        again = run_script('run', UPGRADE_ID, effects_dir)
        assert again.returncode == 1
        assert json.loads(again.stdout)['error']['id'] == 'step-interrupted'
        assert _effects(effects_dir).count('start:bravo') == 1
        # The operator completes it by hand; the next run records it as recovered.
        with open(os.path.join(str(effects_dir), 'effects.log'), 'a') as stream:
            stream.write('end:bravo\n')
        result = run_script('run', UPGRADE_ID, effects_dir)
    assert result.returncode == 0, result
    assert [s['status'] for s in json.loads(result.stdout)['steps']] == ['succeeded'] * 4

    effects = _effects(effects_dir)
    for step_id in STEP_IDS:
        assert effects.count('end:' + step_id) == 1, (step_id, effects)
        starts = effects.count('start:' + step_id)
        assert starts == (2 if (step_id == step and phase == 'run' and step != 'bravo')
                          else 1), (step_id, effects)

    journal = _journal(workdir)
    events = [(e['step'], e['event']) for e in journal.entries()]
    killed = [event for step_id, event in events if step_id == step]
    if phase == 'after':
        assert killed == ['started', 'interrupted', 'succeeded']
        recovered = journal.last_entry(step)
        assert recovered['details']['recovered'] is True
    elif step == 'bravo':
        assert killed == ['started', 'interrupted', 'failed', 'failed', 'succeeded']
        assert journal.last_entry(step)['details']['recovered'] is True
    else:
        assert killed == ['started', 'interrupted', 'resumed', 'started', 'succeeded']
    # Steps before the killed one ran once; none of them was touched again.
    for step_id in STEP_IDS:
        if step_id != step:
            assert [event for s, event in events if s == step_id] == ['started', 'succeeded']
    assert journal.state() == {step_id: 'succeeded' for step_id in STEP_IDS}

    # A further run does nothing at all.
    final = run_script('run', UPGRADE_ID, effects_dir)
    assert final.returncode == 0
    assert _effects(effects_dir) == effects
    assert len(journal.entries()) == len(events)


def test_second_process_fails_fast_on_the_lock(run_script, workdir, tmp_path):
    effects_dir = tmp_path / 'effects'
    effects_dir.mkdir()
    holder = run_script('hold-lock', UPGRADE_ID, effects_dir, wait=False)
    try:
        wait_until(lambda: os.path.exists(os.path.join(str(effects_dir), 'locked')),
                   POLL_LIMIT, 'the lock held by the script', proc=holder,
                   describe=lambda: _stderr_once_ended(holder))
        workspace = Workspace.open(UPGRADE_ID)
        ran = []
        runbook = Runbook('prepare', [FunctionStep('only', run=lambda ctx: ran.append(1))])
        with pytest.raises(UpgradeError) as info:
            Runner(workspace, runbook, {'a': 1}).run(Context(workspace, yes=True))
        assert info.value.error_id == 'workspace-locked'
        assert UPGRADE_ID in info.value.message
        assert 'another `cfy upgrade`' in info.value.message
        assert ran == []
        assert workspace.journal.entries() == []
        # Another process (the script) is refused the same way.
        second = run_script('run', UPGRADE_ID, effects_dir)
        assert second.returncode == 1
        assert json.loads(second.stdout)['error']['id'] == 'workspace-locked'
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
    # The dead holder's lock is gone with it.
    Runner(workspace, runbook, {'a': 1}).run(Context(workspace, yes=True))
    assert ran == [1]


def test_same_process_second_lock_is_refused(ws):
    with ws.lock():
        with pytest.raises(UpgradeError) as info:
            with ws.lock():
                pass  # pragma: no cover - must not be reached
        assert info.value.error_id == 'workspace-locked'
        # The refused attempt did not drop the lock we hold.
        with pytest.raises(UpgradeError):
            with Workspace.open(ws.upgrade_id).lock():
                pass  # pragma: no cover
    with ws.lock():
        pass
