"""Fixtures of every unit test: a clean failed-login ledger (manager/logins.py).

The ledger is process-wide (it mirrors each manager's failed-login count for the whole
run), and the unit tests talk to the same fake addresses again and again.
"""
import pytest

from cloudify_upgrade_plugin.manager.logins import LEDGER


@pytest.fixture(autouse=True)
def fresh_failed_logins():
    LEDGER.on_change(None)
    LEDGER.forget()
    yield LEDGER
    LEDGER.on_change(None)
    LEDGER.forget()
