"""Where an upgrade stands, read from its workspace only (no REST, no SSH).

``summarize(workspace)`` builds the contract's ``status`` document from workspace.json (the
steps of every runbook run in it, recorded by the Runner) and the verified journal::

    {"upgrade_id", "mode", "status",
     "steps": [{"id", "status", "started_at", "ended_at", "runbook", "title"[, "error_id"]}],
     "next"}

Step status: ``succeeded``, ``skipped``, ``waived``, ``failed``, ``pending`` (never started),
``running`` (started, and another process holds the workspace lock) or ``interrupted``
(started, and nobody is running it any more).  ``next`` is the command to run now.

The upgrade's ``status`` (``upgrade_status``): ``running``, ``failed`` or ``interrupted``
when a step is; ``rehearsed`` when a rehearsal (``new-host --rehearse``) stopped before the
point of no return and nothing ran from there since (the old manager is still in charge);
``done`` when nothing is left to run; ``in-progress`` otherwise.
``cfy upgrade status`` (``cloudify_upgrade_plugin/status.py``) prints it; the report and
the commands' documents embed its ``steps``.
"""
from cloudify_upgrade_plugin.engine import journal as jr
from cloudify_upgrade_plugin.errors import UpgradeError
from typing import Dict, Optional

PENDING = 'pending'
RUNNING = 'running'
INTERRUPTED = 'interrupted'
# the upgrade's status besides the step statuses it borrows
REHEARSED = jr.REHEARSED
DONE = 'done'
IN_PROGRESS = 'in-progress'
FINISHED = (jr.SUCCEEDED, jr.SKIPPED, jr.WAIVED)
# What comes after a runbook whose steps are all finished.
FOLLOW_UP = {'prepare': 'cfy upgrade {mode}', 'new-host': 'cfy upgrade verify-heals',
             'in-place': 'cfy upgrade verify-heals'}


def _is_locked(workspace):
    try:
        with workspace.lock():
            return False
    except UpgradeError as error:
        if error.error_id == 'workspace-locked':
            return True
        raise


def step_states(entries) -> Dict[str, dict]:
    """``{step: {status, started_at, ended_at[, error_id]}}`` in first-seen order."""
    states = {}
    for entry in entries:
        if jr.is_check_waiver(entry):
            continue
        state = states.setdefault(entry['step'], {'status': PENDING, 'started_at': None,
                                                  'ended_at': None})
        event = entry['event']
        if event == jr.STARTED:
            state.update(status=jr.STARTED, started_at=entry['ts'], ended_at=None)
            state.pop('error_id', None)
        elif event in FINISHED or event == jr.FAILED:
            state.update(status=event, ended_at=entry['ts'])
            if event == jr.FAILED:
                state['error_id'] = (entry.get('details') or {}).get('error_id')
            else:
                state.pop('error_id', None)
        elif event == jr.INTERRUPTED:
            state.update(status=INTERRUPTED)
        if event == jr.REHEARSED:
            state['rehearsed'] = True     # the step itself did not run: still pending
        elif event in jr.LIFECYCLE_EVENTS:
            state.pop('rehearsed', None)
    return states


def summarize(workspace) -> dict:
    """The status document of ``workspace`` (verifies the journal)."""
    meta = workspace.meta
    entries = workspace.journal.entries()
    states = step_states(entries)
    locked = None
    steps = []
    listed = set()
    for runbook in meta.get('runbooks') or []:
        for step in runbook.get('steps') or []:
            listed.add(step['id'])
            steps.append(_row(step['id'], step.get('title'), runbook.get('name'),
                              states.get(step['id'])))
    for step_id, state in states.items():
        if step_id not in listed:
            steps.append(_row(step_id, None, None, state))
    for row in steps:
        if row['status'] == jr.STARTED:
            if locked is None:
                locked = _is_locked(workspace)
            row['status'] = RUNNING if locked else INTERRUPTED
    next_cmd = next_command(workspace.upgrade_id, meta, steps, entries)
    return {'upgrade_id': workspace.upgrade_id, 'mode': meta.get('mode'),
            'created_at': meta.get('created_at'),
            'status': upgrade_status(steps, states, next_cmd), 'steps': steps,
            'next': next_cmd}


def upgrade_status(steps, states, next_cmd) -> str:
    """Where the upgrade as a whole stands (see the module docstring)."""
    found = {row['status'] for row in steps}
    for status in (RUNNING, jr.FAILED, INTERRUPTED):
        if status in found:
            return status
    if any(state.get('rehearsed') for state in states.values()):
        return REHEARSED
    return DONE if next_cmd is None else IN_PROGRESS


def _row(step_id, title, runbook, state):
    state = state or {'status': PENDING, 'started_at': None, 'ended_at': None}
    row = {'id': step_id, 'title': title, 'runbook': runbook, 'status': state['status'],
           'started_at': state['started_at'], 'ended_at': state['ended_at']}
    if state.get('error_id'):
        row['error_id'] = state['error_id']
    return row


def next_command(upgrade_id, meta, steps, entries=None) -> Optional[str]:
    """The command the operator should run now (None when nothing is left)."""
    suffix = ' --upgrade-id {0}'.format(upgrade_id)
    runbooks = meta.get('runbooks') or []
    for runbook in runbooks:
        rows = [row for row in steps if row['runbook'] == runbook.get('name')]
        if any(row['status'] == RUNNING for row in rows):
            return None
        if any(row['status'] not in FINISHED for row in rows):
            return (runbook.get('command') or 'cfy upgrade ' + runbook['name']) + suffix
    if meta.get('next'):
        return meta['next']
    if not runbooks:
        return 'cfy upgrade prepare' + suffix
    follow = FOLLOW_UP.get(runbooks[-1].get('name'))
    if follow is None:
        return None
    if follow == 'cfy upgrade verify-heals' and _heals_clean(entries):
        return None     # done: what is left (shutting the old manager down) is by hand
    return follow.format(mode=meta.get('mode') or 'new-host') + suffix


def _heals_clean(entries):
    """True when the last verify-heals run succeeded (complete and clean) and healing is
    off; a later failed or incomplete run means it is not clean any more."""
    runs = [e for e in entries or () if e['step'] == 'verify-heals' and
            e['event'] in (jr.SUCCEEDED, jr.FAILED)]
    if not runs or runs[-1]['event'] != jr.SUCCEEDED:
        return False
    last = runs[-1].get('details') or {}
    return bool(last.get('ok') and last.get('complete') and not last.get('healing_active'))
