"""Fixtures of the reliability suite and its ``slow`` marker.

``@pytest.mark.slow`` scenarios (the long crash-matrix variants) are deselected unless the run
selects them with ``-m slow`` (or any ``-m`` expression naming ``slow``) or sets
``CFY_UPGRADE_SLOW=1``; see tests/reliability/README.md for the commands.

Fixtures: ``scenario`` (a harness.Scenario on the test's private CFY_WORKDIR),
``managers`` (old 4.1 premium ``demo`` + new 7.0 ``empty`` simulators with SSH hosts and
known admin passwords, profiles ``old`` (active) and ``new``), ``prepared`` (the same after a
successful ``prepare``), and ``simulated_manager`` from tests/simulator/fixtures.py.
"""
import os

import pytest

from tests.reliability import harness
from tests.simulator.fixtures import simulated_manager  # noqa: F401  (pytest fixture)

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: long reliability variants (run with -m slow or CFY_UPGRADE_SLOW=1)')


def _slow_selected(config):
    if os.environ.get('CFY_UPGRADE_SLOW') == '1':
        return True
    return 'slow' in (config.getoption('markexpr', '') or '')


def pytest_collection_modifyitems(config, items):
    """Without the slow tier selected, its variants are deselected (a separate tier, reported
    as "deselected"), never collected as skipped tests."""
    if _slow_selected(config):
        return
    kept, slow = [], []
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep) and 'slow' in item.keywords:
            slow.append(item)
        else:
            kept.append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = kept


@pytest.fixture
def scenario(cfy_workdir, tmp_path):
    sc = harness.Scenario(cfy_workdir, tmp_path / 'logs')
    yield sc
    sc.release_gates()
    if os.environ.get('CFY_REL_TIMING'):
        for result in sc.captures:
            print('  {0:6.1f}s rc={1} cfy {2}'.format(
                result.duration, result.returncode, ' '.join(result.argv)))


@pytest.fixture
def managers(scenario, simulated_manager):  # noqa: F811
    """Old 4.1 premium demo and new 7.0 empty managers, both with SSH hosts; profiles."""
    from tests.reliability import flows
    return flows.setup(scenario, simulated_manager)
