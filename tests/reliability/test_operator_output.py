"""Honest output (issue 17 items 15-17), through the real `cfy` against simulated managers.

- o01: `prepare --freeze` reports the maintenance state it left (item 15).
- o02: a second `prepare` after a finished one reuses it; `--new` starts another upgrade and
  keeps the first workspace, marked as superseded (item 16).
- o03-o04: Ctrl-C (SIGINT) inside a step of prepare and of new-host ends with exit 130 and
  "interrupted; run the same command again to resume", the journal records the step as
  interrupted, and the same command finishes the upgrade (item 17).
"""
import json
import os
import signal

from tests import flows
from tests.reliability import harness
from tests.waiting import wait_until

RESUME_TEXT = 'interrupted; run the same command again to resume'


def _report(sc, upgrade_id=None):
    return flows.read_json(os.path.join(sc.workspace(upgrade_id), 'report.json'))


def test_o01_freeze_reports_the_maintenance_state_it_left(managers):
    """prepare --freeze turns maintenance mode on; its output and report say so, never
    "Maintenance mode is off" (the state the check saw before the freeze)."""
    sc = managers
    result = sc.prepare(*flows.prepare_options(extra=('--freeze',)))
    text = result.stdout + result.stderr
    assert sc.old.maintenance_state()['status'] == 'activated'
    assert 'Maintenance mode is off' not in text, harness.show(result)
    assert 'Maintenance mode: activated on the old manager' in text, harness.show(result)
    report = _report(sc)
    assert report['frozen'] is True and report['maintenance'] == 'activated', report
    (check,) = [c for c in report['checks'] if c['id'] == 'maintenance-mode']
    assert 'is off' not in check['message'] and 'activated' in check['message'], check


def test_o02_second_prepare_reuses_the_finished_one_or_starts_anew_with_new(managers):
    """A second prepare (same manager, same mode) reuses the finished upgrade: same id, no
    second snapshot, and says so.  `--new` starts another upgrade (a second snapshot); the
    first workspace stays whole (its snapshot copy too), marked superseded."""
    sc = managers
    sc.prepare()
    (first,) = sc.upgrade_ids()
    again = sc.run(*flows.prepare_args())
    assert again.returncode == 0, harness.show(again)
    text = again.stdout + again.stderr
    assert 'already prepared' in text and '--new' in text, harness.show(again)
    assert sc.upgrade_ids() == [first]
    assert len(flows.requests_matching(sc.old, 'PUT', flows.SNAPSHOT_CREATE)) == 1

    anew = sc.run(*flows.prepare_args(extra=('--new', '--json')))
    assert anew.returncode == 0, harness.show(anew)
    second = anew.json['upgrade_id']
    assert second != first and sorted(sc.upgrade_ids()) == sorted([first, second])
    assert len(flows.requests_matching(sc.old, 'PUT', flows.SNAPSHOT_CREATE,
                                       status=201)) == 2
    old_meta, new_meta = sc.meta(first), sc.meta(second)
    assert old_meta['superseded_by'] == second and new_meta['supersedes'] == first
    zip_path = os.path.join(sc.workspace(first), old_meta['snapshot']['path'])
    assert os.path.isfile(zip_path) and os.path.isfile(zip_path + '.sha256')
    # the next commands default to the new upgrade; the old one is still there by id
    status = sc.run('upgrade', 'status', '--json')
    assert status.json['upgrade_id'] == second, harness.show(status)
    # reusing again picks the newest, unsuperseded one
    third = sc.run(*flows.prepare_args(extra=('--json',)))
    assert third.returncode == 0 and third.json['upgrade_id'] == second, harness.show(third)


def _interrupt(sc, args, pause=None, gate=None):
    """Start `cfy ARGS`, wait until it is inside the step (a pause in Journal.append or a
    held request), send SIGINT as Ctrl-C does, and return its result."""
    extra = {}
    marker = None
    if pause is not None:
        marker = os.path.join(sc.logs_dir, 'interrupt.marker')
        extra['CFY_REL_PAUSE'] = ':'.join(pause)
        extra['CFY_REL_PAUSE_MARKER'] = marker
        extra['PYTHONPATH'] = os.pathsep.join(
            [flows.PAUSE_DIR] + [p for p in [os.environ.get('PYTHONPATH')] if p])
    proc = sc.start(*args, env=extra)
    try:
        if marker is not None:
            wait_until(lambda: os.path.exists(marker), flows.KILL_TIMEOUT, 'the pause', proc=proc)
        if gate is not None:
            wait_until(gate.reached, flows.KILL_TIMEOUT, 'the held request', proc=proc)
        os.kill(proc.pid, signal.SIGINT)
        result = sc.finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        if gate is not None:
            gate.release(drop=True)
    return result


def _assert_interrupted(sc, result, step):
    text = result.stdout + result.stderr
    assert result.returncode == 130, harness.show(result)
    assert RESUME_TEXT in text and step in text, harness.show(result)
    assert 'Traceback' not in text and 'Aborted!' not in text, harness.show(result)
    entries = [e for e in sc.journal() if e['step'] == step]
    assert [e['event'] for e in entries][-2:] == ['started', 'interrupted'], entries
    assert entries[-1]['details'].get('signal') == 'SIGINT', entries[-1]
    status = sc.run('upgrade', 'status', '--json')
    rows = {row['id']: row['status'] for row in status.json['steps']}
    assert rows[step] == 'interrupted', rows


def test_o03_ctrl_c_inside_prepare_download(managers):
    """SIGINT while the snapshot download is held by the old manager: exit 130, the
    resume message, the journal says download-snapshot was interrupted; the same command
    finishes prepare (one snapshot), then the upgrade completes."""
    sc = managers
    gate = sc.gate(sc.old, 'GET', flows.SNAPSHOT_ARCHIVE)
    result = _interrupt(sc, flows.prepare_args(), gate=gate)
    _assert_interrupted(sc, result, 'download-snapshot')

    sc.prepare()
    harness.assert_resumed(sc, 'download-snapshot')
    done = sc.run(*flows.NEW_HOST)
    assert done.returncode == 0, harness.show(done)
    harness.assert_upgraded(sc)


def test_o04_ctrl_c_inside_new_host_start_restore(managers):
    """SIGINT once start-restore has started (before its POST): exit 130 and the message;
    `--json` carries error id interrupted; the same command restores once and finishes."""
    sc = managers
    sc.prepare()
    result = _interrupt(sc, flows.NEW_HOST + ('--json',),
                        pause=('start-restore', 'started', 'after'))
    _assert_interrupted(sc, result, 'start-restore')
    document = json.loads(result.stdout)
    assert document['error']['id'] == 'interrupted', document
    assert document['error']['step'] == 'start-restore', document

    done = sc.run(*flows.NEW_HOST)
    assert done.returncode == 0, harness.show(done)
    harness.assert_resumed(sc, 'start-restore')
    harness.assert_upgraded(sc)
