"""A simulated fleet: the adapter backend the fleet tests install with ``adapter.use_backend``.

It stands where the runbooks will be (``RunbooksBackend``) and behaves like them at the
seam: per command a fixed list of steps, each reported through ``progress`` as the Runner
does (``started`` then ``succeeded``, ``skipped`` when a previous run finished it: a
per-upgrade journal kept in the upgrade's workspace directory), an ``Outcome`` at the end,
an ``UpgradeError`` when told to fail.  It records every call (command, node instance,
managers' addresses, rehearse, the connections it was given) and how many calls ran at
once, and it can hold the first calls at a barrier to prove they overlap.
"""
import json
import os
import threading

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.fleet.adapter import DONE, REHEARSED, Outcome, StepEvent

STEPS = {
    'plan': ['source-checks'],
    'prepare': ['create-snapshot', 'download-snapshot', 'backup-host-files'],
    # the cut-over's point of no return is 'cut-over'; a rehearsal stops before it
    'cutover': ['check-target', 'upload-snapshot', 'start-restore', 'follow-credentials',
                'reconcile', 'cut-over', 'install-agents'],
    'verify_heals': ['list-heals'],
}
POINT_OF_NO_RETURN = 'cut-over'


class SimulatedFleet:

    def __init__(self, fail=None, barrier=None):
        """``fail``: {(command, old manager address): (step id, error id)};
        ``barrier``: a threading.Barrier (with a timeout) the first ``parties`` calls wait
        at; ``barrier_broken`` tells that they did not all arrive together."""
        self.fail = dict(fail or {})
        self.barrier = barrier
        self.barrier_broken = False
        self.calls = []
        self.upgrades = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    # -- the Backend protocol ---------------------------------------------------------------

    def plan(self, upgrade, progress):
        return self._run('plan', upgrade, progress)

    def prepare(self, upgrade, progress):
        return self._run('prepare', upgrade, progress)

    def cutover(self, upgrade, progress, rehearse):
        return self._run('cutover', upgrade, progress, rehearse=rehearse)

    def verify_heals(self, upgrade, progress):
        return self._run('verify_heals', upgrade, progress)

    # -- what the tests read ------------------------------------------------------------------

    def reset(self):
        """Forget the calls so far (and the peak of calls at once)."""
        with self._lock:
            self.calls.clear()
            self.upgrades.clear()
            self.peak = self.active

    def called(self, command):
        """Node ids the command was called for, in call order."""
        return [call['node_id'] for call in self.calls if call['command'] == command]

    # -- the simulation -------------------------------------------------------------------------

    def _run(self, command, upgrade, progress, rehearse=False):
        with self._lock:
            self.calls.append({'command': command, 'node_id': upgrade.node_id,
                               'instance_id': upgrade.instance_id,
                               'old': upgrade.old.address, 'new': upgrade.new.address,
                               'rehearse': rehearse})
            self.upgrades.append(upgrade)
            self.active += 1
            self.peak = max(self.peak, self.active)
            gated = self.barrier is not None and len(self.calls) <= self.barrier.parties
        try:
            if gated:
                try:
                    self.barrier.wait()
                except threading.BrokenBarrierError:
                    self.barrier_broken = True
            return self._steps(command, upgrade, progress, rehearse)
        finally:
            with self._lock:
                self.active -= 1

    def _steps(self, command, upgrade, progress, rehearse):
        journal = _Journal(upgrade.workspace)
        steps = STEPS[command]
        if rehearse:
            steps = steps[:steps.index(POINT_OF_NO_RETURN)]
        failing = self.fail.get((command, upgrade.old.address))
        for index, step in enumerate(steps, 1):
            if command in ('prepare', 'cutover') and journal.done(command, step):
                progress(StepEvent(step, 'skipped', index, len(steps)))
                continue
            progress(StepEvent(step, 'started', index, len(steps)))
            if failing and failing[0] == step:
                journal.append(command, step, 'failed')
                progress(StepEvent(step, 'failed', index, len(steps)))
                raise UpgradeError('Step {0} failed on {1} (simulated).'.format(
                    step, upgrade.old.address), error_id=failing[1],
                    hints=['Fix the simulated cause, then run the workflow again.'])
            journal.append(command, step, 'succeeded')
            progress(StepEvent(step, 'succeeded', index, len(steps)))
        return Outcome(REHEARSED if rehearse else DONE,
                       {'steps': len(steps), 'old': upgrade.old.address,
                        'new': upgrade.new.address})


class _Journal:
    """One JSON line per step transition in <workspace>/journal.jsonl (0700 / 0600)."""

    def __init__(self, workspace):
        os.makedirs(workspace, mode=0o700, exist_ok=True)
        self.path = os.path.join(workspace, 'journal.jsonl')

    def entries(self):
        try:
            with open(self.path) as stream:
                return [json.loads(line) for line in stream if line.strip()]
        except FileNotFoundError:
            return []

    def done(self, command, step):
        events = [e['event'] for e in self.entries()
                  if e['command'] == command and e['step'] == step]
        return bool(events) and events[-1] == 'succeeded'

    def append(self, command, step, event):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, 'a') as stream:
            stream.write(json.dumps({'command': command, 'step': step,
                                     'event': event}) + '\n')
