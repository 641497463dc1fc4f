"""What a node instance's runtime properties say about its upgrade (the fleet's progress).

Runtime properties written by the fleet operations (always through ``redact``):

- ``upgrade``: the non-secret description of the managed upgrade (upgrade id, workspace,
  mode, target version, both managers without credentials);
- ``upgrade_plan``, ``upgrade_prepare``, ``upgrade_cutover``, ``upgrade_verify_heals``:
  one record per command: ``status`` (``running``, ``done``, ``rehearsed``, ``failed``),
  ``execution_id`` and ``workflow_id`` of the execution that wrote it, ``attempt``,
  ``started_at`` / ``ended_at``, ``step`` (the last progress line) and ``steps`` (a list
  of ``{id, event}``, the last event of each step, in first-seen order: a list because
  redaction masks the value of any key that looks secret, and step ids such as
  ``follow-credentials`` do), ``summary`` (the outcome's) or ``error`` (id, message,
  hints).

A command whose record says ``done`` is not run again by the workflows (resume);
``running`` left by an execution that died, ``failed`` and ``rehearsed`` are run again and
the runbook resumes from its journal.  Functions here return new dicts and assign them,
because Cloudify's runtime properties only notice top-level assignments.
"""
from __future__ import annotations

from typing import Any, MutableMapping

from cloudify_upgrade_plugin import clock
from cloudify_upgrade_plugin.engine.redact import redact

DESCRIPTION = 'upgrade'
RUNNING = 'running'
DONE = 'done'
REHEARSED = 'rehearsed'
FAILED = 'failed'
OK_STATUSES = (DONE, REHEARSED)


def key(command: str) -> str:
    """The runtime property of ``command`` ("cutover" -> "upgrade_cutover")."""
    return 'upgrade_' + command


def record(runtime_properties: MutableMapping, command: str) -> dict:
    """The record of ``command`` (empty when it never ran)."""
    return dict(runtime_properties.get(key(command)) or {})


def is_done(runtime_properties: MutableMapping, command: str) -> bool:
    return record(runtime_properties, command).get('status') == DONE


def _store(runtime_properties: MutableMapping, command: str, value: dict) -> dict:
    value = redact(value)
    runtime_properties[key(command)] = value
    return value


def describe(runtime_properties: MutableMapping, description: dict) -> dict:
    """Record the non-secret description of the managed upgrade."""
    value = redact(description)
    runtime_properties[DESCRIPTION] = value
    return value


def begin(runtime_properties: MutableMapping, command: str, execution_id: str | None,
          workflow_id: str | None) -> dict:
    """Record that ``command`` starts now (one more attempt)."""
    previous = record(runtime_properties, command)
    return _store(runtime_properties, command, {
        'status': RUNNING, 'execution_id': execution_id, 'workflow_id': workflow_id,
        'attempt': int(previous.get('attempt') or 0) + 1, 'started_at': clock.isoformat(),
        'ended_at': None, 'step': None, 'steps': []})


def step(runtime_properties: MutableMapping, command: str, step_id: str, event: str,
         line: str) -> dict:
    current = record(runtime_properties, command)
    steps = [dict(item) for item in current.get('steps') or []]
    for item in steps:
        if item.get('id') == step_id:
            item['event'] = event
            break
    else:
        steps.append({'id': step_id, 'event': event})
    current.update(step=line, steps=steps)
    return _store(runtime_properties, command, current)


def finish(runtime_properties: MutableMapping, command: str, status: str,
           summary: dict | None) -> dict:
    current = record(runtime_properties, command)
    current.update(status=status, ended_at=clock.isoformat(), summary=summary or {},
                   error=None)
    return _store(runtime_properties, command, current)


def fail(runtime_properties: MutableMapping, command: str, error_id: str, message: str,
         hints: Any = ()) -> dict:
    current = record(runtime_properties, command)
    current.update(status=FAILED, ended_at=clock.isoformat(),
                   error={'id': error_id, 'message': message, 'hints': list(hints or ())})
    return _store(runtime_properties, command, current)
