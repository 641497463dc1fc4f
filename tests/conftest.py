"""Fixtures shared by every test package: a private cfy workdir and the real `cfy` binary.

Integration tests run the real `cfy` (the one installed next to this interpreter, with the
plugin's wheel and its .pth) in a subprocess whose CFY_WORKDIR is a tmp dir, so no test
ever touches ~/.cloudify.
"""
import json
import os
import subprocess
import sys

import pytest

BIN_DIR = os.path.dirname(sys.executable)
CFY = os.path.join(BIN_DIR, 'cfy')


class CfyResult(object):
    """What one `cfy` run did: exit code, stdout, stderr, and the JSON document if any."""

    def __init__(self, argv, proc):
        self.argv = argv
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return 'cfy {0} -> {1}\n--- stdout\n{2}\n--- stderr\n{3}'.format(
            ' '.join(self.argv), self.returncode, self.stdout, self.stderr)


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


def private_home(cfy_workdir) -> str:
    """<cfy_workdir>/home: HOME of the `cfy` runs, so ~/.ssh/known_hosts is the test's own."""
    home = os.path.join(str(cfy_workdir), 'home')
    os.makedirs(home, mode=0o700, exist_ok=True)
    return home


@pytest.fixture
def run_cfy(cfy_workdir):
    """run_cfy(*args, env=None, input=None, timeout=300) -> CfyResult (never raises on rc)."""

    def run(*args, env=None, input=None, timeout=300):
        full_env = dict(os.environ)
        full_env['CFY_WORKDIR'] = str(cfy_workdir)
        full_env['HOME'] = private_home(cfy_workdir)     # the test's own ~/.ssh
        full_env.setdefault('PYTHONWARNINGS', 'ignore')
        full_env.update(env or {})
        argv = [str(a) for a in args]
        proc = subprocess.run([CFY] + argv, env=full_env, input=input,
                              capture_output=True, text=True, timeout=timeout,
                              cwd=str(cfy_workdir))
        return CfyResult(argv, proc)
    return run


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
