"""Operations of ``cloudify.nodes.upgrade.ManagedUpgrade``: thin, one adapter call each.

plugin.yaml maps ``cloudify.interfaces.lifecycle`` create / configure / start to ``plan``,
``prepare`` and ``start`` (the cut-over, only when the node's ``cutover_on_install`` is
true), and ``cloudify.interfaces.upgrade`` plan / prepare / cutover / verify_heals to the
functions of the same names.  Each one:

1. records the command's start in the runtime properties (``fleet.runtime``);
2. turns the node's properties (the ``node_properties`` input) and the evaluated
   ``old_manager`` / ``new_manager`` operation inputs (Cloudify resolves their
   ``get_secret`` before the call) into a ``FleetUpgrade`` whose workspace lives in the
   deployment's work directory (``ctx.plugin.workdir``);
3. calls the one ``fleet.adapter`` function of the command, turning each step transition
   into an event and a runtime-property change (stored at most once a second, and at once
   for a failure);
4. records ``done`` / ``rehearsed`` with the outcome's summary, or ``failed`` with the
   error's id, message and hints and raises ``NonRecoverableError`` (a rerun of the
   workflow is the retry: the runbook resumes from its journal).

``prepare`` and ``cutover`` already ``done`` are not run again; ``plan`` and
``verify_heals`` are observations and always run.  The cut-over needs ``prepare`` done;
``verify_heals`` needs the cut-over done.  Nothing secret reaches runtime properties or
events: everything written passes ``engine.redact``.  Events go through ``ctx.logger``,
the operation's Cloudify logger (the host's logger here, as cfy's is for the CLI).
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from cloudify.decorators import operation
from cloudify.exceptions import NonRecoverableError

from cloudify_upgrade_plugin.engine.redact import install_log_filter, redact_text
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.fleet import adapter, runtime
from cloudify_upgrade_plugin.fleet.connection import FleetUpgrade

# Commands a rerun skips once done (they change managers); plan and verify_heals observe.
SKIP_WHEN_DONE = ('prepare', 'cutover')
REQUIRES = {'cutover': 'prepare', 'verify_heals': 'cutover'}
UNEXPECTED = 'unexpected-error'
PROGRESS_STORE_EVERY = 1.0      # seconds


class _Failure(Exception):
    """An error already recorded in the runtime properties."""

    def __init__(self, error_id: str, message: str, hints=()):
        super().__init__(message)
        self.error_id, self.message, self.hints = error_id, message, list(hints or ())


def _properties(ctx, node_properties) -> Mapping:
    """The node's properties: the ``node_properties`` operation input plugin.yaml evaluates
    with the connections, else (an older plugin.yaml) ``ctx.node``'s."""
    return node_properties if isinstance(node_properties, Mapping) else ctx.node.properties


def _workdir(ctx) -> str:
    try:
        workdir = ctx.plugin.workdir
    except NotImplementedError:
        workdir = None
    if not workdir:
        raise _Failure('no-deployment-workdir',
                       'This operation has no deployment work directory to keep the '
                       'upgrade workspace in (local workflows need a FileStorage).',
                       ['Run it as part of a deployment on a manager, or with '
                        'cloudify.workflows.local and FileStorage.'])
    return workdir


def _required(ctx, command: str) -> None:
    needed = REQUIRES.get(command)
    if needed and not runtime.is_done(ctx.instance.runtime_properties, needed):
        status = runtime.record(ctx.instance.runtime_properties, needed).get('status')
        raise _Failure(
            '{0}-not-finished'.format(needed.replace('_', '-')),
            '{0} needs {1} done first on {2} ({1} is {3}).'.format(
                command, needed, ctx.instance.id, status or 'not run'),
            ['Run the upgrade_{0} workflow for this node instance first.'.format(needed)])


def _progress(ctx, command: str) -> Callable[[adapter.StepEvent], None]:
    stored = [0.0]

    def report(event: adapter.StepEvent) -> None:
        line = redact_text(event.line())
        runtime.step(ctx.instance.runtime_properties, command, event.step, event.event,
                     line)
        # stored at most once a PROGRESS_STORE_EVERY (one node-instance update per store,
        # a REST call on a manager) and for every failure; the end is always stored
        if time.monotonic() - stored[0] >= PROGRESS_STORE_EVERY or \
                event.event not in ('started', 'succeeded', 'skipped'):
            ctx.instance.update()
            stored[0] = time.monotonic()
        ctx.logger.info('upgrade %s: %s', command, line)
    report.logger = ctx.logger      # the runbooks' log lines of this thread go there too
    return report


def _run(ctx, command: str, old_manager, new_manager, call, node_properties=None) -> None:
    install_log_filter(ctx.logger)
    properties = ctx.instance.runtime_properties
    if command in SKIP_WHEN_DONE and runtime.is_done(properties, command):
        done = runtime.record(properties, command)
        ctx.logger.info('upgrade %s: already done (execution %s, %s); nothing to do.',
                        command, done.get('execution_id'), done.get('ended_at'))
        return
    runtime.begin(properties, command, ctx.execution_id, ctx.workflow_id)
    ctx.instance.update()
    try:
        _required(ctx, command)
        upgrade = FleetUpgrade.from_node(
            _properties(ctx, node_properties), old_manager, new_manager, node_id=ctx.node.id,
            instance_id=ctx.instance.id, workdir=_workdir(ctx))
        runtime.describe(ctx.instance.runtime_properties, upgrade.describe())
        ctx.instance.update()
        ctx.logger.info('upgrade %s: %s, %s -> %s (workspace %s)', command, upgrade.mode,
                        upgrade.old.address, upgrade.new.address, upgrade.workspace)
        outcome = call(upgrade, _progress(ctx, command))
    except UpgradeError as error:
        raise _failed(ctx, command, error.error_id, error.message, error.possible_solutions)
    except _Failure as error:
        raise _failed(ctx, command, error.error_id, error.message, error.hints)
    except Exception as error:
        raise _failed(ctx, command, UNEXPECTED, '{0}: {1}'.format(type(error).__name__, error),
                      ['Read the traceback in this operation\'s events, then run the '
                       'workflow again.']) from error
    record = runtime.finish(ctx.instance.runtime_properties, command, outcome.status,
                            outcome.summary)
    ctx.logger.info('upgrade %s: %s', command, record['status'])


def _failed(ctx, command: str, error_id: str, message: str, hints) -> NonRecoverableError:
    message = redact_text(message)
    hints = [redact_text(hint) for hint in hints or ()]
    runtime.fail(ctx.instance.runtime_properties, command, error_id, message, hints)
    ctx.logger.error('upgrade %s failed [%s]: %s', command, error_id, message)
    for hint in hints:
        ctx.logger.error('  - %s', hint)
    return NonRecoverableError('[{0}] {1}'.format(error_id, message))


@operation(resumable=True)
def plan(ctx, old_manager=None, new_manager=None, node_properties=None, **_):
    """Lifecycle create / upgrade.plan: the checks and the steps; read only."""
    _run(ctx, 'plan', old_manager, new_manager, adapter.plan, node_properties)


@operation(resumable=True)
def prepare(ctx, old_manager=None, new_manager=None, node_properties=None, **_):
    """Lifecycle configure / upgrade.prepare: snapshot, backups, inventory; reversible."""
    _run(ctx, 'prepare', old_manager, new_manager, adapter.prepare, node_properties)


@operation(resumable=True)
def cutover(ctx, old_manager=None, new_manager=None, rehearse=False, node_properties=None,
            **_):
    """upgrade.cutover: new-host or in-place by the node's mode (``rehearse``: stop
    before the point of no return)."""
    _run(ctx, 'cutover', old_manager, new_manager,
         lambda upgrade, progress: adapter.cutover(upgrade, progress, bool(rehearse)),
         node_properties)


@operation(resumable=True)
def start(ctx, old_manager=None, new_manager=None, node_properties=None, **_):
    """Lifecycle start: the cut-over, only when the node allows it at install."""
    if not _properties(ctx, node_properties).get('cutover_on_install'):
        ctx.logger.info('upgrade cutover: not run at install (cutover_on_install is false); '
                        'run the upgrade_cutover workflow when the fleet is ready.')
        return
    cutover(ctx=ctx, old_manager=old_manager, new_manager=new_manager, rehearse=False,
            node_properties=node_properties)


@operation(resumable=True)
def verify_heals(ctx, old_manager=None, new_manager=None, node_properties=None, **_):
    """upgrade.verify_heals: heals the old manager may have duplicated since the cut-over."""
    _run(ctx, 'verify_heals', old_manager, new_manager, adapter.verify_heals, node_properties)
