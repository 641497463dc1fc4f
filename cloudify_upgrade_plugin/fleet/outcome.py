"""What passes between the fleet operations and a backend: ``StepEvent`` and ``Outcome``.

``fleet.adapter`` re-exports both (the operations and the tests read them there);
``fleet.runbooks`` builds them from the runbooks' journal transitions and documents.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

DONE = 'done'
REHEARSED = 'rehearsed'


@dataclass(frozen=True)
class StepEvent:
    """One journal transition of a runbook step, as the Runner reports it."""

    step: str                       # kebab-case step id ("upload-snapshot")
    event: str                      # started | succeeded | skipped | failed | ...
    index: int | None = None        # 1-based position in the runbook
    total: int | None = None
    details: dict = field(default_factory=dict)     # already redacted by the journal

    def line(self) -> str:
        where = '[{0}/{1}] '.format(self.index, self.total) if self.index else ''
        return '{0}{1}: {2}'.format(where, self.step, self.event)


@dataclass(frozen=True)
class Outcome:
    """What a command achieved: ``done`` (or ``rehearsed``) and a non-secret summary."""

    status: str = DONE
    summary: dict = field(default_factory=dict)


Progress = Callable[[StepEvent], None]
