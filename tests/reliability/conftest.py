"""Fixtures of the reliability suite and its ``slow`` marker.

``@pytest.mark.slow`` scenarios (the long crash-matrix variants) are deselected unless the run
selects them with ``-m slow`` (or any ``-m`` expression naming ``slow``) or sets
``CFY_UPGRADE_SLOW=1``; see tests/reliability/README.md for the commands.

Fixture: ``managers``, the ``flow`` of tests/conftest.py after ``Flow.setup``: old 4.1
premium ``demo`` + new 7.0 ``empty`` simulators with SSH hosts and known admin passwords,
profiles ``old`` (active) and ``new``.  (``flow``, ``simulated_manager``: tests/conftest.py.)
"""
import os

import pytest

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
def managers(flow, simulated_manager):
    """Old 4.1 premium demo and new 7.0 empty managers, both with SSH hosts; profiles."""
    return flow.setup(simulated_manager)
