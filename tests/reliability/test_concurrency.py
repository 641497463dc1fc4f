"""Concurrency (issue 9 item 4): only one `cfy upgrade` process works on a workspace.

The first run is held inside a step (a request of the target is held), so it certainly owns
the workspace lock while the second run starts; the second must fail fast with
``workspace-locked`` (it ends while the first is still held: no timing involved), change
nothing, and the first must then finish the upgrade normally.
"""
import pytest

from tests import flows
from tests.reliability import harness
from tests.waiting import wait_until


def _new_host_held_in_upload(sc):
    """Start new-host and return (its process, the gate) once its upload is held."""
    gate = sc.gate(sc.new, 'PUT', flows.SNAPSHOT_ARCHIVE)
    first = sc.start(*flows.NEW_HOST)
    wait_until(gate.reached, flows.KILL_TIMEOUT, 'the first run inside upload-snapshot',
               proc=first)
    return first, gate


def _locked(result):
    text = result.stdout + result.stderr
    return result.returncode != 0 and 'Error [workspace-locked]' in text and \
        'Possible solutions:' in text


def test_c01_two_new_host_runs(managers):
    """Two new-host runs on one workspace: the second fails fast with workspace-locked and
    changes nothing (no request, no journal line); the first finishes the upgrade."""
    sc = managers
    sc.prepare()
    first, gate = _new_host_held_in_upload(sc)
    marks = (len(sc.old.requests), len(sc.new.requests))
    journal_before = sc.journal()
    second = sc.run(*flows.NEW_HOST)
    assert first.poll() is None, 'the first run ended while its request was held'
    assert _locked(second), harness.show(second)
    assert flows.mutations(sc.old, marks[0]) == []
    assert flows.mutations(sc.new, marks[1]) == []
    assert sc.journal() == journal_before       # the second run journaled nothing
    gate.release()
    result = sc.finish(first)
    assert result.returncode == 0, harness.show(result)
    harness.assert_upgraded(sc)


@pytest.mark.slow
def test_c02_status_while_new_host_runs(managers):
    """`status` reads the workspace without taking the lock: it works during a run."""
    sc = managers
    sc.prepare()
    gate = sc.gate(sc.new, 'POST', flows.SNAPSHOT_RESTORE)
    first = sc.start(*flows.NEW_HOST)
    wait_until(gate.reached, flows.KILL_TIMEOUT, 'the first run inside start-restore',
               proc=first)
    status = sc.run('upgrade', 'status', '--json')
    assert status.returncode == 0, harness.show(status)
    steps = {s['id']: s['status'] for s in status.json['steps']}
    assert steps.get('upload-snapshot') == 'succeeded'
    assert steps.get('start-restore') in ('started', 'running', 'in-progress'), steps
    gate.release()
    assert sc.finish(first).returncode == 0
    harness.assert_upgraded(sc)


def test_c03_two_prepare_runs_same_upgrade_id(managers):
    """Two `prepare --upgrade-id X` at once: one proceeds, the other fails fast."""
    sc = managers
    args = flows.prepare_args(extra=('--upgrade-id', 'upg-twice'))
    gate = sc.gate(sc.old, 'PUT', flows.SNAPSHOT_CREATE)
    first = sc.start(*args)
    wait_until(gate.reached, flows.KILL_TIMEOUT, 'the first run inside create-snapshot',
               proc=first)
    mark = len(sc.old.requests)
    second = sc.run(*args)
    assert first.poll() is None
    assert _locked(second), harness.show(second)
    assert flows.mutations(sc.old, mark) == []
    gate.release()
    result = sc.finish(first)
    assert result.returncode == 0, harness.show(result)
    assert len(flows.executions(sc.old, 'create_snapshot')) == 1
    sc.record_server_snapshot()
    harness.assert_snapshot_intact(sc)


@pytest.mark.slow
def test_c04_in_place_against_running_new_host(managers):
    """An in-place run on a workspace a new-host run holds: refused (locked or wrong mode),
    nothing changed."""
    sc = managers
    sc.prepare()
    first, gate = _new_host_held_in_upload(sc)
    marks = (len(sc.old.requests), len(sc.new.requests))
    second = sc.run(*flows.IN_PLACE)
    assert first.poll() is None
    text = second.stdout + second.stderr
    assert second.returncode != 0 and ('workspace-locked' in text or 'wrong-mode' in text), \
        harness.show(second)
    assert flows.mutations(sc.old, marks[0]) == []
    assert flows.mutations(sc.new, marks[1]) == []
    gate.release()
    assert sc.finish(first).returncode == 0
