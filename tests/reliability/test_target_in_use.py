"""A target another upgrade is using (issue 17 item 9), through the real `cfy` against
simulated managers.

- u01: another machine (its own cfy workdir) is restoring onto the target: check-target
  fails with target-in-use (exit 3) and this run changes nothing on the target.
- u02: another machine uploaded its snapshot to the target and stopped: the same; that
  upgrade's own resume (same workspace, snapshot already uploaded) is not flagged and
  finishes.
- u03: another workspace of this machine started uploading (nothing on the target yet):
  refused from the local journal, naming that upgrade.
"""
import os

from tests import flows
from tests.reliability import harness


def _other_machine(sc, simulated_manager, tmp_path):
    """A second operator (another cfy workdir) with its own old 4.1 manager and the same
    new manager as ``sc``."""
    other = flows.Flow(tmp_path / 'machine-b', tmp_path / 'machine-b-logs')
    old = simulated_manager('4.1', data='demo', ssh=True,
                            admin_password=flows.OLD_ADMIN_PASSWORD)
    other.profile('new', sc.new, activate=False)
    other.profile('old', old)
    other.old, other.new = old, sc.new
    return other


def _assert_refused(result, sc, mark, *words):
    text = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    assert 'target-in-use' in text, harness.show(result)
    for word in words:
        assert word in text, (word, harness.show(result))
    assert 'Traceback' not in text
    # nothing uploaded, nothing restored: the target received no change at all
    assert flows.mutations(sc.new, mark) == [], flows.mutations(sc.new, mark)


def test_u01_another_machine_is_restoring(managers, simulated_manager, tmp_path):
    sc = managers
    sc.prepare()
    sc.new.faults.hang_execution(workflow_id='restore_snapshot')
    sc.crash(*flows.NEW_HOST, until=lambda: flows.executions(sc.new, 'restore_snapshot'))
    (restore,) = flows.executions(sc.new, 'restore_snapshot')
    other = _other_machine(sc, simulated_manager, tmp_path)
    other.prepare()
    snapshots_before = sorted(s['id'] for s in sc.new.state.all('snapshots'))

    mark = len(sc.new.requests)
    result = other.run(*flows.NEW_HOST)
    _assert_refused(result, sc, mark, restore['id'], 'restore')
    assert sorted(s['id'] for s in sc.new.state.all('snapshots')) == snapshots_before
    assert other.snapshot_id not in snapshots_before


def test_u02_another_machine_uploaded_and_its_own_resume_is_not_flagged(
        managers, simulated_manager, tmp_path):
    sc = managers
    sc.prepare()
    sid = sc.snapshot_id
    sc.crash(*flows.NEW_HOST, pause=('start-restore', 'started', 'after'),
             inside='start-restore')
    assert [s['id'] for s in sc.new.state.all('snapshots')] == [sid]
    other = _other_machine(sc, simulated_manager, tmp_path)
    other.prepare()

    mark = len(sc.new.requests)
    result = other.run(*flows.NEW_HOST)
    _assert_refused(result, sc, mark, sid)
    assert [s['id'] for s in sc.new.state.all('snapshots')] == [sid]   # no orphan

    resumed = sc.run(*flows.NEW_HOST)
    assert resumed.returncode == 0, harness.show(resumed)
    harness.assert_upgraded(sc)


def test_u03_another_workspace_here_started_uploading(managers):
    sc = managers
    sc.prepare()
    (first,) = sc.upgrade_ids()
    sc.crash(*flows.NEW_HOST, pause=('upload-snapshot', 'started', 'after'),
             inside='upload-snapshot')
    assert sc.new.state.all('snapshots') == []
    again = sc.run(*flows.prepare_args(extra=('--new', '--json')))
    assert again.returncode == 0, harness.show(again)
    second = again.json['upgrade_id']

    mark = len(sc.new.requests)
    result = sc.run(*(flows.NEW_HOST + ('--upgrade-id', second)))
    _assert_refused(result, sc, mark, first)
    assert sc.new.state.all('snapshots') == []
    assert os.path.isdir(sc.workspace(first))
