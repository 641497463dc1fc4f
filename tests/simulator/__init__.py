"""Simulated Cloudify Managers (REST, per version) and their hosts, for tests and the demo.

In-process API: ``start(version, edition='premium', data='empty', state_dir=None, ssh=True,
port=0, time_scale=1.0, **kwargs) -> SimulatedManager``; ``start_cluster(version,
managers=3, brokers=3, db_nodes=3, ...) -> SimulatedCluster``.  Command line:
``python -m tests.simulator --manager-version V ...``.  See tests/simulator/README.md.
"""
from tests.simulator.cluster import SimulatedCluster, start_cluster
from tests.simulator.manager import SimulatedManager, start
from tests.simulator.rules import VERSIONS

__all__ = ['SimulatedCluster', 'SimulatedManager', 'VERSIONS', 'start', 'start_cluster']
