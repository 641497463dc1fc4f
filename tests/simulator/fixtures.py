"""pytest fixtures for simulated managers, registered for every test directory by
tests/conftest.py (``pytest_plugins = ['tests.simulator.fixtures']``).

``simulated_manager(version, edition='premium', data='empty', **kwargs)`` starts a manager
(default: no SSH host, time scale 0.05; pass ssh=True for the SSH host) and stops it at
teardown, together with the manager last reinstalled on its machine.
"""
import pytest

from tests.simulator.manager import start

TEST_TIME_SCALE = 0.05


@pytest.fixture
def simulated_manager():
    started = []

    def factory(version, edition='premium', data='empty', **kwargs):
        kwargs.setdefault('ssh', False)
        kwargs.setdefault('time_scale', TEST_TIME_SCALE)
        mgr = start(version, edition=edition, data=data, **kwargs)
        started.append(mgr)
        return mgr

    yield factory
    for mgr in reversed(started):
        current = mgr.machine.current
        if current is not None and current is not mgr:
            current.stop()
        mgr.stop()
