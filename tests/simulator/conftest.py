"""Fixtures of the simulator's contract tests (the `simulated_manager` and
`simulated_cluster` factories)."""
from tests.simulator.fixtures import simulated_cluster, simulated_manager  # noqa: F401
