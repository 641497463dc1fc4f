"""The Runner: runs a runbook's steps in order against a workspace, journaling every transition.

``Runner(workspace, runbook, fingerprint, ctx=None).run(ctx=None)``:

1. takes the workspace lock (``workspace-locked`` when another process holds it);
2. verifies the journal (``journal-tampered``);
3. compares ``fingerprint`` (a dict: managers, versions, options that matter) with the one
   stored in workspace.json: keys present in both must be equal, otherwise
   ``InputError('fingerprint-changed')`` (exit 2: the command line points at a workspace made
   for another upgrade; nothing is done).  New keys are added to the stored fingerprint, so
   ``prepare`` and ``new-host`` can each contribute theirs;
4. records the runbook's steps in workspace.json (for ``status``);
5. for each step: already ``succeeded``/``skipped``/``waived`` -> not run again; the last
   attempt ``started`` with no end (the process died) -> journal ``interrupted``, then
   ``check(ctx)``: True -> ``succeeded`` (``recovered``), else a ``rerunnable`` step is run
   again (``resumed``) and any other step fails with ``step-interrupted``; otherwise
   ``check(ctx)`` True -> ``skipped``, else (confirmation at the point of no return)
   ``started`` -> ``run`` -> ``verify`` -> ``succeeded``;
6. a rehearsal (``ctx.rehearse``) stops at the first step marked ``point_of_no_return``
   before anything of it runs (no check, no confirmation): the runner journals
   ``rehearsed`` for that step and returns with ``rehearsed`` set; the next run without
   ``rehearse`` goes on from that step (the finished ones are not redone).  A rehearsal
   that reaches a point of no return already started or passed is refused
   (``InputError('rehearsal-too-late')``, exit 2) before any step of it runs.

Ctrl-C (``KeyboardInterrupt``) inside a step journals ``interrupted`` (``signal: SIGINT``)
for the step that was running and raises ``Interrupted`` (exit 130): the next run finds the
step started and not ended, as after a crash, and checks it before resuming it.

Failures are journaled (``failed`` with the error id, message and hints) and raised as
``StepFailed`` carrying ``step`` (a ``BlockedError`` is re-raised as it is: exit 3; an
``InputError`` keeps its exit 2).  Any other
exception becomes ``unexpected-error`` (its traceback only in the debug log, ``-vvv``).
One progress line per transition: ``[3/9] upload-snapshot: started``.
"""
import json
from typing import Any, List, Tuple

from cloudify_upgrade_plugin.engine import journal as jr
from cloudify_upgrade_plugin.engine.redact import redact
from cloudify_upgrade_plugin.engine.step import Context, NotConfirmed, Runbook
from cloudify_upgrade_plugin.errors import (
    BlockedError, InputError, Interrupted, StepFailed, UpgradeError)

STEP_INTERRUPTED = 'step-interrupted'
UNEXPECTED = 'unexpected-error'


class Runner:

    reporter = None
    position = (None, None)

    def __init__(self, workspace, runbook, fingerprint=None, ctx=None):
        if not isinstance(runbook, Runbook):
            runbook = Runbook(getattr(runbook, 'name', 'runbook'), list(runbook))
        self.workspace = workspace
        self.runbook = runbook
        self.fingerprint = fingerprint
        self.ctx = ctx

    # -- the run --------------------------------------------------------------------------

    def run(self, ctx=None) -> dict:
        """Run every pending step; return ``{'upgrade_id', 'runbook', 'steps': [...]}``."""
        ctx = ctx or self.ctx or Context(self.workspace)
        if ctx.workspace is None:
            ctx.workspace = self.workspace
        self.logger = ctx.logger
        # issue 19: callers without a terminal follow the transitions (options.reporter)
        self.reporter = getattr(getattr(ctx, 'options', None), 'reporter', None)
        self.position = (None, None)
        with self.workspace.lock():
            journal = self.workspace.journal
            journal.entries()
            self._check_fingerprint()
            self.workspace.record_runbook(self.runbook.name, self.runbook.steps,
                                          self.runbook.command)
            if ctx.rehearse:
                self._require_rehearsable(journal)
            results = []
            total = len(self.runbook)
            for index, step in enumerate(self.runbook.steps, 1):
                if ctx.rehearse and step.point_of_no_return:
                    prefix = '[{0}/{1}] {2}'.format(index, total, step.id)
                    results.append(self._journal(journal, step, prefix, jr.REHEARSED, {
                        'reason': 'rehearsal: stopped before the point of no return; '
                                  'nothing of this step or the next ones ran'}))
                    return {'upgrade_id': self.workspace.upgrade_id,
                            'runbook': self.runbook.name, 'steps': results,
                            'rehearsed': step.id}
                ctx.step, self.position = step, (index, total)
                try:
                    results.append(self._run_step(journal, ctx, step, index, total))
                except KeyboardInterrupt:
                    raise self._interrupted(journal, step, index, total) from None
                finally:
                    ctx.step = None
        return {'upgrade_id': self.workspace.upgrade_id, 'runbook': self.runbook.name,
                'steps': results}

    def _require_rehearsable(self, journal):
        """A rehearsal ends before the point of no return: refused once it was reached."""
        for step in self.runbook.steps:
            if not step.point_of_no_return:
                continue
            events = [entry['event'] for entry in journal.step_entries(step.id)
                      if entry['event'] in jr.LIFECYCLE_EVENTS]
            if events:
                raise InputError(
                    'Upgrade {0} already went past the point of no return (step {1} is '
                    '{2}): a rehearsal can no longer stop before it.'.format(
                        self.workspace.upgrade_id, step.id, events[-1]),
                    error_id='rehearsal-too-late',
                    hints=['Run `{0} --upgrade-id {1}` without --rehearse to finish the '
                           'upgrade.'.format(self.runbook.command,
                                             self.workspace.upgrade_id)])

    def _run_step(self, journal, ctx, step, index, total):
        prefix = '[{0}/{1}] {2}'.format(index, total, step.id)
        lifecycle = [entry for entry in journal.step_entries(step.id)
                     if entry['event'] in jr.LIFECYCLE_EVENTS]
        last = lifecycle[-1] if lifecycle else None
        if last and last['event'] in jr.DONE_EVENTS:
            self.logger.info('%s: already %s', prefix, last['event'])
            return _result(step, last['event'], last.get('details'))

        interrupted = last is not None and (
            last['event'] == jr.STARTED
            or (last['event'] == jr.FAILED and (last.get('details') or {}).get('interrupted')))
        if interrupted:
            if last['event'] == jr.STARTED and \
                    journal.step_entries(step.id)[-1]['event'] != jr.INTERRUPTED:
                # (a Ctrl-C already journaled it)
                self._journal(journal, step, prefix, jr.INTERRUPTED,
                              {'attempt_started_at': last['ts']})
            if self._check(journal, ctx, step, prefix, interrupted=True):
                return self._journal(journal, step, prefix, jr.SUCCEEDED,
                                     {'recovered': True,
                                      'reason': 'the effect was found in place after an '
                                                'interruption'})
            if not step.rerunnable:
                error = UpgradeError(
                    'Step {0} ({1}) was interrupted while it ran (the previous process '
                    'stopped inside it) and it is not safe to run it again blindly; its '
                    'effect is not in place.'.format(step.id, step.title),
                    error_id=STEP_INTERRUPTED,
                    hints=['Inspect what "{0}" does on the managers involved and complete '
                           'or undo it by hand; once its effect is in place, run the same '
                           'command again and the step is recorded as recovered.'.format(
                               step.title),
                           'The journal ({0}) shows when the step started.'.format(
                               journal.path)])
                self._fail(journal, step, prefix, error, interrupted=True)
                raise _step_failed(step, error, self.runbook, self.workspace)
            self._journal(journal, step, prefix, jr.RESUMED, {'rerunnable': True})
        elif self._check(journal, ctx, step, prefix, interrupted=False):
            return self._journal(journal, step, prefix, jr.SKIPPED,
                                 {'reason': 'the effect is already in place'})

        if step.point_of_no_return and not ctx.yes:
            if not ctx.confirm(step):
                raise NotConfirmed(
                    'Step {0} ({1}) is the point of no return and was not confirmed; '
                    'nothing was changed by it.'.format(step.id, step.title),
                    step=step.id,
                    hints=['Run the command again and answer yes, or add --yes.'])

        attempt = 1 + sum(1 for entry in lifecycle if entry['event'] == jr.STARTED)
        self._journal(journal, step, prefix, jr.STARTED, {'attempt': attempt})
        try:
            details = step.run(ctx)
            step.verify(ctx)
        except Exception as error:
            self._handle(journal, step, prefix, error, interrupted=False)
        if details is not None and not isinstance(details, dict):
            details = {'result': details}
        return self._journal(journal, step, prefix, jr.SUCCEEDED, details or {})

    def _check(self, journal, ctx, step, prefix, interrupted):
        try:
            return bool(step.check(ctx))
        except Exception as error:
            self._handle(journal, step, prefix, error, interrupted=interrupted)

    # -- journal and errors ---------------------------------------------------------------

    def _interrupted(self, journal, step, index, total):
        """Ctrl-C inside ``step``: journal where it stopped; the error to show (exit 130)."""
        lifecycle = [entry for entry in journal.step_entries(step.id)
                     if entry['event'] in jr.LIFECYCLE_EVENTS]
        last = lifecycle[-1] if lifecycle else None
        entries = journal.step_entries(step.id)
        running = last is not None and last['event'] == jr.STARTED
        if running and entries[-1]['event'] != jr.INTERRUPTED:
            journal.append(step.id, jr.INTERRUPTED, {'signal': 'SIGINT',
                                                     'attempt_started_at': last['ts']})
        again = '`{0} --upgrade-id {1}`'.format(self.runbook.command,
                                                self.workspace.upgrade_id)
        if running:
            message = 'Step {0} ({1}) interrupted; run the same command again to resume: ' \
                      '{2}.'.format(step.id, step.title, again)
        else:
            message = 'Step {0} ({1}) had not started when the command was interrupted; ' \
                      'run the same command again to resume: {2}.'.format(
                          step.id, step.title, again)
        self.logger.info('[%d/%d] %s: interrupted (Ctrl-C)', index, total, step.id)
        upgrade_id = self.workspace.upgrade_id
        return Interrupted(
            message, step=step.id,
            hints=['The journal ({0}) records where it stopped; `cfy upgrade status '
                   '--upgrade-id {1}` shows it.'.format(journal.path, upgrade_id),
                   'Finished steps are not redone; the interrupted one is checked (is its '
                   'effect in place?) before it is resumed.'])

    def _journal(self, journal, step, prefix, event, details):
        entry = journal.append(step.id, event, details)
        self.logger.info('%s: %s', prefix, event)
        if self.reporter is not None:
            self.reporter(step.id, event, self.position[0], self.position[1],
                          entry['details'])
        return _result(step, event, entry['details'])

    def _fail(self, journal, step, prefix, error, interrupted):
        details = {'error_id': error.error_id, 'message': error.message,
                   'hints': list(error.possible_solutions)}
        if interrupted:
            details['interrupted'] = True
        try:
            self._journal(journal, step, prefix, jr.FAILED, details)
        except OSError as exc:   # e.g. the disk filled up: the step's error matters more
            self.logger.error('%s: the failure could not be journaled (%s); the journal '
                              'still shows the step as started.', prefix, exc)

    def _handle(self, journal, step, prefix, error, interrupted):
        """Journal ``error`` as the step's failure and raise what the operator should see."""
        if isinstance(error, UpgradeError):
            self._fail(journal, step, prefix, error, interrupted)
            if isinstance(error, BlockedError):
                error.step = error.step or step.id
                raise error
            failed = _step_failed(step, error, self.runbook, self.workspace)
            if isinstance(error, InputError):
                failed.exit_code = error.exit_code    # bad input stays exit 2
            raise failed from error
        self.logger.debug('%s: unexpected error', prefix, exc_info=True)
        wrapped = UpgradeError(
            '{0}: {1}'.format(type(error).__name__, error), error_id=UNEXPECTED,
            hints=['Run the command again with -vvv to see the traceback in the log.'])
        self._fail(journal, step, prefix, wrapped, interrupted)
        raise _step_failed(step, wrapped, self.runbook, self.workspace) from error

    # -- fingerprint ----------------------------------------------------------------------

    def _check_fingerprint(self):
        if self.fingerprint is None:
            return
        current = _normalize(self.fingerprint)
        stored = self.workspace.meta.get('fingerprint')
        if not stored:
            self.workspace.update_meta(fingerprint=current)
            return
        differences = fingerprint_differences(stored, current)
        if differences:
            listing = '; '.join('{0}: {1} -> {2}'.format(key, _show(old), _show(new))
                                for key, old, new in differences)
            raise InputError(
                'Upgrade {0} was started for other managers, versions or options than this '
                'command names ({1}). It is refused so that one workspace never mixes two '
                'upgrades.'.format(self.workspace.upgrade_id, listing),
                error_id='fingerprint-changed',
                hints=['Run the command with the same profiles, versions and options as '
                       'before (see workspace.json in the workspace).',
                       'Or start a new upgrade with a new --upgrade-id.'],
                details={'changed': [key for key, _, _ in differences]})
        merged = dict(_flatten(stored))
        added = {key: value for key, value in _flatten(current) if key not in merged}
        if added:
            self.workspace.update_meta(fingerprint=_merge(stored, current))


def fingerprint_differences(stored, current) -> List[Tuple[str, Any, Any]]:
    """[(dotted key, stored value, current value)] for keys present in both that differ."""
    old = dict(_flatten(stored))
    return [(key, old[key], value) for key, value in _flatten(current)
            if key in old and old[key] != value]


def _normalize(fingerprint):
    return json.loads(json.dumps(redact(fingerprint), sort_keys=True, default=str))


def _flatten(obj, prefix=''):
    if isinstance(obj, dict) and obj:
        for key in sorted(obj):
            yield from _flatten(obj[key], '{0}{1}.'.format(prefix, key))
    else:
        yield prefix[:-1], obj


def _merge(stored, current):
    result = dict(stored)
    for key, value in current.items():
        if key in result and isinstance(result[key], dict) and isinstance(value, dict):
            result[key] = _merge(result[key], value)
        elif key not in result:
            result[key] = value
    return result


def _show(value):
    return json.dumps(value, sort_keys=True, default=str)


def _result(step, status, details):
    return {'id': step.id, 'title': step.title, 'status': status, 'details': details or {}}


def _step_failed(step, error, runbook, workspace):
    hints = list(error.possible_solutions)
    if error.error_id != STEP_INTERRUPTED:
        hints.append('Fix the cause, then run `{0} --upgrade-id {1}` again: finished steps '
                     'are not redone.'.format(runbook.command, workspace.upgrade_id))
    message = 'Step {0} ({1}) failed: {2}'.format(step.id, step.title, error.message)
    failed = StepFailed(message,
                        error_id=error.error_id, hints=hints, step=step.id,
                        details=getattr(error, 'details', None))
    return failed
