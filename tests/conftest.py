"""Fixtures shared by every test package: a private cfy workdir, the real `cfy` binary, the flow.

Integration and reliability tests run the real `cfy` (the one installed next to this
interpreter, with the plugin's wheel and its .pth) in a subprocess whose CFY_WORKDIR is a
tmp dir, so no test ever touches ~/.cloudify.  ``flow`` (tests/flows.py) is the one flow
helper; ``run_cfy`` is its ``run``; ``make_profile`` uses the stock `cfy profiles use`.

Fixtures defined outside this file and shared across directories are registered once here,
in ``pytest_plugins``: ``simulated_manager`` and ``simulated_cluster``
(tests/simulator/fixtures.py).
"""
import os

import pytest

from tests import flows

pytest_plugins = ['tests.simulator.fixtures']


@pytest.fixture
def cfy_workdir(tmp_path, monkeypatch):
    """A private CFY_WORKDIR (cfy keeps its state in <it>/.cloudify).

    Also repoints cloudify_cli.env's import-time paths for in-process tests.
    """
    workdir = tmp_path / 'cfyhome'
    workdir.mkdir(mode=0o700)
    monkeypatch.setenv('CFY_WORKDIR', str(workdir))
    for name in ('CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD', 'CLOUDIFY_TENANT',
                 'CLOUDIFY_TOKEN', 'CLOUDIFY_SSL_TRUST_ALL'):
        monkeypatch.delenv(name, raising=False)
    try:
        from cloudify_cli import env
    except ImportError:  # pragma: no cover - cloudify is a dependency
        return workdir
    dot = os.path.join(str(workdir), '.cloudify')
    monkeypatch.setattr(env, 'CLOUDIFY_WORKDIR', dot)
    monkeypatch.setattr(env, 'PROFILES_DIR', os.path.join(dot, 'profiles'))
    monkeypatch.setattr(env, 'ACTIVE_PROFILE', os.path.join(dot, 'active.profile'))
    return workdir


@pytest.fixture
def flow(cfy_workdir, tmp_path):
    """This test's upgrade through the real `cfy` (a tests.flows.Flow on ``cfy_workdir``).

    Gates still holding a request are released at the end; ``CFY_REL_TIMING=1`` prints every
    `cfy` run of the test (duration, exit code)."""
    this = flows.Flow(cfy_workdir, tmp_path / 'logs')
    yield this
    this.release_gates()
    if os.environ.get('CFY_REL_TIMING'):
        this.print_timings()


@pytest.fixture
def run_cfy(flow):
    """run_cfy(*args, env=None, input=None, timeout=300) -> CfyResult (never raises on rc)."""
    return flow.run


@pytest.fixture
def make_profile(run_cfy, cfy_workdir):
    """make_profile(name, sim, ssh=True, password=None) creates (and activates) a cfy profile.

    Uses the stock `cfy profiles use` with --skip-credentials-validation: the 7.0.5 CLI
    cannot validate managers older than 5.0.5 (behaviour §6.1, §11), which is also what an
    operator must do.
    """

    def make(name, sim, ssh=True, password=None, username=None):
        args = ['profiles', 'use', '127.0.0.1', '--profile-name', name,
                '--rest-port', sim.rest_port,
                '-u', username or sim.admin_username,
                '-p', password or sim.admin_password,
                '-t', 'default_tenant', '--skip-credentials-validation']
        if ssh and getattr(sim, 'ssh_port', None):
            args += ['--ssh-user', sim.ssh_user, '--ssh-key', sim.ssh_key,
                     '--ssh-port', sim.ssh_port]
        result = run_cfy(*args)
        assert result.returncode == 0, result
        if ssh and getattr(sim, 'ssh_port', None):
            from tests.simulator.helpers import trust_host_keys
            trust_host_keys(cfy_workdir, sim)
        return name
    return make
