"""Crash matrix (issue 9 item 1): SIGKILL `cfy` inside every step of prepare, new-host and
in-place, run the same command again, and check the whole upgrade.

Kill moments per step:
- ``start``: just after the step's ``started`` line is journaled (nothing done yet);
- ``effect``: after the step did its work, just before its ``succeeded`` line is journaled
  (the interesting one: the effect is in place, the journal does not know it);
- request-level moments, where the step talks to a manager: a request held *before* the
  manager acts on it, or *after* it acted with the answer never delivered (``answer-lost``),
  a download cut half-way then held on its resume (``mid-transfer``), waits in progress,
  `systemctl` calls over SSH held before/after they act.

After the kill, the same command is run again and must finish; then the rest of the upgrade
runs and ``harness.assert_upgraded`` checks the end state (snapshot created once, restored
once, agents installed once per deployment, the target's data equal to the source's, the
local zip equal to the server archive, the journal showing the interruption and the resume).

The default run (``make test``, CI) keeps every ``effect`` moment, every ``start`` moment of
prepare and one representative request-level point per kind; the rest is
``@pytest.mark.slow``.
"""
import os

import pytest

from tests import flows
from tests.reliability import harness
from tests.waiting import wait_until

PREPARE_STEPS = ('check-source', 'create-snapshot', 'download-snapshot', 'verify-snapshot',
                 'backup-host-files', 'source-inventory', 'write-prepare-report')
# 4.1 source (< 4.2): restore-users, not follow-credentials; no restore-ssl (>= 4.0.1)
RESTORE_STEPS = ('check-target', 'upload-snapshot', 'start-restore', 'wait-restore',
                 'restore-users', 'reconcile', 'cut-over', 'install-agents', 'finish')


class Point(object):
    """One crash point: the command killed, the step it is killed in, and how."""

    def __init__(self, command, step, moment, pause=None, gate=None, extra=(), fast=False,
                 check=None, until=None, after_kill=None, source='4.1'):
        self.source = source   # version of the old manager
        self.command = command
        self.step = step
        self.moment = moment
        self.pause = pause
        self.gate = gate
        self.extra = tuple(extra)
        self.fast = fast
        self.check = check     # called with the scenario right after the kill
        self.until = until     # kill when until(flow) is true (instead of pause/gate)
        self.after_kill = after_kill   # called after the kill, before the re-run

    @property
    def id(self):
        suffix = '' if self.source == '4.1' else '@' + self.source
        return '{0}:{1}:{2}{3}'.format(self.command, self.step, self.moment, suffix)

    @property
    def mode(self):
        return 'in-place' if self.command == 'in-place' else 'new-host'


# -- request-level kill moments -------------------------------------------------------------

def old_gate(method, pattern, phase='before', skip=0, when=None):
    return lambda sc: sc.gate(sc.old, method, pattern, phase=phase, skip=skip, when=when)


def new_gate(method, pattern, phase='before', skip=0, when=None):
    return lambda sc: sc.gate(sc.new, method, pattern, phase=phase, skip=skip, when=when)


def new_ssh_gate(action, unit, phase='before'):
    return lambda sc: sc.ssh_gate(sc.new, action, unit, phase=phase)


def old_ssh_gate(action, unit, phase='before'):
    return lambda sc: sc.ssh_gate(sc.old, action, unit, phase=phase)


def download_cut_then_held(sc):
    """The first download breaks after 2,000 bytes; its resume (a Range request) is held."""
    sc.old.faults.drop_download(2000, times=1)
    return sc.gate(sc.old, 'GET', flows.SNAPSHOT_ARCHIVE, skip=1)


def partial_download_left(sc):
    part = [name for name in os.listdir(os.path.join(sc.workspace(), 'snapshot'))
            if name.endswith('.part')]
    assert part, 'no .part file at the kill'
    zips = [name for name in os.listdir(os.path.join(sc.workspace(), 'snapshot'))
            if name.endswith('.zip')]
    assert zips == [], 'a zip under its final name before the download ended'


EXECUTION = r'/executions/[^/]+$'


def agents_state_is(sc, status):
    """Every deployment of agents/state.json is in ``status``."""
    state = flows.read_json(os.path.join(sc.workspace(), 'agents', 'state.json'))
    assert state and {entry['status'] for entry in state.values()} == {status}, state


def rebooting(sc):
    """The in-place target reboots after restoring the certificates (behaviour §3.8)."""
    events = sc.new.events()
    return 'reboot' in events and 'booted' not in events


def settled(sc):
    """The 7.0 target finished its restore and post-restore work (the snapshot-status flag
    is off again, behaviour §2.3) and any reboot after the certificates ended."""
    events = sc.new.events()
    flags = [e for e in events if e.startswith('snapshot-status')]
    rebooted = 'reboot' not in events or 'booted' in events
    return bool(flags) and flags[-1] == 'snapshot-status not-running' and rebooted


def wait_settled(sc):
    wait_until(lambda: settled(sc), flows.KILL_TIMEOUT,
               'the end of the restore on the target')


def long_reboot(sc):
    """The reboot outlasts the operator's reaction (and a few client retries): the re-run
    starts while the target still refuses connections, and it comes back 8 s later."""
    wait_settled(sc)
    sc.new.rest_outage(8, mode='refuse')


def _boundary_points(command, steps, fast, extra=(), source='4.1'):
    points = []
    for step in steps:
        points.append(Point(command, step, 'start', pause=(step, 'started', 'after'),
                            fast=step in fast, extra=extra, source=source))
        # the effect moment (work done, journal unaware) runs in the default tier everywhere
        points.append(Point(command, step, 'effect', pause=(step, 'succeeded', 'before'),
                            fast=True, extra=extra, source=source))
    return points


POINTS = (
    _boundary_points('prepare', PREPARE_STEPS, fast=PREPARE_STEPS)
    + [
        Point('prepare', 'create-snapshot', 'request-held',
              gate=old_gate('PUT', flows.SNAPSHOT_CREATE)),
        Point('prepare', 'create-snapshot', 'answer-lost',
              gate=old_gate('PUT', flows.SNAPSHOT_CREATE, phase='after'), fast=True),
        Point('prepare', 'create-snapshot', 'waiting',
              gate=old_gate('GET', EXECUTION, skip=1)),
        Point('prepare', 'download-snapshot', 'mid-transfer', gate=download_cut_then_held,
              fast=True, check=partial_download_left),
        Point('prepare', 'source-inventory', 'listing',
              gate=old_gate('GET', r'/node-instances$', skip=1)),
        Point('prepare', 'freeze-source', 'start', pause=('freeze-source', 'started', 'after'),
              extra=('--freeze',)),
        Point('prepare', 'freeze-source', 'answer-lost', extra=('--freeze',),
              gate=old_gate('POST', r'/maintenance/activate$', phase='after')),
        Point('prepare', 'freeze-source', 'effect', extra=('--freeze',),
              pause=('freeze-source', 'succeeded', 'before')),
    ]
    + _boundary_points('new-host', RESTORE_STEPS, fast=('cut-over',))
    + [
        Point('new-host', 'upload-snapshot', 'mid-transfer',
              gate=new_gate('PUT', flows.SNAPSHOT_ARCHIVE)),
        Point('new-host', 'upload-snapshot', 'answer-lost',
              gate=new_gate('PUT', flows.SNAPSHOT_ARCHIVE, phase='after')),
        Point('new-host', 'start-restore', 'request-held',
              gate=new_gate('POST', flows.SNAPSHOT_RESTORE)),
        Point('new-host', 'start-restore', 'answer-lost', fast=True,
              gate=new_gate('POST', flows.SNAPSHOT_RESTORE, phase='after')),
        Point('new-host', 'wait-restore', 'waiting',
              gate=new_gate('GET', EXECUTION, skip=1)),
        Point('new-host', 'restore-users', 'salt-written',
              gate=new_ssh_gate('restart', 'cloudify-restservice')),
        Point('new-host', 'restore-users', 'admin-rehash-held', fast=True,
              gate=new_gate('POST', r'/users/admin$')),
        # the 7.0 target's inventory lists node instances over every tenant at once: the
        # first node-instances page of the run is reconcile's
        Point('new-host', 'reconcile', 'listing',
              gate=new_gate('GET', r'/node-instances$')),
        Point('new-host', 'cut-over', 'riemann-stopped',
              gate=old_ssh_gate('disable', 'cloudify-riemann')),
        Point('new-host', 'install-agents', 'answer-lost', fast=True,
              gate=new_gate('POST', r'/executions$', phase='after', skip=1)),
        Point('new-host', 'install-agents', 'waiting',
              gate=new_gate('GET', EXECUTION, skip=3)),
        # every deployment's execution ended, the check through GET /agents not done yet
        # (issue 15): the re-run checks them without moving any agent again
        Point('new-host', 'install-agents', 'checking', fast=True, gate=lambda sc: sc.gate(
            sc.new, 'GET', r'/agents$', when=lambda: len(sc.new.agent_installs()) == 4),
            check=lambda sc: agents_state_is(sc, 'installed')),
    ]
    + _boundary_points('in-place', RESTORE_STEPS, fast=())
    + [
        Point('in-place', 'start-restore', 'answer-lost',
              gate=new_gate('POST', flows.SNAPSHOT_RESTORE, phase='after')),
        Point('in-place', 'wait-restore', 'waiting',
              gate=new_gate('GET', EXECUTION, skip=1), after_kill=wait_settled),
        Point('in-place', 'wait-restore', 'rebooting', until=rebooting,
              after_kill=wait_settled),
        Point('in-place', 'wait-restore', 'target-down-at-rerun',
              gate=new_gate('GET', EXECUTION, skip=1), after_kill=long_reboot),
        Point('in-place', 'install-agents', 'answer-lost', fast=True,
              gate=new_gate('POST', r'/executions$', phase='after')),
    ]
    # a >= 4.2 source: follow-credentials instead of restore-users (the admin password of
    # the target becomes the old one inside the 4.6+ restore workflow, behaviour §3.8)
    + _boundary_points('new-host', ('follow-credentials',), fast=(), source='4.6')
    + [
        Point('new-host', 'start-restore', 'answer-lost', source='4.6',
              gate=new_gate('POST', flows.SNAPSHOT_RESTORE, phase='after')),
        Point('new-host', 'wait-restore', 'password-switching', source='4.6',
              gate=new_gate('GET', EXECUTION, skip=1)),
    ]
    # a 5.2.x source (issue 15): fence-old-manager disables the enabled schedules (recorded
    # before the first PATCH) and activates maintenance mode
    + _boundary_points('new-host', ('fence-old-manager',), fast=(), source='5.2.7')
    + [
        Point('new-host', 'fence-old-manager', 'schedule-answer-lost', source='5.2.7',
              fast=True, gate=old_gate('PATCH', r'/execution-schedules/[^/]+$',
                                       phase='after')),
        Point('new-host', 'fence-old-manager', 'maintenance-answer-lost', source='5.2.7',
              gate=old_gate('POST', r'/maintenance/activate$', phase='after')),
    ]
    # in place from 4.0.0 (+patch-1): the snapshot has no certificates, restore-ssl puts
    # the backed-up /etc/cloudify/ssl back over SSH; its metadata.json lacks the schema
    # revisions 7.0 picks its restore route from, so route-copy makes the copy restored
    # instead (issue 14)
    + _boundary_points('in-place', ('restore-ssl', 'route-copy'), fast=(),
                       source='4.0.0+patch1')
    + [
        Point('in-place', 'restore-ssl', 'services-restarting', source='4.0.0+patch1',
              gate=new_ssh_gate('restart', 'cloudify-restservice')),
    ]
)


def zips_after_kill(sc):
    """Right after a kill: any zip under its final name holds the server archive's bytes."""
    if not sc.upgrade_ids():
        return []
    server = getattr(sc, 'server_sha', None)
    if server is None:
        directory = os.path.join(sc.workspace(), 'snapshot')
        names = os.listdir(directory) if os.path.isdir(directory) else []
        server = {name[:-4]: flows.server_archive_sha256(sc.old, name[:-4])
                  for name in names if name.endswith('.zip')}
    return harness.snapshot_files_problems(sc.workspace(), server, require_sha_file=False)


def _param(point):
    marks = () if point.fast else (pytest.mark.slow,)
    return pytest.param(point, id=point.id, marks=marks)


def test_matrix_size():
    """Issue 9 acceptance: at least 40 crash points, every step of every command covered."""
    assert len(POINTS) >= 40
    assert len({p.id for p in POINTS}) == len(POINTS)
    for command, steps in (('prepare', PREPARE_STEPS + ('freeze-source',)),
                           ('new-host', RESTORE_STEPS + ('follow-credentials',
                                                         'fence-old-manager')),
                           ('in-place', RESTORE_STEPS + ('restore-ssl', 'route-copy'))):
        covered = {p.step for p in POINTS if p.command == command}
        assert set(steps) <= covered, (command, set(steps) - covered)


@pytest.mark.parametrize('point', [_param(p) for p in POINTS])
def test_crash_point(flow, simulated_manager, point):
    sc = flow.setup(simulated_manager, point.source, target=point.mode == 'new-host')
    mode = point.mode
    if point.command == 'prepare':
        args = flows.prepare_args(mode, point.extra)
    else:
        sc.prepare(*flows.prepare_options(mode))
        if mode == 'in-place':
            sc.reinstall()
        args = flows.command_args(mode)
    gate = point.gate(sc) if point.gate else None
    sc.crash(*args, pause=point.pause, gate=gate, until=point.until and (
        lambda: point.until(sc)), inside=point.step)
    assert zips_after_kill(sc) == []
    if point.check:
        point.check(sc)
    if point.after_kill:
        point.after_kill(sc)
    elif mode == 'in-place' and flows.requests_matching(
            sc.new, 'POST', flows.SNAPSHOT_RESTORE, status=200):
        wait_settled(sc)     # re-run once the target is back (target-down-at-rerun: not)
    sc.old.faults.clear()
    resumed = sc.run(*args)
    assert resumed.returncode == 0, harness.show(resumed)
    harness.assert_resumed(sc, point.step)
    if point.command == 'prepare':
        sc.record_server_snapshot()
        finished = sc.run(*flows.command_args(mode))
        assert finished.returncode == 0, harness.show(finished)
    harness.assert_upgraded(sc, mode)
