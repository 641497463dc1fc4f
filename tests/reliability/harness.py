"""The reliability suite's harness (issue 9): one upgrade scenario against simulated managers,
driven through the real `cfy` in subprocesses, with kill points, request gates and the
invariants every scenario asserts afterwards.

- ``Scenario``: a private CFY_WORKDIR, the simulated managers, their cfy profiles, every
  `cfy` run (captured, for the secrets scan), ``run`` / ``crash`` / ``start``.
- Kill points: ``crash(args, pause=(step, event, phase))`` stops the process inside
  ``Journal.append`` (tests/reliability/pausehook, loaded through PYTHONPATH only in that
  subprocess); ``crash(args, gate=Gate(...))`` waits until the process is blocked on a
  held request of a simulated manager.  Either way the test then sends SIGKILL.
- ``Gate``: holds one matching request of a simulated manager, before the manager acts on
  it (``phase='before'``) or after it acted with the answer held back (``phase='after'``);
  ``SshGate`` does the same for `systemctl` calls over SSH.
- Invariants: ``snapshot_files_problems`` (every snapshot/*.zip has a matching .sha256
  equal to the server archive's SHA-256), ``mutations`` (what changed a manager),
  ``same_data`` (the target holds the source's data), journal helpers.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

from tests.conftest import CFY, CfyResult
from tests.simulator.helpers import sha256_of, trust_host_keys

HERE = os.path.dirname(os.path.abspath(__file__))
PAUSE_DIR = os.path.join(HERE, 'pausehook')
MUTATING = ('POST', 'PUT', 'PATCH', 'DELETE')
KILL_TIMEOUT = 90          # longest wait for a kill point to be reached (seconds)
RUN_TIMEOUT = 240          # longest `cfy` run

# Known, distinct passwords (the secrets scan looks for them).
OLD_ADMIN_PASSWORD = 'Old-Admin-Pw-7f3a91c2e5'
NEW_ADMIN_PASSWORD = 'New-Admin-Pw-2b8d40e6f1'


# -- waiting ------------------------------------------------------------------------------

def wait_for(predicate, what, timeout=KILL_TIMEOUT, interval=0.02, proc=None):
    """Poll ``predicate`` until true; fail if ``proc`` ended first or on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError('the process ended (rc {0}) before {1}'.format(
                proc.returncode, what))
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(interval)


# -- request gates --------------------------------------------------------------------------

class _Hold(object):
    """What every gate shares: ``hit`` is set once the held call waits, ``hold()`` waits
    for ``release(drop=...)`` (at most ``max_hold`` seconds) and tells whether to drop."""

    def __init__(self, max_hold):
        self.max_hold = max_hold
        self.hit = threading.Event()
        self._release = threading.Event()
        self._drop = False

    def hold(self):
        self.hit.set()
        self._release.wait(self.max_hold)
        return self._drop

    def reached(self):
        return self.hit.is_set()

    def release(self, drop=False):
        self._drop = drop
        self._release.set()


class Gate(_Hold):
    """Hold the matching request of a simulated manager until ``release()``.

    ``phase='before'``: the request waits before the manager acts on it; ``release()`` lets
    the manager act on it, ``release(drop=True)`` (what ``Scenario.crash`` does once the
    client is dead) closes the connection without acting: the request never reached the
    REST service.  ``phase='after'``: the manager acts, then its answer is held (effect
    done, answer lost when the client dies).  ``when()`` (optional) must be true for a
    request to be held; ``skip`` matching requests pass first.  Only one request is held.
    """

    def __init__(self, mgr, method, pattern, phase='before', when=None, skip=0,
                 max_hold=120):
        super().__init__(max_hold)
        self.mgr = mgr
        self.method = method
        self.regex = re.compile(pattern)
        self.phase = phase
        self.when = when
        self.skip = skip
        self._lock = threading.Lock()
        self._done = False
        self._original = mgr.api.handle
        mgr.api.handle = self._handle

    def _take(self, request):
        if request.method != self.method or not self.regex.search(request.path):
            return False
        with self._lock:
            if self._done:
                return False
            if self.when is not None and not self.when():
                return False
            if self.skip > 0:
                self.skip -= 1
                return False
            self._done = True
            return True

    def _handle(self, request):
        held = self._take(request)
        if held and self.phase == 'before' and self.hold():
            self.mgr.record_request(request)['status'] = 'dropped'
            raise ConnectionError('the client died while its request was held')
        response = self._original(request)
        if held and self.phase == 'after':
            self.hold()
        return response


class SshGate(_Hold):
    """Hold one ``systemctl ACTION UNIT`` that reaches a simulated manager over SSH
    (``phase`` and ``release(drop=...)`` as for ``Gate``: a dropped command never runs)."""

    def __init__(self, mgr, action, unit, phase='before', max_hold=120):
        super().__init__(max_hold)
        self.mgr = mgr
        self._done = False
        original = mgr.systemctl

        def systemctl(act, name):
            held = not self._done and act == action and name.replace('.service', '') == unit
            if held:
                self._done = True
            if held and phase == 'before' and self.hold():
                return 255, 'the SSH client went away\n'
            result = original(act, name)
            if held and phase == 'after':
                self.hold()
            return result

        mgr.systemctl = systemctl


class ExecGate(_Hold):
    """Hold the first command ``name`` (e.g. ``cp``) that reaches a simulated manager's host
    over SSH (``sudo``: only under sudo when True; ``when(argv)``: only when true);
    ``phase`` and ``release(drop=...)`` as for ``Gate`` (a dropped command never runs and
    fails as if the client went away)."""

    def __init__(self, mgr, name, sudo=None, phase='before', when=None, max_hold=120):
        super().__init__(max_hold)
        host = mgr.machine.host
        self._done = False
        original = host.execute

        def execute(argv, stdin=b''):
            words = list(argv)
            under_sudo = bool(words) and words[0] == 'sudo'
            if under_sudo:
                words = [w for w in words[1:] if not w.startswith('-')] or ['']
            held = (not self._done and words and words[0] == name
                    and (sudo is None or sudo == under_sudo)
                    and (when is None or when(words)))
            if held:
                self._done = True
            if held and phase == 'before' and self.hold():
                return 255, b'', b'the SSH client went away\n'
            result = original(argv, stdin)
            if held and phase == 'after':
                self.hold()
            return result

        host.execute = execute


# -- the scenario -----------------------------------------------------------------------------

class Scenario(object):
    """One upgrade: a cfy workdir, simulated managers and every `cfy` run made on them."""

    def __init__(self, workdir, logs_dir):
        self.workdir = str(workdir)
        self.dot = os.path.join(self.workdir, '.cloudify')
        self.home = os.path.join(self.workdir, 'home')
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        self.logs_dir = str(logs_dir)
        os.makedirs(self.logs_dir, exist_ok=True)
        self.captures = []        # CfyResult of every run (killed ones too)
        self.gates = []
        self.sims = {}
        self._runs = 0

    # -- profiles ---------------------------------------------------------------------------
    def profile(self, name, sim, ssh=True, password=None, ssh_key=None, activate=True,
                protocol='http', port=None, certificate=None):
        """Write the cfy profile ``name`` of ``sim`` (what `cfy profiles use` stores)."""
        from cloudify_cli.env import ProfileContext
        profile = ProfileContext(profile_name=name)
        profile.manager_ip = '127.0.0.1'
        profile.rest_port = port or sim.rest_port
        profile.rest_protocol = protocol
        profile.rest_certificate = certificate
        profile.manager_username = sim.admin_username
        profile.manager_password = password or sim.admin_password
        profile.manager_tenant = 'default_tenant'
        if ssh and sim.ssh_port:
            profile.ssh_user = sim.ssh_user
            profile.ssh_key = ssh_key or sim.ssh_key
            profile.ssh_port = sim.ssh_port
        directory = os.path.join(self.dot, 'profiles', name)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        profile.save(destination=directory)
        if ssh and sim.ssh_port:
            trust_host_keys(self.workdir, sim)
        if activate:
            self.activate(name)
        self.sims[name] = sim
        return name

    def activate(self, name):
        with open(os.path.join(self.dot, 'active.profile'), 'w') as stream:
            stream.write(name)

    def read_profile(self, name):
        with open(os.path.join(self.dot, 'profiles', name, 'context.json')) as stream:
            return json.load(stream)

    # -- running cfy ------------------------------------------------------------------------
    def env(self, extra=None):
        full = dict(os.environ)
        full['CFY_WORKDIR'] = self.workdir
        full['HOME'] = self.home      # ~/.ssh/known_hosts is the scenario's own
        full.setdefault('PYTHONWARNINGS', 'ignore')
        for name in ('CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD', 'CLOUDIFY_TENANT',
                     'CLOUDIFY_TOKEN', 'CLOUDIFY_SSL_TRUST_ALL', 'CFY_REL_PAUSE',
                     'CFY_REL_PAUSE_MARKER'):
            full.pop(name, None)
        full.update(extra or {})
        return full

    def run(self, *args, env=None, timeout=RUN_TIMEOUT, preexec_fn=None):
        """Run `cfy ARGS` to its end; the result is also kept for the secrets scan."""
        argv = [str(a) for a in args]
        began = time.monotonic()
        proc = subprocess.run([CFY] + argv, env=self.env(env), capture_output=True,
                              text=True, timeout=timeout, cwd=self.workdir,
                              preexec_fn=preexec_fn)
        result = CfyResult(argv, proc)
        result.duration = time.monotonic() - began
        self.captures.append(result)
        return result

    def start(self, *args, env=None):
        """Start `cfy ARGS` (Popen); its stdout/stderr go to files under logs_dir."""
        self._runs += 1
        argv = [str(a) for a in args]
        out = open(os.path.join(self.logs_dir, 'run{0}.out'.format(self._runs)), 'w+')
        err = open(os.path.join(self.logs_dir, 'run{0}.err'.format(self._runs)), 'w+')
        proc = subprocess.Popen([CFY] + argv, env=self.env(env), stdout=out, stderr=err,
                                text=True, cwd=self.workdir)
        proc.argv, proc.out, proc.err = argv, out, err
        proc.began = time.monotonic()
        return proc

    def finish(self, proc, timeout=RUN_TIMEOUT):
        """Wait for a started process; its CfyResult (kept for the secrets scan)."""
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        proc.out.seek(0)
        proc.err.seek(0)
        stdout, stderr = proc.out.read(), proc.err.read()
        proc.out.close()
        proc.err.close()
        result = CfyResult(proc.argv, subprocess.CompletedProcess(
            proc.argv, proc.returncode, stdout, stderr))
        result.duration = time.monotonic() - proc.began
        self.captures.append(result)
        return result

    def crash(self, *args, pause=None, gate=None, until=None, env=None, inside=None):
        """Start `cfy ARGS`, wait for the kill point, SIGKILL it; the (killed) result.

        ``pause=(step, event, phase)``: the process stops in Journal.append (see
        pausehook/sitecustomize.py).  ``gate``: a Gate/SshGate it must block on.
        ``until``: a predicate (e.g. on a simulator's state) that decides the moment.
        ``inside``: a step id whose ``started`` must be the last journal event of that
        step when the kill happens (checked after the kill).
        """
        extra = dict(env or {})
        marker = None
        if pause is not None:
            self._runs += 1
            marker = os.path.join(self.logs_dir, 'pause{0}.marker'.format(self._runs))
            extra['CFY_REL_PAUSE'] = ':'.join(pause)
            extra['CFY_REL_PAUSE_MARKER'] = marker
            extra['PYTHONPATH'] = os.pathsep.join(
                [PAUSE_DIR] + [p for p in [os.environ.get('PYTHONPATH')] if p])
        proc = self.start(*args, env=extra)
        try:
            if marker is not None:
                wait_for(lambda: os.path.exists(marker), 'the pause at {0}'.format(pause),
                         proc=proc)
            if gate is not None:
                wait_for(gate.reached, 'the held request', proc=proc)
            if until is not None:
                wait_for(until, 'the kill moment', proc=proc, interval=0.005)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            if gate is not None:
                gate.release(drop=True)
        result = self.finish(proc)
        assert result.returncode == -signal.SIGKILL, result
        if inside is not None:
            events = [e['event'] for e in self.journal() if e['step'] == inside
                      and e['event'] in ('started', 'succeeded', 'failed', 'skipped')]
            assert events and events[-1] == 'started', (inside, events, result)
        return result

    def gate(self, *args, **kwargs):
        gate = Gate(*args, **kwargs)
        self.gates.append(gate)
        return gate

    def ssh_gate(self, *args, **kwargs):
        gate = SshGate(*args, **kwargs)
        self.gates.append(gate)
        return gate

    def exec_gate(self, *args, **kwargs):
        gate = ExecGate(*args, **kwargs)
        self.gates.append(gate)
        return gate

    def release_gates(self):
        for gate in self.gates:
            gate.release()

    # -- the workspace ----------------------------------------------------------------------
    @property
    def upgrades_dir(self):
        return os.path.join(self.dot, 'upgrades')

    def upgrade_ids(self):
        try:
            return sorted(name for name in os.listdir(self.upgrades_dir)
                          if os.path.isfile(os.path.join(self.upgrades_dir, name,
                                                         'workspace.json')))
        except FileNotFoundError:
            return []

    def workspace(self, upgrade_id=None):
        """The path of the workspace ``upgrade_id`` (default: the only one)."""
        if upgrade_id is None:
            ids = self.upgrade_ids()
            assert len(ids) == 1, ids
            upgrade_id = ids[0]
        return os.path.join(self.upgrades_dir, upgrade_id)

    def meta(self, upgrade_id=None):
        return read_json(os.path.join(self.workspace(upgrade_id), 'workspace.json'))

    def journal(self, upgrade_id=None):
        if upgrade_id is None and not self.upgrade_ids():
            return []
        return journal_entries(self.workspace(upgrade_id))


def show(result, limit=6000):
    """The full story of a run for an assertion message (pytest shortens reprs)."""
    return 'cfy {0} -> rc {1}\n--- stdout\n{2}\n--- stderr\n{3}'.format(
        ' '.join(result.argv), result.returncode, result.stdout[-limit:],
        result.stderr[-limit:])


# -- files ----------------------------------------------------------------------------------

def read_json(path, default=None):
    try:
        with open(path, encoding='utf-8') as stream:
            return json.load(stream)
    except FileNotFoundError:
        return default


def journal_entries(workspace):
    path = os.path.join(workspace, 'journal.jsonl')
    try:
        with open(path, encoding='utf-8') as stream:
            return [json.loads(line) for line in stream if line.strip()]
    except FileNotFoundError:
        return []


def snapshot_files_problems(workspace, server_sha256, require_sha_file=True):
    """What is wrong with the snapshot zips under ``workspace/snapshot``: [] when each
    ``<id>.zip`` has a ``.sha256`` that matches it and equals ``server_sha256[<id>]``
    (the SHA-256 of the archive on the manager).  A missing directory is fine.
    ``require_sha_file=False`` (right after a kill): a zip may lack its .sha256 (the
    process may die between the two renames), but its content must be the server's."""
    problems = []
    directory = os.path.join(workspace, 'snapshot')
    if not os.path.isdir(directory):
        return problems
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.zip'):
            continue
        path = os.path.join(directory, name)
        sid = name[:-4]
        actual = sha256_of(path)
        try:
            with open(path + '.sha256', encoding='utf-8') as stream:
                recorded = stream.read().split()[0]
        except (FileNotFoundError, IndexError):
            recorded = None
            if require_sha_file:
                problems.append('{0}: no .sha256 next to it'.format(name))
                continue
        if recorded is not None and recorded != actual:
            problems.append('{0}: .sha256 {1} != file {2}'.format(name, recorded, actual))
        expected = server_sha256.get(sid)
        if expected is None:
            problems.append('{0}: no server archive to compare with'.format(name))
        elif expected != actual:
            problems.append('{0}: sha256 {1} != server archive {2}'.format(
                name, actual, expected))
    return problems


def server_archive_sha256(sim, snapshot_id):
    path = sim.snapshot_path(snapshot_id)
    return sha256_of(path) if os.path.isfile(path) else None


def tree_modes(root):
    """[(relpath, mode, 'dir'|'file')] of everything under ``root``."""
    found = []
    for current, dirs, files in os.walk(root):
        for name in dirs:
            full = os.path.join(current, name)
            found.append((os.path.relpath(full, root), os.stat(full).st_mode & 0o777, 'dir'))
        for name in files:
            full = os.path.join(current, name)
            found.append((os.path.relpath(full, root), os.stat(full).st_mode & 0o777,
                          'file'))
    return found


# -- managers -------------------------------------------------------------------------------

def mutations(sim, start=0):
    """The mutating requests ``sim`` received from request number ``start`` on."""
    return [(r['method'], r['path'], r['status']) for r in list(sim.requests)[start:]
            if r['method'] in MUTATING]


def requests_matching(sim, method, pattern, status=None, start=0):
    regex = re.compile(pattern)
    return [r for r in list(sim.requests)[start:]
            if r['method'] == method and regex.search(r['path'])
            and (status is None or r['status'] == status)]


def executions(sim, workflow_id):
    with sim.state.lock:
        return [dict(e) for e in sim.state.all('executions')
                if e['workflow_id'] == workflow_id]


def data_view(sim):
    """What must survive an upgrade, per tenant: names of blueprints, deployments, secrets,
    plugins, node instances with their state; the usernames."""
    view = {'users': None, 'tenants': {}}
    with sim.state.lock:
        view['users'] = sorted(sim.state.users)
        for kind, key in (('blueprints', 'id'), ('deployments', 'id'), ('secrets', 'key'),
                          ('plugins', 'id')):
            for record in sim.state.all(kind):
                tenant = view['tenants'].setdefault(record.get('tenant_name'), {})
                tenant.setdefault(kind, []).append(record[key])
        for record in sim.state.all('node_instances'):
            tenant = view['tenants'].setdefault(record.get('tenant_name'), {})
            tenant.setdefault('node_instances', []).append(
                '{0}:{1}'.format(record['id'], record['state']))
    for tenant in view['tenants'].values():
        for kind in tenant:
            tenant[kind] = sorted(tenant[kind])
    return view


def last_event(entries, step):
    events = [e['event'] for e in entries if e['step'] == step
              and e['event'] in ('started', 'succeeded', 'failed', 'skipped', 'waived')
              and 'check' not in (e.get('details') or {})]
    return events[-1] if events else None
