"""The one seam between the fleet operations and the runbooks: one function per command.

``plan``, ``prepare``, ``cutover`` and ``verify_heals`` each take a ``FleetUpgrade``
(``fleet.connection``: explicit connections, no cfy profile) and a ``progress`` callback
(``StepEvent`` -> None), and return an ``Outcome`` or raise an ``UpgradeError`` (stable
id, hints).  They delegate to the installed backend.

The default backend, ``RunbooksBackend``, is where the runbooks will be called once they
take connection objects instead of cfy profiles (issue 18 restructures them; the contract
they must offer is in docs/fleet-design.md).  Until then it raises ``NotImplementedError``
naming what is missing, and changes nothing.  ``use_backend(backend)`` installs another
backend for the duration of a ``with`` block: the fleet tests install a simulated fleet
there (tests/fleet/simulated.py); nothing else should.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from cloudify_upgrade_plugin.fleet.connection import FleetUpgrade

COMMANDS = ('plan', 'prepare', 'cutover', 'verify_heals')
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


class Backend(Protocol):
    def plan(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...

    def prepare(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...

    def cutover(self, upgrade: FleetUpgrade, progress: Progress,
                rehearse: bool) -> Outcome: ...

    def verify_heals(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...


_PENDING = (
    'Fleet upgrades cannot run `{0}` yet: the runbooks still read cfy profiles and the '
    'cfy workdir, and the fleet needs them to take explicit connection objects, a '
    'workspace directory and a progress sink (docs/fleet-design.md, "What the runbooks '
    'must offer"). Nothing was changed on {1}. Use `cfy upgrade {0}` from a cfy host '
    'meanwhile.')


class RunbooksBackend:
    """The runbooks, called without a cfy profile (pending: raises NotImplementedError)."""

    def _pending(self, command: str, upgrade: FleetUpgrade) -> NotImplementedError:
        return NotImplementedError(_PENDING.format(command.replace('_', '-'),
                                                   upgrade.old.address))

    def plan(self, upgrade, progress):
        raise self._pending('plan', upgrade)

    def prepare(self, upgrade, progress):
        raise self._pending('prepare', upgrade)

    def cutover(self, upgrade, progress, rehearse):
        raise self._pending(upgrade.mode, upgrade)

    def verify_heals(self, upgrade, progress):
        raise self._pending('verify_heals', upgrade)


_lock = threading.Lock()
_backend: Backend = RunbooksBackend()


@contextlib.contextmanager
def use_backend(backend: Backend) -> Iterator[Backend]:
    """Install ``backend`` for every operation of this process until the block ends."""
    global _backend
    with _lock:
        previous, _backend = _backend, backend
    try:
        yield backend
    finally:
        with _lock:
            _backend = previous


def plan(upgrade: FleetUpgrade, progress: Progress) -> Outcome:
    """`cfy upgrade plan` for one managed upgrade: checks and steps, read only."""
    return _backend.plan(upgrade, progress)


def prepare(upgrade: FleetUpgrade, progress: Progress) -> Outcome:
    """`cfy upgrade prepare`: snapshot, download, host backups, inventory; reversible."""
    return _backend.prepare(upgrade, progress)


def cutover(upgrade: FleetUpgrade, progress: Progress, rehearse: bool = False) -> Outcome:
    """`cfy upgrade new-host` / `in-place` (by ``upgrade.mode``); with ``rehearse`` it
    stops before the point of no return and returns a ``rehearsed`` outcome."""
    return _backend.cutover(upgrade, progress, rehearse)


def verify_heals(upgrade: FleetUpgrade, progress: Progress) -> Outcome:
    """`cfy upgrade verify-heals`; suspicious heals are an ``UpgradeError``."""
    return _backend.verify_heals(upgrade, progress)
