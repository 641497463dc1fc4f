"""Fixtures of the simulator's contract tests: `simulated_manager` and `simulated_cluster`
(tests/simulator/fixtures.py), registered once for every test directory in tests/conftest.py
(``pytest_plugins``)."""
