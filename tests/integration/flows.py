"""Shared helpers of the `new-host` / `in-place` integration tests (issues 6 and 7).

Owns: a ``Flow`` bound to one test's cfy workdir (run `cfy upgrade ...` in a subprocess,
start it in the background and SIGKILL it once the journal shows a step started, read the
workspace: journal, workspace.json, every file for secrets), and small readers of what the
simulated managers received and hold (restore requests, install_new_agents runs per
deployment, logins with the seeded users' passwords).  Only the real `cfy` is driven; the
simulators run in the test process.
"""
import json
import os
import signal
import subprocess
import time

from tests.conftest import CFY, CfyResult, private_home
from tests.simulator.helpers import raw

RESTORE_WORKFLOW = 'restore_snapshot'


class Flow(object):
    """One test's upgrade: ``run(*args)``, ``spawn(*args)``, ``prepare(...)``, workspace."""

    def __init__(self, run_cfy, cfy_workdir):
        self.run = run_cfy
        self.workdir = str(cfy_workdir)
        self.upgrade_id = None

    # -- commands -----------------------------------------------------------------------
    def env(self):
        env = dict(os.environ)
        env['CFY_WORKDIR'] = self.workdir
        env['HOME'] = private_home(self.workdir)
        env.setdefault('PYTHONWARNINGS', 'ignore')
        for name in ('CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD', 'CLOUDIFY_TENANT'):
            env.pop(name, None)
        return env

    def prepare(self, profile, mode='new-host', *extra):
        result = self.run('upgrade', 'prepare', '--from-profile', profile, '--mode', mode,
                          '--json', *extra)
        assert result.returncode == 0, result
        self.upgrade_id = result.json['upgrade_id']
        return result

    def upgrade(self, command, *args):
        """`cfy upgrade <command> --upgrade-id ID --json <args>` (CfyResult, any rc)."""
        return self.run('upgrade', command, '--upgrade-id', self.upgrade_id, '--json', *args)

    def spawn(self, command, *args):
        """The same command in the background (a Popen, its output in files)."""
        argv = [CFY, 'upgrade', command, '--upgrade-id', self.upgrade_id, '--json'] + \
            [str(a) for a in args]
        out = open(os.path.join(self.workdir, 'spawn.out'), 'w')
        err = open(os.path.join(self.workdir, 'spawn.err'), 'w')
        try:
            return subprocess.Popen(argv, env=self.env(), stdout=out, stderr=err,
                                    cwd=self.workdir)
        finally:
            out.close()
            err.close()

    def kill_when(self, proc, step, event='started', timeout=60, extra=None):
        """SIGKILL `proc` as soon as the journal has `step` `event` (and `extra()` is true).

        Returns the journal entry seen.  Fails if the process ends first.
        """
        deadline = time.monotonic() + timeout
        while True:
            entry = self.last_entry(step, event)
            if entry is not None and (extra is None or extra()):
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return entry
            if proc.poll() is not None:
                raise AssertionError('cfy ended (rc {0}) before {1} {2}:\n{3}'.format(
                    proc.returncode, step, event, self.spawn_output()))
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(30)
                raise AssertionError('timed out waiting for {0} {1}'.format(step, event))
            time.sleep(0.02)

    def spawn_output(self):
        parts = []
        for name in ('spawn.out', 'spawn.err'):
            try:
                with open(os.path.join(self.workdir, name)) as stream:
                    parts.append(stream.read())
            except OSError:
                pass
        return '\n'.join(parts)

    # -- the workspace --------------------------------------------------------------------
    @property
    def root(self):
        return os.path.join(self.workdir, '.cloudify', 'upgrades', self.upgrade_id)

    def journal(self):
        try:
            with open(os.path.join(self.root, 'journal.jsonl')) as stream:
                return [json.loads(line) for line in stream if line.strip()]
        except (OSError, ValueError):
            return []

    def events(self, step):
        return [e['event'] for e in self.journal() if e['step'] == step]

    def last_entry(self, step, event):
        found = [e for e in self.journal() if e['step'] == step and e['event'] == event]
        return found[-1] if found else None

    def meta(self):
        with open(os.path.join(self.root, 'workspace.json')) as stream:
            return json.load(stream)

    def files(self):
        """Every file under the cfy workdir's upgrades/ directory."""
        found = []
        for base, _, names in os.walk(os.path.join(self.workdir, '.cloudify', 'upgrades')):
            found.extend(os.path.join(base, name) for name in names)
        return found

    def files_containing(self, *secrets):
        """[(path, secret)] for every workspace file that holds one of `secrets`."""
        hits = []
        wanted = [s.encode('utf-8') for s in secrets if s]
        for path in self.files():
            with open(path, 'rb') as stream:
                data = stream.read()
            hits.extend((path, s.decode('utf-8')) for s in wanted if s in data)
        return hits

    def profile(self, name):
        """The stored cfy profile (context file) as a dict."""
        path = os.path.join(self.workdir, '.cloudify', 'profiles', name, 'context.json')
        with open(path) as stream:
            return json.load(stream)

    def active_profile(self):
        with open(os.path.join(self.workdir, '.cloudify', 'active.profile')) as stream:
            return stream.read().strip()


# -- what the simulators received / hold --------------------------------------------------

def restore_requests(sim):
    """The `POST /snapshots/<id>/restore` requests that started a restore (2xx)."""
    return [r for r in sim.requests.matching('POST', '/restore')
            if r['status'] is not None and 200 <= r['status'] < 300]


def upload_requests(sim):
    return sim.requests.matching('PUT', '/archive')


def restore_executions(sim):
    with sim.state.lock:
        return [dict(e) for e in sim.state.all('executions')
                if e['workflow_id'] == RESTORE_WORKFLOW]


def can_login(sim, username, password, tenant='default_tenant'):
    response = raw(sim, 'GET', sim.rules.api_prefix + '/blueprints', username=username,
                   password=password, tenant=tenant)
    return response.status_code == 200


def agents_by_broker(sim):
    """{(tenant, deployment): set of broker ports} of the agents `sim` knows."""
    found = {}
    for agent in sim.agents():
        key = (agent['tenant_name'], agent['deployment'])
        found.setdefault(key, set()).add(agent['broker']['port'])
    return found


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.02)


__all__ = ['Flow', 'CfyResult', 'restore_requests', 'upload_requests', 'restore_executions',
           'can_login', 'agents_by_broker', 'wait_for']
