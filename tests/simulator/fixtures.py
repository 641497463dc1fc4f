"""pytest fixtures for simulated managers and clusters, registered for every test directory
by tests/conftest.py (``pytest_plugins = ['tests.simulator.fixtures']``).

``simulated_manager(version, edition='premium', data='empty', **kwargs)`` starts a manager
(default: no SSH host, time scale 0.05; pass ssh=True for the SSH host) and stops it at
teardown, together with the manager last reinstalled on its machine.

``simulated_cluster(version, managers=3, brokers=3, db_nodes=3, **kwargs)`` starts a
cluster (tests/simulator/cluster.py; same defaults: no SSH hosts, time scale 0.05) and stops
every node at teardown.
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


@pytest.fixture
def simulated_cluster():
    from tests.simulator.cluster import start_cluster
    started = []

    def factory(version, managers=3, brokers=3, db_nodes=3, **kwargs):
        kwargs.setdefault('ssh', False)
        kwargs.setdefault('time_scale', TEST_TIME_SCALE)
        cluster = start_cluster(version, managers=managers, brokers=brokers,
                                db_nodes=db_nodes, **kwargs)
        started.append(cluster)
        return cluster

    yield factory
    for cluster in reversed(started):
        cluster.stop()
