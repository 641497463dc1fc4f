"""The one seam between the fleet operations and the runbooks: one function per command.

``plan``, ``prepare``, ``cutover`` and ``verify_heals`` each take a ``FleetUpgrade``
(``fleet.connection``: explicit connections, no cfy profile) and a ``progress`` callback
(``StepEvent`` -> None), and return an ``Outcome`` or raise an ``UpgradeError`` (stable
id, hints).  They delegate to the installed backend.

The default backend, ``RunbooksBackend`` (``fleet.runbooks``), calls the CLI's runbooks
with explicit connections instead of cfy profiles (the contract is in
docs/fleet-design.md, section 5).  ``use_backend(backend)`` installs another
backend for the duration of a ``with`` block: the fleet tests install a simulated fleet
there (tests/fleet/simulated.py); nothing else should.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Protocol

from cloudify_upgrade_plugin.fleet.connection import FleetUpgrade
from cloudify_upgrade_plugin.fleet.outcome import (  # noqa: F401 (re-exported)
    DONE, REHEARSED, Outcome, Progress, StepEvent)
from cloudify_upgrade_plugin.fleet.runbooks import RunbooksBackend

COMMANDS = ('plan', 'prepare', 'cutover', 'verify_heals')


class Backend(Protocol):
    def plan(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...

    def prepare(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...

    def cutover(self, upgrade: FleetUpgrade, progress: Progress,
                rehearse: bool) -> Outcome: ...

    def verify_heals(self, upgrade: FleetUpgrade, progress: Progress) -> Outcome: ...


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
