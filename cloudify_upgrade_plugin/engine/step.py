"""The Step contract, the Runbook (an ordered list of steps) and the run Context.

A ``Step`` has a stable kebab-case ``id`` (it names the step in the journal, the report and
``status``; never rename one), a ``title`` and four methods:

- ``check(ctx) -> bool``: True when the step's effect is already in place (the runner then
  journals ``skipped``, or ``succeeded`` with ``recovered`` after an interruption);
- ``run(ctx)``: do it; may return a dict of details for the journal (redacted there);
- ``verify(ctx)``: raise (an ``UpgradeError``) when the effect is not there after ``run``;
- ``rerunnable``: safe to run again after a process died inside ``run``;
- ``point_of_no_return``: the runner asks ``ctx.confirm(step)`` first unless ``ctx.yes``.

Subclass ``Step`` or build one from functions with ``FunctionStep``.

Steps get a ``Context``: the workspace, whether to ask at the point of no return, whether
this run is a rehearsal (the runner stops before the point of no return), a logger, and
the step being run.  A command subclasses it with typed fields of its own (the
managers, the profiles, its options: ``runbooks/context.py``).
"""
import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import click

from cloudify_upgrade_plugin.engine.journal import Journal
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger

STEP_ID_RE = re.compile(r'[a-z][a-z0-9]*(-[a-z0-9]+)*')


def validate_step_id(step_id) -> str:
    if not isinstance(step_id, str) or not STEP_ID_RE.fullmatch(step_id):
        raise ValueError('step id {0!r} is not kebab-case (like "upload-snapshot")'.format(
            step_id))
    return step_id


class Step:
    """Base class: override ``run`` (and usually ``check`` and ``verify``)."""

    id = None
    title = None
    rerunnable = True
    point_of_no_return = False

    def __init__(self, id=None, title=None, rerunnable=None, point_of_no_return=None):
        if id is not None:
            self.id = id
        if title is not None:
            self.title = title
        if rerunnable is not None:
            self.rerunnable = bool(rerunnable)
        if point_of_no_return is not None:
            self.point_of_no_return = bool(point_of_no_return)
        validate_step_id(self.id)
        if not self.title:
            self.title = self.id.replace('-', ' ').capitalize()

    def __repr__(self):
        return '<Step {0}>'.format(self.id)

    def check(self, ctx) -> bool:
        """True when the effect is already in place; the default never skips."""
        return False

    def run(self, ctx) -> Optional[dict]:
        raise NotImplementedError('step {0} has no run()'.format(self.id))

    def verify(self, ctx) -> None:
        """Raise when the effect of ``run`` is not there; the default trusts ``run``."""
        return None


class FunctionStep(Step):
    """A step made of plain functions ``run(ctx)``, ``check(ctx)``, ``verify(ctx)``."""

    def __init__(self, id, title=None, run=None, check=None, verify=None,
                 rerunnable=True, point_of_no_return=False):
        super().__init__(id=id, title=title, rerunnable=rerunnable,
                         point_of_no_return=point_of_no_return)
        if run is None:
            raise ValueError('step {0} needs a run function'.format(id))
        self._run, self._check, self._verify = run, check, verify

    def check(self, ctx) -> bool:
        return bool(self._check(ctx)) if self._check else False

    def run(self, ctx) -> Optional[dict]:
        return self._run(ctx)

    def verify(self, ctx) -> None:
        return self._verify(ctx) if self._verify else None


class Runbook:
    """``Runbook(name, steps, command=None)``: the ordered steps of one command.

    ``name`` is the cfy upgrade subcommand (``prepare``, ``new-host``, ``in-place``);
    ``command`` is how the operator re-runs it (default ``cfy upgrade <name>``) and is what
    ``status`` prints as the next command while steps are pending.
    """

    def __init__(self, name, steps, command=None):
        self.name = name
        self.steps = list(steps)
        self.command = command or 'cfy upgrade {0}'.format(name)
        seen = set()
        for step in self.steps:
            validate_step_id(step.id)
            if step.id in seen:
                raise ValueError('runbook {0} has step {1} twice'.format(name, step.id))
            seen.add(step.id)

    def __iter__(self):
        return iter(self.steps)

    def __len__(self):
        return len(self.steps)

    @property
    def step_ids(self) -> List[str]:
        return [step.id for step in self.steps]


def default_confirm(step: Step) -> bool:
    """Ask on the terminal; refuse (False) when stdin is not a terminal."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return click.confirm('{0}: {1}. This is the point of no return. Go on?'.format(
        step.id, step.title), default=False, err=True)


@dataclass
class Context:
    """What a step gets: the workspace, confirmation, a logger, the step being run."""

    workspace: Optional[Workspace] = None
    yes: bool = False
    confirm: Callable[[Step], bool] = default_confirm
    rehearse: bool = False      # stop before the point of no return (journal ``rehearsed``)
    logger: logging.Logger = field(default_factory=get_logger)
    step: Optional[Step] = field(default=None, init=False)   # set by the Runner

    @property
    def journal(self) -> Optional[Journal]:
        return self.workspace.journal if self.workspace is not None else None


class NotConfirmed(UpgradeError):
    """The operator did not confirm the point of no return (exit 1; nothing was changed)."""
    default_id = 'not-confirmed'
