"""Fixtures of the simulator's contract tests (the `simulated_manager` factory)."""
from tests.simulator.fixtures import simulated_manager  # noqa: F401
