"""Fixtures for the engine tests: a private cfy workdir, a fresh workspace, clean globals."""
import logging
import os
import subprocess
import sys

import pytest

from cloudify_upgrade_plugin.engine import redact as redact_module

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
CRASH_SCRIPT = os.path.join(HERE, 'engine_crash_script.py')


@pytest.fixture(autouse=True)
def _clean_globals(monkeypatch):
    """No registered secret, json mode or verbosity leaks from one test into another."""
    redact_module.clear_registered_secrets()
    try:
        from cloudify_cli import logger as cli_logger
    except ImportError:  # pragma: no cover - cloudify is a dependency
        cli_logger = None
    if cli_logger is not None:
        monkeypatch.setattr(cli_logger, 'json_output', False)
        monkeypatch.setattr(cli_logger, 'verbosity_level', cli_logger.NO_VERBOSE)
    yield
    redact_module.clear_registered_secrets()


@pytest.fixture(autouse=True)
def _restore_logging():
    """Undo what cfy's logging.config.dictConfig does when a test invokes a cfy command.

    It disables every other existing logger and leaves handlers bound to CliRunner's
    closed streams; later tests (ours or other packages') must not inherit that.
    """
    manager = logging.root.manager
    disabled = {name: lg.disabled for name, lg in manager.loggerDict.items()
                if isinstance(lg, logging.Logger)}
    kept = {}
    for name in ('cloudify.cli.main', 'logfile'):
        lg = logging.getLogger(name)
        kept[name] = (list(lg.handlers), lg.level, lg.propagate)
    yield
    for name, (handlers, level, propagate) in kept.items():
        lg = logging.getLogger(name)
        for handler in lg.handlers:
            if handler not in handlers:
                handler.close()
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
    for name, lg in list(manager.loggerDict.items()):
        if isinstance(lg, logging.Logger):
            lg.disabled = disabled.get(name, False)


@pytest.fixture
def workdir(cfy_workdir, monkeypatch):
    """cfy_workdir (tests/conftest.py) plus cfy's log file kept inside it."""
    from cloudify_cli import logger as cli_logger
    monkeypatch.setattr(cli_logger, 'DEFAULT_LOG_FILE',
                        os.path.join(str(cfy_workdir), '.cloudify', 'logs', 'cli.log'))
    return cfy_workdir


@pytest.fixture
def ws(workdir):
    from cloudify_upgrade_plugin.engine.workspace import Workspace
    return Workspace.create('upg-test', mode='new-host')


@pytest.fixture
def run_script(workdir):
    """run_script(*args, env=None, wait=True) runs engine_crash_script.py in a subprocess."""

    def run(*args, env=None, wait=True):
        full_env = dict(os.environ)
        full_env['CFY_WORKDIR'] = str(workdir)
        full_env['PYTHONPATH'] = REPO_ROOT + os.pathsep + full_env.get('PYTHONPATH', '')
        full_env.pop('CRASH_HANG', None)
        full_env.update(env or {})
        argv = [sys.executable, CRASH_SCRIPT] + [str(a) for a in args]
        if not wait:
            return subprocess.Popen(argv, env=full_env, cwd=REPO_ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return subprocess.run(argv, env=full_env, cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120)
    return run
