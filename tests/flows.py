"""The one flow helper: a test's upgrade driven through the real `cfy` against simulated managers.

``Flow`` owns one test's CFY_WORKDIR and everything run in it (the ``flow`` fixture of
tests/conftest.py gives each test its own; ``run_cfy`` and ``make_profile`` work on the same
workdir), for the integration and the reliability tests alike:

- profiles: ``profile`` writes a cfy profile of a simulated manager (what `cfy profiles use`
  stores), ``read_profile``, ``active_profile``;
- `cfy` runs: ``run`` (to its end), ``upgrade`` (``cfy upgrade CMD --upgrade-id ID --json``),
  ``start`` / ``finish`` (in the background), ``crash`` (SIGKILL at a chosen point: a pause
  inside ``Journal.append``, a request held by a ``Gate`` / ``SshGate``, or a predicate);
  every run is kept in ``captures`` (the secrets scan reads them);
- the operator's sequence: ``setup`` (an old 4.1 premium ``demo`` manager as profile ``old``
  and a new 7.0 ``empty`` one as ``new``), ``prepare``, ``reinstall`` (the in-place middle
  part), then ``run(*NEW_HOST)`` / ``run(*IN_PLACE)`` / ``upgrade(...)``;
- the workspace: ``workspace``, ``upgrade_id``, ``journal``, ``events``, ``last_entry``,
  ``meta``, ``files``, ``files_containing``.

Module functions read what a simulated manager received and holds (``requests_matching``,
``mutations``, ``executions``, ``restore_requests``, ``can_login``, ``data_view``, ...).
Waiting is ``tests.waiting.wait_until``.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from tests.simulator.helpers import raw, sha256_of, trust_host_keys
from tests.waiting import wait_until

BIN_DIR = os.path.dirname(sys.executable)
CFY = os.path.join(BIN_DIR, 'cfy')
HERE = os.path.dirname(os.path.abspath(__file__))
PAUSE_DIR = os.path.join(HERE, 'reliability', 'pausehook')
MUTATING = ('POST', 'PUT', 'PATCH', 'DELETE')
KILL_TIMEOUT = 90          # longest wait for a kill point to be reached (seconds)
RUN_TIMEOUT = 300          # longest `cfy` run

# Known, distinct passwords (the secrets scan looks for them).
OLD_ADMIN_PASSWORD = 'Old-Admin-Pw-7f3a91c2e5'
NEW_ADMIN_PASSWORD = 'New-Admin-Pw-2b8d40e6f1'

# -- the operator's commands ----------------------------------------------------------------

TARGET_VERSION = '7.0'
PREPARE = ('upgrade', 'prepare', '--target-version', TARGET_VERSION)
NEW_HOST = ('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users', 'rest-security')
IN_PLACE = ('upgrade', 'in-place', '--yes', '--users', 'rest-security')

# The 7.0 reinstalled in place runs at 0.2 (a 3 s reboot after the certificate restore): at
# the suite's usual 0.05 the 0.75 s reboot ends before the plugin starts watching for it and
# wait-restore then waits out its 60 s grace (reported; not a failure).
IN_PLACE_TIME_SCALE = 0.2

SNAPSHOT_CREATE = r'/snapshots/[^/]+$'
SNAPSHOT_RESTORE = r'/snapshots/[^/]+/restore$'
SNAPSHOT_ARCHIVE = r'/snapshots/[^/]+/archive$'
RESTORE_WORKFLOW = 'restore_snapshot'


def prepare_options(mode='new-host', extra=()):
    """The options of the usual `cfy upgrade prepare` (to 7.0, ``mode``) and ``extra``."""
    return PREPARE[2:] + ('--mode', mode) + tuple(extra)


def prepare_args(mode='new-host', extra=()):
    return PREPARE[:2] + prepare_options(mode, extra)


def command_args(mode):
    return NEW_HOST if mode == 'new-host' else IN_PLACE


# -- one `cfy` run ----------------------------------------------------------------------------

class CfyResult:
    """What one `cfy` run did: exit code, stdout, stderr, and the JSON document if any."""

    def __init__(self, argv, proc, duration=None):
        self.argv = argv
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.duration = duration

    @property
    def json(self):
        return json.loads(self.stdout)

    def __repr__(self):
        return 'cfy {0} -> {1}\n--- stdout\n{2}\n--- stderr\n{3}'.format(
            ' '.join(self.argv), self.returncode, self.stdout, self.stderr)


# -- request gates (kill points inside a request) ---------------------------------------------

class _Hold:
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
    the manager act on it, ``release(drop=True)`` (what ``Flow.crash`` does once the
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


# -- the flow -----------------------------------------------------------------------------------

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


class Flow:
    """One test's upgrade: a cfy workdir, simulated managers, their profiles, every `cfy` run.

    ``old`` / ``new``: the simulated old and new managers once known (``setup``, or set by
    the test); after ``prepare`` with an old manager: ``snapshot_id``, ``server_sha``
    ({snapshot id: SHA-256 of the archive on the old manager}) and
    ``old_requests_after_prepare``.
    """

    def __init__(self, workdir, logs_dir):
        self.workdir = str(workdir)
        self.dot = os.path.join(self.workdir, '.cloudify')
        self.home = os.path.join(self.workdir, 'home')     # HOME of the runs: its own ~/.ssh
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        self.logs_dir = str(logs_dir)
        os.makedirs(self.logs_dir, exist_ok=True)
        self.captures = []        # CfyResult of every run (killed ones too)
        self.gates = []
        self.old = None
        self.new = None
        self._runs = 0

    # -- profiles ---------------------------------------------------------------------------
    def profile(self, name, sim, ssh=True, password=None, ssh_key=None, activate=True,
                protocol='http', port=None, certificate=None):
        """Write the cfy profile ``name`` of ``sim`` (what `cfy profiles use` stores)."""
        from cloudify_cli.env import ProfileContext   # cloudify_cli only where profiles are
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
        return name

    def cluster_profile(self, cluster, name, ssh=True, **kwargs):
        """Write the cfy profile of a simulated cluster (``cluster.write_profile``, what the
        CLI stores) and, with ``ssh``, trust every manager node's host key as ``profile``
        does."""
        cluster.write_profile(self.workdir, name=name, ssh=ssh, **kwargs)
        if ssh:
            trust_host_keys(self.workdir, *cluster.nodes)
        return name

    def activate(self, name):
        with open(os.path.join(self.dot, 'active.profile'), 'w') as stream:
            stream.write(name)

    def read_profile(self, name):
        """The stored cfy profile (context file) as a dict."""
        with open(os.path.join(self.dot, 'profiles', name, 'context.json')) as stream:
            return json.load(stream)

    def active_profile(self):
        with open(os.path.join(self.dot, 'active.profile')) as stream:
            return stream.read().strip()

    # -- running cfy ------------------------------------------------------------------------
    def env(self, extra=None):
        full = dict(os.environ)
        full['CFY_WORKDIR'] = self.workdir
        full['HOME'] = self.home      # ~/.ssh/known_hosts is the flow's own
        full.setdefault('PYTHONWARNINGS', 'ignore')
        for name in ('CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD', 'CLOUDIFY_TENANT',
                     'CLOUDIFY_TOKEN', 'CLOUDIFY_SSL_TRUST_ALL', 'CFY_REL_PAUSE',
                     'CFY_REL_PAUSE_MARKER'):
            full.pop(name, None)
        full.update(extra or {})
        return full

    def run(self, *args, env=None, input=None, timeout=RUN_TIMEOUT, preexec_fn=None):
        """Run `cfy ARGS` to its end (a CfyResult, whatever the exit code); kept in
        ``captures``."""
        argv = [str(a) for a in args]
        began = time.monotonic()
        proc = subprocess.run([CFY] + argv, env=self.env(env), input=input,
                              capture_output=True, text=True, timeout=timeout,
                              cwd=self.workdir, preexec_fn=preexec_fn)
        result = CfyResult(argv, proc, time.monotonic() - began)
        self.captures.append(result)
        return result

    def upgrade(self, command, *args):
        """`cfy upgrade <command> --upgrade-id ID --json <args>` (CfyResult, any rc)."""
        return self.run('upgrade', command, '--upgrade-id', self.upgrade_id, '--json', *args)

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
        """Wait for a started process; its CfyResult (kept in ``captures``)."""
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
            proc.argv, proc.returncode, stdout, stderr), time.monotonic() - proc.began)
        self.captures.append(result)
        return result

    def crash(self, *args, pause=None, gate=None, until=None, env=None, inside=None):
        """Start `cfy ARGS`, wait for the kill point, SIGKILL it; the (killed) result.

        ``pause=(step, event, phase)``: the process stops in Journal.append (see
        tests/reliability/pausehook/sitecustomize.py).  ``gate``: a Gate/SshGate it must
        block on.  ``until``: a predicate (e.g. on a simulator's state or the journal) that
        decides the moment.  ``inside``: a step id whose ``started`` must be the last
        journal event of that step when the kill happens (checked after the kill).
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
                wait_until(lambda: os.path.exists(marker), KILL_TIMEOUT,
                           'the pause at {0}'.format(pause), proc=proc)
            if gate is not None:
                wait_until(gate.reached, KILL_TIMEOUT, 'the held request', proc=proc)
            if until is not None:
                wait_until(until, KILL_TIMEOUT, 'the kill moment', proc=proc,
                           interval=0.005)
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

    def print_timings(self):
        for result in self.captures:
            print('  {0:6.1f}s rc={1} cfy {2}'.format(
                result.duration, result.returncode, ' '.join(result.argv)))

    # -- the operator's sequence ------------------------------------------------------------
    def setup(self, simulated_manager, source='4.1', target=True, ssl=False):
        """The old manager (``source``, premium, ``demo`` data, SSH host, known admin
        password) as profile ``old`` (active), and with ``target`` a new 7.0 ``empty``
        manager as profile ``new``; remembers the source's data and agents for
        ``harness.assert_upgraded``.  ``ssl``: both serve https and the profiles carry each
        manager's CA as ``rest_certificate``."""
        old = simulated_manager(source, data='demo', ssh=True,
                                admin_password=OLD_ADMIN_PASSWORD, ssl=ssl)
        self.new = None
        if target:
            self.new = simulated_manager(TARGET_VERSION, data='empty', ssh=True,
                                         admin_password=NEW_ADMIN_PASSWORD, ssl=ssl)
            self.profile('new', self.new, activate=False, protocol=self.new.protocol,
                         certificate=self.new.ca_path)
        self.profile('old', old, protocol=old.protocol, certificate=old.ca_path)
        self.old = old
        self.source_view = data_view(old)
        self.source_agents = sorted({(a['tenant_name'], a['deployment'])
                                     for a in old.agents() if a.get('state') == 'started'})
        return self

    def prepare(self, *options):
        """`cfy upgrade prepare OPTIONS` (default: ``prepare_options()``) must succeed.

        With ``--json`` the document must name the workspace it made.  With an old manager
        known, remembers its snapshot archive (``record_server_snapshot``)."""
        result = self.run('upgrade', 'prepare', *(options or prepare_options()))
        assert result.returncode == 0, result
        if '--json' in options:
            assert result.json['upgrade_id'] == self.upgrade_id, result
        if self.old is not None:
            self.record_server_snapshot()
        return result

    def record_server_snapshot(self):
        """Remember the SHA-256 of the snapshot archive on the old manager (after prepare)."""
        sid = self.meta()['snapshot']['id']
        self.snapshot_id = sid
        self.server_sha = {sid: server_archive_sha256(self.old, sid)}
        assert self.server_sha[sid], 'the old manager has no archive of ' + sid
        self.old_requests_after_prepare = len(self.old.requests)
        return sid

    def reinstall(self):
        """The operator's in-place middle part: tear the old manager down, install 7.0 on
        the same host and port (its own admin password), update the profile's password."""
        new = self.old.reinstall(TARGET_VERSION, admin_password=NEW_ADMIN_PASSWORD,
                                 time_scale=IN_PLACE_TIME_SCALE)
        self.profile('old', new, password=NEW_ADMIN_PASSWORD)
        self.new = new
        return new

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

    @property
    def upgrade_id(self):
        """The id of the only workspace."""
        return os.path.basename(self.workspace())

    def meta(self, upgrade_id=None):
        return read_json(os.path.join(self.workspace(upgrade_id), 'workspace.json'))

    def journal(self, upgrade_id=None):
        if upgrade_id is None and not self.upgrade_ids():
            return []
        return journal_entries(self.workspace(upgrade_id))

    def events(self, step):
        return [e['event'] for e in self.journal() if e['step'] == step]

    def last_entry(self, step, event):
        found = [e for e in self.journal() if e['step'] == step and e['event'] == event]
        return found[-1] if found else None

    def files(self):
        """Every file under the cfy workdir's upgrades/ directory."""
        found = []
        for base, _, names in os.walk(self.upgrades_dir):
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


# -- files ------------------------------------------------------------------------------------

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


# -- what the simulated managers received and hold ----------------------------------------------

def mutations(sim, start=0):
    """The mutating requests ``sim`` received from request number ``start`` on."""
    return [(r['method'], r['path'], r['status']) for r in list(sim.requests)[start:]
            if r['method'] in MUTATING]


def requests_matching(sim, method, pattern, status=None, start=0):
    regex = re.compile(pattern)
    return [r for r in list(sim.requests)[start:]
            if r['method'] == method and regex.search(r['path'])
            and (status is None or r['status'] == status)]


def restore_requests(sim):
    """The `POST /snapshots/<id>/restore` requests that started a restore (2xx)."""
    return [r for r in sim.requests.matching('POST', '/restore')
            if r['status'] is not None and 200 <= r['status'] < 300]


def upload_requests(sim):
    return sim.requests.matching('PUT', '/archive')


def executions(sim, workflow_id):
    with sim.state.lock:
        return [dict(e) for e in sim.state.all('executions')
                if e['workflow_id'] == workflow_id]


def restore_executions(sim):
    return executions(sim, RESTORE_WORKFLOW)


def server_archive_sha256(sim, snapshot_id):
    path = sim.snapshot_path(snapshot_id)
    return sha256_of(path) if os.path.isfile(path) else None


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
