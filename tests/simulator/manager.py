"""SimulatedManager: one simulated Cloudify Manager of a given version (REST on 127.0.0.1)
installed on a simulated machine (a host directory + optional real SSH server from
tests/simulator/host.py), with its systemd units, rest-security.conf, certificates,
snapshot files, auto-heal hazard, fault switches and request log.

Public entry point: :func:`start` (re-exported by ``tests.simulator``).
"""
import base64
import datetime
import functools
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import string
import tempfile
import threading
import time

from tests.simulator import api as apimod
from tests.simulator import data as datamod
from tests.simulator import tls as tlsmod
from tests.simulator import topology as topomod
from tests.simulator import workflows
# modules that register their REST routes and workflows when imported (issue 15)
from tests.simulator import agents as _agents, ldap as _ldap, plugins as _plugins  # noqa: F401
from tests.simulator import reconcile_data as _reconcile_data  # noqa: F401
from tests.simulator import schedules
from tests.simulator.faults import Faults
from tests.simulator.rules import Rules
from tests.simulator.transport import Listener, Response

DEFAULT_TIME_SCALE = 1.0

# managers alive in this process, by (REST address, REST port): the "broker address" of
# their agents
_REGISTRY = {}
_REGISTRY_LOCK = threading.Lock()


class RequestLog:
    """Thread-safe list of the requests a manager received: dicts with method, path, query
    (name -> value, or list when repeated), status, tenant, time, and what authentication
    made of the request: auth_method ('basic' | 'token' | None), auth_user (the Basic
    username or the token's owner), auth_ok (True / False / None when not checked, e.g.
    refused earlier by the licence gate or maintenance mode) and password_fingerprint (an
    HMAC of the Basic password under a key of this process, compare with
    ``SimulatedManager.password_fingerprint(pw)``).  No credential itself is kept."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = []

    def append(self, entry):
        with self._lock:
            self._items.append(entry)

    def __iter__(self):
        with self._lock:
            return iter(list(self._items))

    def __len__(self):
        with self._lock:
            return len(self._items)

    def __getitem__(self, index):
        with self._lock:
            return self._items[index]

    def clear(self):
        with self._lock:
            self._items = []

    def matching(self, method=None, path_contains=None):
        with self._lock:
            return [e for e in self._items
                    if (method is None or e['method'] == method)
                    and (path_contains is None or path_contains in e['path'])]

    def logins(self, username=None, ok=None):
        """Requests that carried Basic credentials (optionally of `username`, and whose
        check gave `ok`)."""
        with self._lock:
            return [e for e in self._items if e.get('auth_method') == 'basic'
                    and (username is None or e.get('auth_user') == username)
                    and (ok is None or e.get('auth_ok') is ok)]


class AutoHeal:
    """The auto-heal hazard of an old 3.x/4.x manager (behaviour §7.4): while its
    cloudify-riemann unit runs, host_failure policies start `heal` executions.
    `schedule(deployment_id, node_instance_id=None, after=0.0, tenant='default_tenant')`
    and `schedule_all(after=0.0)` (every Compute instance of deployments with a
    host_failure policy); `after` is in real seconds.  `fired` lists the heal executions
    started, `suppressed` the triggers riemann did not act on."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.fired = []
        self.suppressed = []

    def schedule(self, deployment_id, node_instance_id=None, after=0.0,
                 tenant='default_tenant'):
        self.mgr.engine.sched.call_later(float(after), self._fire, tenant, deployment_id,
                                         node_instance_id)

    def schedule_all(self, after=0.0):
        count = 0
        with self.mgr.store.lock:
            for dep in self.mgr.store.all('deployments'):
                if not any('host_failure' in (g.get('policies') or {})
                           for g in (dep.get('groups') or {}).values()):
                    continue
                for ni in self.mgr.store.all('node_instances'):
                    if ni['deployment_id'] == dep['id'] and ni['id'] == ni['host_id'] and \
                            ni['tenant_name'] == dep['tenant_name']:
                        self.schedule(dep['id'], ni['id'], after, dep['tenant_name'])
                        count += 1
        return count

    def _fire(self, tenant, deployment_id, node_instance_id):
        mgr = self.mgr
        trigger = {'tenant': tenant, 'deployment_id': deployment_id,
                   'node_instance_id': node_instance_id}
        if mgr.stopped or mgr.torn_down or not mgr.rules.has_riemann or \
                not mgr.unit_active('cloudify-riemann'):
            self.suppressed.append(trigger)
            return
        with mgr.store.lock:
            deps = mgr.store.find('deployments', deployment_id, [tenant])
            if not deps:
                self.suppressed.append(trigger)
                return
            dep = deps[0]
            ex = datamod.new_execution(
                'heal-' + secrets.token_hex(8), 'heal', tenant, dep.get('created_by', 'admin'),
                deployment_id, dep['blueprint_id'],
                {'node_instance_id': node_instance_id, 'diagnose_value': 'Not provided',
                 'ignore_failure': True}, is_system=False)
            mgr.store.put('executions', ex)
        self.fired.append(ex['id'])
        mgr.run_execution(ex, source='auto_heal')


class Machine:
    """The host a manager is installed on: its file tree, its SSH server, its REST port.
    `bind_host`: the loopback address it listens on (127.0.0.1; cluster nodes get their
    own); `host_class`: the SSH server class (cluster.py adds `cfy_manager`)."""

    def __init__(self, state_dir=None, ssh=True, ssh_port=0, ssh_user='centos',
                 bind_host='127.0.0.1', host_class=None):
        self.bind_host = bind_host
        if state_dir:
            self.root = os.path.join(os.path.abspath(state_dir), 'host')
            os.makedirs(self.root, exist_ok=True)
            self._own_dir = None
        else:
            self._own_dir = tempfile.mkdtemp(prefix='cfy-sim-')
            self.root = os.path.join(self._own_dir, 'host')
            os.makedirs(self.root)
        self.current = None
        self.host = None
        if ssh:
            SimulatedHost = host_class
            if SimulatedHost is None:
                try:
                    from tests.simulator.host import SimulatedHost
                except ImportError:
                    SimulatedHost = None
            if SimulatedHost is not None:
                host = SimulatedHost(self.root, self._on_systemctl, port=ssh_port,
                                     user=ssh_user, bind_host=bind_host)
                try:
                    host.start()
                except BaseException:
                    self.stop()
                    raise
                self.host = host

    def _on_systemctl(self, action, unit):
        mgr = self.current
        if mgr is None or mgr.torn_down:
            return _unit_missing(action, unit)
        return mgr.systemctl(action, unit)

    @property
    def ssh_port(self):
        return self.host.port if self.host else None

    def stop(self):
        if self.host is not None:
            try:
                self.host.stop()
            finally:
                self.host = None
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None


def _unit_missing(action, unit):
    unit = unit[:-8] if unit.endswith('.service') else unit
    if action == 'is-active':
        return 3, 'inactive\n'
    return 5, 'Failed to {0} {1}.service: Unit {1}.service not found.\n'.format(action, unit)


# a per-process key for the request log's password fingerprints (never the password)
_FINGERPRINT_KEY = secrets.token_bytes(32)
_DEFAULT = object()
LEGACY_STAGE_RESTORE = ('source', 'lenient')


class SimulatedManager:
    """One simulated manager.  Attributes for tests: rest_port, url, ssh_port, ssh_user,
    ssh_key, admin_username, admin_password, rules, requests, faults, state (the Store),
    auto_heal, root (host dir), user_passwords (seeded users).

    Options of behaviour §12 (README 'Options'): licensed / licence_expired / licence_trial /
    licence_version (premium 4.6+ licence, §12.2), distributed (Kubernetes 7.0, §12.1),
    failed_logins_before_account_lock / account_lock_period (minutes, §12.10),
    legacy_stage_restore ('source' | 'lenient', the 7.0 legacy route's Stage / Composer
    steps, §12.1), ok_fail_delay (real seconds before /ok answers FAIL, §12.11),
    db_swap_seconds (real seconds the 5.0.5-6.1 restore's database swap lasts; default 2
    manager-seconds) and deadlock_on_db_swap_traffic (a request reaching the REST service
    during it fails the restore as a deadlock would, §12.7)."""

    def __init__(self, version, edition='premium', data='empty', machine=None, port=0,
                 time_scale=DEFAULT_TIME_SCALE, admin_password=None, networks=None,
                 security_enabled=None, update_3=False, patch_1=False, hostname=None,
                 download_headers='nginx', ssl=False, licensed=True, licence_expired=False,
                 licence_trial=False, licence_version=None, distributed=False,
                 failed_logins_before_account_lock=None, account_lock_period=None,
                 legacy_stage_restore='source', ok_fail_delay=None, db_swap_seconds=None,
                 deadlock_on_db_swap_traffic=False):
        self.rules = Rules(version, edition, update_3=update_3, patch_1=patch_1,
                           security_enabled=security_enabled, distributed=distributed)
        if legacy_stage_restore not in LEGACY_STAGE_RESTORE:
            raise ValueError('legacy_stage_restore must be one of {0}'.format(
                ', '.join(LEGACY_STAGE_RESTORE)))
        self.legacy_stage_restore = legacy_stage_restore
        # the account-lock settings (behaviour §12.10); from 5.0 they live in the config table
        # (written after seeding below, read back by the properties)
        self._lock_settings = {
            'failed_logins_before_account_lock': int(
                self.rules.failed_logins_before_account_lock_default
                if failed_logins_before_account_lock is None
                else failed_logins_before_account_lock),
            'account_lock_period': float(self.rules.account_lock_period_default
                                         if account_lock_period is None
                                         else account_lock_period)}
        self._failed_logins = {}     # username -> [failed_logins_counter, last failure]
        self._ok_fail_delay = ok_fail_delay
        # behaviour §12.7: the database swap of a 5.0.5-6.1 restore, and what reached the REST
        # service during it
        self._db_swap_seconds = db_swap_seconds
        self.deadlock_on_db_swap_traffic = bool(deadlock_on_db_swap_traffic)
        self._db_swapping = False
        self._db_swap_traffic = []
        # the restore workflow's log records (`GET /events`, type cloudify_log)
        self.workflow_logs = []
        self.machine = machine or Machine(ssh=False)
        self.root = self.machine.root
        self.rest_host = self.machine.bind_host      # 127.0.0.1; a cluster node's own address
        self.time_scale = float(time_scale)
        self.hostname = hostname or 'manager-{0}'.format(self.rules.key.replace('.', '-'))
        self.networks = dict(networks or {'default': self.rest_host})
        if download_headers not in ('nginx', 'rest'):
            raise ValueError("download_headers must be 'nginx' or 'rest'")
        # README 'Content-Length': 'nginx' = what a client meets (nginx serves the file);
        # 'rest' = the REST service's own header rule (none from 5.1, behaviour §3.3)
        self.download_headers = download_headers
        self.stopped = False
        self.torn_down = False
        self.faults = Faults()
        self.requests = RequestLog()
        self.token_history = []      # every 7.0 token value issued (tests look for leaks)
        self.store = datamod.Store()
        self.state = self.store
        self.units = {u: True for u in self.rules.units}
        self._unit_lock = threading.Lock()
        self._maintenance = {'status': 'deactivated', 'activated_at': '',
                             'activation_requested_at': '', 'remaining_executions': None,
                             'requested_by': ''}
        self._outage_until = 0.0
        self._outage_lock = threading.Lock()
        self.timeline = []     # (monotonic time, event): restarts, reboots, restore steps
        self._execution_log = []
        self._execution_log_lock = threading.Lock()
        # execution id -> its events (GET /events), kept apart from the store: a restore's
        # DB swap does not touch them (README "Events")
        self.execution_events = {}
        if self.rules.is_3x and not self.rules.security_enabled:
            default_pw = 'admin'           # behaviour §2.4: admin/admin when security enabled
        else:
            default_pw = 'admin' if self.rules.is_3x else secrets.token_urlsafe(12)
        self.admin_username = 'admin'
        self.admin_password = admin_password or default_pw
        self.user_passwords = {'admin': self.admin_password}
        self._install_host_files()
        self.rest_security = self.rest_security_file() or {}
        self._licence_lock = threading.Lock()
        self.licence = None
        if licensed and self.rules.has_license:
            self.set_licence(_DEFAULT if licence_version is None else licence_version,
                             expired=licence_expired, trial=licence_trial)
        self.ssl = bool(ssl)
        self.ca_path = None
        self.http_listener = None
        self.listener = Listener(self, host=self.rest_host, port=port,
                                 ssl_context=self._install_tls())
        self.listener.start()
        self.rest_port = self.listener.port
        self.protocol = 'https' if self.ssl else 'http'
        self.url = '{0}://{1}:{2}'.format(self.protocol, self.rest_host, self.rest_port)
        if self.ssl and self.rules.ssl_plain_port_400:
            # behaviour §2.1: an SSL-enabled 4.2+ manager answers 400 on its plain HTTP port
            self.http_listener = Listener(_SslRequired(self.rules), host=self.rest_host)
            self.http_listener.start()
        self.broker = {'ip': self.rest_host, 'port': self.rest_port,
                       'manager_version': self.rules.reported_version}
        datamod.seed(self.store, self.rules, data, self.admin_password, self.broker,
                     self.rest_security.get('hash_salt', ''))
        for name, value in self._lock_settings.items():
            self._set_lock_setting(name, value)
        if data == 'demo' and self.rules.edition == 'premium' and self.rules.has_tenants:
            self.user_passwords.update({u: p[0] for u, p in datamod.DEMO_USERS.items()})
        self.engine = workflows.Engine(self)
        self.scheduler = schedules.ExecutionScheduler(self)     # 5.2+ (schedules.py)
        self.ldap_reachable = True      # False: POST /ldap's validating bind fails (ldap.py)
        self.auto_heal = AutoHeal(self)
        self.api = apimod.RestApi(self)
        self.machine.current = self
        with _REGISTRY_LOCK:
            _REGISTRY[(self.rest_host, self.rest_port)] = self

    def _install_tls(self):
        """ssl=True: nginx serves https with the external certificate (behaviour §2.1, §7.1;
        3.4.2: /root/cloudify/server.crt); the CA goes to ``ca_path``, outside the host,
        for the operator's profile (behaviour §6.1 'Certificate')."""
        if not self.ssl:
            return None
        ca, cert, key = tlsmod.make_certificates()
        cert_rel, key_rel = self.rules.external_cert_files
        self._write_host_file(cert_rel, cert, 0o644)
        self._write_host_file(key_rel, key, 0o600)
        self.ca_path = os.path.join(os.path.dirname(self.root), 'rest-ca.pem')
        with open(self.ca_path, 'wb') as f:
            f.write(ca)
        return tlsmod.server_context(self.host_path(cert_rel), self.host_path(key_rel))

    @property
    def http_port(self):
        """The plain HTTP port of an SSL-enabled 4.2+ manager (400 only), else None."""
        return self.http_listener.port if self.http_listener else None

    # -- handle surface ---------------------------------------------------------------------
    @property
    def ssh_port(self):
        return self.machine.ssh_port

    @property
    def ssh_user(self):
        return self.machine.host.user if self.machine.host else None

    @property
    def ssh_key(self):
        return self.machine.host.key_path if self.machine.host else None

    @property
    def version(self):
        return self.rules.reported_version

    def info(self):
        """The JSON line of `python -m tests.simulator`."""
        return {'rest_port': self.rest_port, 'ssh_port': self.ssh_port,
                'ssh_user': self.ssh_user, 'ssh_key': self.ssh_key,
                'admin_username': self.admin_username, 'admin_password': self.admin_password,
                'rest_protocol': self.protocol, 'rest_certificate': self.ca_path,
                'http_port': self.http_port}

    def client(self, api_version=None, tenant='default_tenant', username=None, password=None,
               **kwargs):
        """An official CloudifyClient for this manager (prefix per behaviour §1 item 2)."""
        from cloudify_rest_client import CloudifyClient
        prefix = api_version or self.rules.api_prefix.rsplit('/', 1)[1]
        if self.ssl:
            kwargs.setdefault('protocol', 'https')
            kwargs.setdefault('cert', self.ca_path)
        return CloudifyClient(host=self.rest_host, port=self.rest_port, api_version=prefix,
                              username=username or self.admin_username,
                              password=password or self.admin_password, tenant=tenant,
                              **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return '<SimulatedManager {0} on {1}>'.format(self.rules.describe(), self.url)

    def topology(self):
        """The node layout GET managers|brokers|db-nodes|cluster-status and the 4.x
        /cluster routes report (topology.py): an all-in-one manager; cluster nodes
        (cluster.py) answer their cluster's."""
        return topomod.all_in_one(self)

    # -- called by the HTTP layer -----------------------------------------------------------
    def handle(self, request):
        return self.api.handle(request)

    def record_request(self, request):
        query = {k: (v[0] if len(v) == 1 else list(v)) for k, v in request.query.items()}
        entry = {'method': request.method, 'path': request.path, 'query': query,
                 'status': None, 'tenant': request.header('Tenant'), 'time': time.time(),
                 'auth_method': None, 'auth_user': None, 'auth_ok': None,
                 'password_fingerprint': None, 'during_db_swap': False}
        self.requests.append(entry)
        return entry

    @staticmethod
    def password_fingerprint(password):
        """What the request log keeps of a Basic password: an HMAC under a key of this
        process (tests compare, nobody can read the password back)."""
        return hmac.new(_FINGERPRINT_KEY, str(password).encode('utf-8'),
                        hashlib.sha256).hexdigest()[:24]

    def ok_fail_delay(self):
        """Real seconds before /ok answers FAIL (behaviour §12.11: about 3 s on 7.0.4)."""
        if self._ok_fail_delay is not None:
            return float(self._ok_fail_delay)
        return self.rules.ok_fail_delay * self.time_scale

    @staticmethod
    def sleep_real(seconds):
        time.sleep(seconds)

    def rest_outage_502(self):
        if time.monotonic() < self._outage_until:
            return True
        return not self.unit_active('cloudify-restservice')

    # -- units (systemctl callback of the host, issue 3 item 7) -------------------------------
    def unit_active(self, unit):
        with self._unit_lock:
            if unit in self.units:
                return self.units[unit]
            return True

    def _set_unit(self, unit, active):
        with self._unit_lock:
            changed = self.units.get(unit) != active
            self.units[unit] = active
        if changed:
            self.mark('{0} {1}'.format(unit, 'started' if active else 'stopped'))

    def mark(self, event):
        """Append to `timeline` (tests assert the order of events, never durations)."""
        self.timeline.append((time.monotonic(), event))

    # -- the 5.0.5-6.1 restore's database swap (behaviour §12.7) ---------------------------------
    def db_swap_seconds(self):
        """Manager-seconds the database swap lasts (an explicit option is real seconds)."""
        if self._db_swap_seconds is not None:
            return float(self._db_swap_seconds) / self.time_scale
        return 2.0

    def begin_db_swap(self):
        with self._outage_lock:
            self._db_swapping = True
        self.mark('db swap started')

    def end_db_swap(self):
        """End the swap; -> the request-log entries that reached the REST service during
        it."""
        with self._outage_lock:
            self._db_swapping = False
            seen = [e for e in self._db_swap_traffic]
        self.mark('db swap ended')
        return seen

    def note_rest_request(self, entry):
        """A request reached the REST service (called by api.py): during a database swap
        it is marked ``during_db_swap`` and remembered."""
        with self._outage_lock:
            if not self._db_swapping:
                return
            self._db_swap_traffic.append(entry)
        entry['during_db_swap'] = True

    def db_swap_traffic(self):
        """Every request-log entry that reached the REST service during a database swap."""
        with self._outage_lock:
            return list(self._db_swap_traffic)

    def workflow_log(self, ex, level, message, logger='ctx'):
        """A log record of execution `ex` (`ctx.logger.<level>(message)` in a workflow)."""
        self.workflow_logs.append({
            'type': 'cloudify_log', 'level': level, 'message': message, 'logger': logger,
            'execution_id': ex['id'], 'workflow_id': ex.get('workflow_id'),
            'tenant_name': ex.get('tenant_name'), 'blueprint_id': None,
            'deployment_id': None, 'node_instance_id': None, 'node_name': None,
            'operation': None, 'error_causes': None, 'event_type': None,
            'timestamp': datamod.ts(), 'reported_timestamp': datamod.ts()})

    def events(self, prefix=''):
        return [e for _, e in list(self.timeline) if e.startswith(prefix)]

    def systemctl(self, action, unit):
        """`on_systemctl(action, unit) -> (exit_code, output)` for tests/simulator/host.py."""
        name = unit[:-8] if unit.endswith('.service') else unit
        if self.torn_down or name not in self.units:
            return _unit_missing(action, name)
        if action == 'is-active':
            active = self.unit_active(name)
            return (0, 'active\n') if active else (3, 'inactive\n')
        if action in ('enable', 'disable'):
            return 0, ''
        if action == 'status':
            active = self.unit_active(name)
            return (0 if active else 3), '● {0}.service\n   Active: {1}\n'.format(
                name, 'active (running)' if active else 'inactive (dead)')
        if action not in ('start', 'stop', 'restart'):
            return 1, 'Unknown operation {0}.\n'.format(action)
        if action == 'stop':
            self._stop_unit(name)
        elif action == 'start':
            self._start_unit(name)
        else:
            if name == 'cloudify-restservice':
                self.restart_restservice(workflows.REST_RESTART_OUTAGE)
            else:
                self._stop_unit(name)
                self._start_unit(name)
        return 0, ''

    def _stop_unit(self, name):
        self._set_unit(name, False)
        if name == 'nginx':
            self.listener.pause()

    def _start_unit(self, name):
        if name == 'cloudify-restservice' and not self.unit_active(name):
            self.reload_rest_security()
        self._set_unit(name, True)
        if name == 'nginx' and not self.stopped:
            self.listener.resume()

    def restart_restservice(self, outage):
        """Restart: a brief outage (nginx answers 502), then rest-security.conf is re-read
        (behaviour §3.8; issue 3 item 7)."""
        self._set_unit('cloudify-restservice', False)
        self.engine.later(outage, self._start_unit, 'cloudify-restservice')

    def reboot(self, seconds):
        """`shutdown -r now` after a certificate restore: connections refused for the
        reboot, then the same port listens again (behaviour §3.8)."""
        self.mark('reboot')
        for unit in self.units:
            self._set_unit(unit, False)
        self.listener.pause()
        self.engine.later(seconds, self._boot)

    def _boot(self):
        if self.stopped or self.torn_down:
            return
        self.reload_rest_security()
        for unit in self.units:
            self._set_unit(unit, True)
        self.listener.resume()
        self.mark('booted')

    def rest_outage(self, seconds, mode='refuse'):
        """Fault: a REST outage of `seconds` real seconds, refusing connections (mode
        'refuse') or answering nginx 502 pages (mode '502')."""
        if mode == '502':
            with self._outage_lock:
                self._outage_until = time.monotonic() + float(seconds)
            return
        self.listener.pause()
        self.engine.sched.call_later(float(seconds), self._end_outage)

    def _end_outage(self):
        if not self.stopped and not self.torn_down and self.unit_active('nginx'):
            self.listener.resume()

    # -- host files (behaviour §7.1 - §7.3) -------------------------------------------------------
    def host_path(self, rel):
        return os.path.join(self.root, rel.lstrip('/'))

    def read_host_file(self, rel):
        try:
            with open(self.host_path(rel), 'rb') as f:
                return f.read()
        except OSError:
            return None

    def _write_host_file(self, rel, content, mode=0o640):
        path = self.host_path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + '.tmp'
        with open(tmp, 'wb') as f:
            f.write(content if isinstance(content, bytes) else content.encode('utf-8'))
        os.chmod(tmp, mode)
        os.replace(tmp, path)

    def _install_host_files(self):
        rules = self.rules
        os.makedirs(self.host_path('opt/manager/resources/snapshots'), exist_ok=True)
        if rules.has_rest_security_conf:
            conf = _generate_rest_security(rules)
            conf.update(self._configured_flask_security())
            self._write_host_file('opt/manager/rest-security.conf',
                                  json.dumps(conf, indent=2) + '\n', 0o440)
        serial = secrets.token_hex(8)
        for name in rules.ssl_files:
            rel = 'etc/cloudify/ssl/' + name
            if name == 'certificate_metadata':
                content = json.dumps({'internal_rest_host': self.rest_host,
                                      'networks': sorted(set(self.networks.values()))})
            elif name.endswith('.p12'):
                content = b'\x30\x82' + secrets.token_bytes(64)
            else:
                kind = 'PRIVATE KEY' if 'key' in name else 'CERTIFICATE'
                body = base64.b64encode('{0} {1} {2}'.format(
                    self.hostname, name, serial).encode('utf-8')).decode('ascii')
                content = '-----BEGIN {0}-----\n{1}\n-----END {0}-----\n'.format(kind, body)
            self._write_host_file(rel, content, 0o600 if 'key' in name else 0o644)
        if rules.has_40x_snapshot_create_file:
            # behaviour §7.3 'Ways to detect it' item 2: the patched snapshot_create.py
            marker = ("    snapshot_version = '{0}'\n".format(rules.snapshot_version)
                      if (rules.update_3 or rules.patch_1) else
                      '    snapshot_version = get_manager_version()\n')
            self._write_host_file(
                'opt/mgmtworker/env/lib/python2.7/site-packages/cloudify_system_workflows/'
                'snapshots/snapshot_create.py',
                '# simulated mgmtworker snapshot_create.py\ndef create():\n' + marker, 0o644)

    def _configured_flask_security(self):
        """5.0.5+: values under flask_security in /etc/cloudify/config.yaml override the
        generated ones at install (behaviour §7.2 'At install (5.0.5+)')."""
        if not self.rules.install_reads_config_yaml:
            return {}
        raw = self.read_host_file('etc/cloudify/config.yaml')
        if not raw:
            return {}
        try:
            import yaml
            conf = yaml.safe_load(raw) or {}
        except Exception:
            return {}
        return dict(conf.get('flask_security') or {})

    def rest_security_file(self):
        raw = self.read_host_file('opt/manager/rest-security.conf')
        if raw is None:
            return None
        try:
            return json.loads(raw.decode('utf-8'))
        except ValueError:
            return None

    def reload_rest_security(self):
        """cloudify-restservice (re)start: re-read hash_salt / secret_key (behaviour §7.2)."""
        conf = self.rest_security_file()
        if conf is not None:
            self.rest_security = conf

    def merge_rest_security(self, values):
        """The restore merges the snapshot's rest-security values over the target's file
        (behaviour §7.2 'Why passwords break', MGR@4.4 _restore_security_file)."""
        self.mark('rest-security merged')
        conf = self.rest_security_file() or {}
        conf.update(values)
        self._write_host_file('opt/manager/rest-security.conf',
                              json.dumps(conf, indent=2) + '\n', 0o440)

    def replace_certificates(self, ssl_files):
        """behaviour §3.8 'restore_certificates': 4.2+ move the internal CA/cert/key/p12; 7.0
        moves every file of the snapshot's ssl/."""
        internal = ('cloudify_internal_ca_cert.pem', 'cloudify_internal_ca_key.pem',
                    'cloudify_internal_cert.pem', 'cloudify_internal_key.pem',
                    'cloudify_internal.p12')
        self.mark('certificates replaced')
        for name, content in ssl_files.items():
            if not self.rules.cert_restore_moves_all and name not in internal:
                continue
            self._write_host_file('etc/cloudify/ssl/' + name, content,
                                  0o600 if 'key' in name else 0o644)

    def ca_cert(self):
        raw = self.read_host_file('etc/cloudify/ssl/cloudify_internal_ca_cert.pem')
        return raw.decode('utf-8') if raw else None

    # -- snapshots on disk -----------------------------------------------------------------------
    def snapshot_path(self, sid):
        # file_server_root/snapshots/<id>/<id>.zip (observed-7.0 §3.1; behaviour §3.3)
        return self.host_path('opt/manager/resources/snapshots/{0}/{0}.zip'.format(sid))

    def snapshot_record(self, sid, tenant):
        with self.store.lock:
            found = self.store.find('snapshots', sid, [tenant])
            return found[0] if found else None

    def receive_snapshot_file(self, sid, chunks):
        path = self.snapshot_path(sid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = '{0}.upload-{1}'.format(path, secrets.token_hex(4))
        try:
            with open(tmp, 'wb') as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def remove_snapshot_file(self, sid):
        shutil.rmtree(os.path.dirname(self.snapshot_path(sid)), ignore_errors=True)

    def _flag_path(self):
        # behaviour §2.3: /opt/manager/snapshot_status/snapshot_restoring (5.0.5) or
        # /tmp/cloudify/snapshot_restoring (7.0.4)
        return self.host_path(self.rules.snapshot_flag_file)

    def snapshot_flag(self):
        return self.rules.snapshot_status_flag and os.path.exists(self._flag_path())

    def set_snapshot_flag(self, on):
        if not self.rules.snapshot_status_flag:
            return
        path = self._flag_path()
        if on:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, 'w').close()
        elif os.path.exists(path):
            os.unlink(path)
        self.mark('snapshot-status {0}'.format('running' if on else 'not-running'))

    # -- auth (behaviour §2.4; account lock behaviour §12.10, rules.py 'account lock') -------------
    def check_password(self, username, password):
        """Basic authentication as the version does it: -> (user or None, locked).  Counts
        failed logins per user (4.4+); a locked user is refused before the password check up
        to 6.3, while from 6.4 a right password resets the counter first (rules.py)."""
        rules = self.rules
        with self.store.lock:
            user = self.store.users.get(username)
            if user is None or not user.get('active', True):
                return None, False
            if rules.has_account_lock and rules.account_lock_check == 'before_password' \
                    and self.is_locked(username):
                return None, True
            if user['password_hash'] != datamod.hash_password(
                    self.rest_security.get('hash_salt', ''), password):
                if rules.has_account_lock:
                    entry = self._failed_logins.setdefault(username, [0, 0.0])
                    entry[0] += 1
                    entry[1] = time.monotonic()
                return None, False
            self._failed_logins.pop(username, None)       # _reset_failed_logins_counter
            user['last_login_at'] = datamod.ts()
            if not user.get('first_login_at'):
                user['first_login_at'] = user['last_login_at']
            return user, False

    def failed_logins(self, username):
        """The user's failed_logins_counter (reset by a successful password login)."""
        with self.store.lock:
            return self._failed_logins.get(username, [0, 0.0])[0]

    # The account-lock settings: the REST service reads them from the config table (scope
    # rest) from 5.0 (MGR@5.0.5..7.0.4 manager_rest/config.py `load_from_db`; the rows of
    # migration 423a1643f365_4_6_to_5_0, ldap.py), from its config file before.  So on 5.0+
    # `GET /config` shows the manager's options, and the table is what `is_locked` reads.
    def _lock_setting(self, name):
        row = self.store.config.get(('rest', name))
        return self._lock_settings[name] if row is None else row['value']

    def _set_lock_setting(self, name, value):
        self._lock_settings[name] = value
        row = self.store.config.get(('rest', name))
        if row is not None:
            row['value'] = int(value) if float(value).is_integer() else value

    @property
    def failed_logins_before_account_lock(self):
        return int(self._lock_setting('failed_logins_before_account_lock'))

    @failed_logins_before_account_lock.setter
    def failed_logins_before_account_lock(self, value):
        self._set_lock_setting('failed_logins_before_account_lock', int(value))

    @property
    def account_lock_period(self):
        """Minutes (-1: no lockout)."""
        return float(self._lock_setting('account_lock_period'))

    @account_lock_period.setter
    def account_lock_period(self, value):
        self._set_lock_setting('account_lock_period', float(value))

    def is_locked(self, username):
        """MGR@4.4..7.0.4 User.is_locked: counter > failed_logins_before_account_lock and
        the last failure younger than account_lock_period minutes (-1: never; minutes are
        scaled like every simulated duration: 60 x time_scale real seconds)."""
        with self.store.lock:
            count, last = self._failed_logins.get(username, [0, 0.0])
        if not self.rules.has_account_lock or count <= self.failed_logins_before_account_lock:
            return False
        period = self.account_lock_period * 60.0 * self.time_scale
        return last + period > time.monotonic()

    # -- licence (behaviour §12.2) -----------------------------------------------------------------
    def set_licence(self, version=_DEFAULT, expired=False, edition='Premium', trial=False,
                    expiration_date=_DEFAULT, customer_id=None):
        """Install a licence (like `cfy license upload` of a valid file): `version` is its
        cloudify_version (default: the manager's major.minor; None: valid for every version),
        `expired` puts its expiration_date in the past (or give `expiration_date`; None:
        never expires), `trial` marks a trial licence (only an expired trial licence closes
        the gate, research of the vendor's tests test_license.py, behaviour §12.2)."""
        if version is _DEFAULT:
            version = self.rules.licence_version
        if expiration_date is _DEFAULT:
            expiration_date = ('2020-01-01T00:00:00.000Z' if expired
                               else '2099-12-31T00:00:00.000Z')
        with self._licence_lock:
            self.licence = {
                'customer_id': str(customer_id or 'simulator-customer'),
                'expiration_date': _licence_date(expiration_date),
                'license_edition': edition, 'trial': bool(trial),
                'cloudify_version': None if version is None else str(version),
                'capabilities': None}

    def remove_licence(self):
        with self._licence_lock:
            self.licence = None

    def licence_state(self):
        """'valid' | 'expired' (a paying licence past its date: still served) |
        'expired-trial' (gate closed) | 'missing' (gate closed); MGR@7.0.4 License.expired,
        vendor tests test_using_expired_paying_license /
        test_error_when_using_expired_trial_license."""
        with self._licence_lock:
            licence = dict(self.licence) if self.licence else None
        if licence is None:
            return 'missing'
        if not licence_expired(licence):
            return 'valid'
        return 'expired-trial' if licence.get('trial') else 'expired'

    def licence_items(self):
        """GET /license items (MGR@4.6..7.0.4 responses_v3.License fields)."""
        with self._licence_lock:
            licence = dict(self.licence) if self.licence else None
        if licence is None:
            return []
        licence['expired'] = licence_expired(licence)
        return [licence]

    def user_for_token(self, token):
        return apimod.check_token(self, token)

    def set_user_password(self, username, password):
        """Test helper (like `cfy users set-password`): hash with the current salt."""
        with self.store.lock:
            self.store.users[username]['password_hash'] = datamod.hash_password(
                self.rest_security.get('hash_salt', ''), password)
        self.user_passwords[username] = password

    # -- maintenance (behaviour §2.5) --------------------------------------------------------------
    def _running_executions(self):
        with self.store.lock:
            return [{'id': e['id'], 'status': e['status'],
                     'deployment_id': e['deployment_id'], 'workflow_id': e['workflow_id']}
                    for e in self.store.all('executions')
                    if e['status'] not in datamod.END_STATES]

    def maintenance_state(self):
        with self.store.lock:
            state = self._maintenance
            if state['status'] == 'activating':
                running = self._running_executions()
                if running:
                    state['remaining_executions'] = running
                else:
                    state.update(status='activated', activated_at=datamod.ts(),
                                 remaining_executions=[])
            return dict(state)

    def set_maintenance(self, activate, username):
        with self.store.lock:
            if not activate:
                self._maintenance = {'status': 'deactivated', 'activated_at': '',
                                     'activation_requested_at': '',
                                     'remaining_executions': None, 'requested_by': ''}
                return dict(self._maintenance)
            if self._maintenance['status'] == 'deactivated':
                self._maintenance = {'status': 'activating', 'activated_at': '',
                                     'activation_requested_at': datamod.ts(),
                                     'remaining_executions': [], 'requested_by': username}
                state = self.maintenance_state()
                if self.rules.maintenance_activate_nested_list:
                    # behaviour §12.11: `remaining_executions = running,` (a 1-tuple)
                    state['remaining_executions'] = [state['remaining_executions'] or []]
                return state
        return self.maintenance_state()

    # -- executions -----------------------------------------------------------------------------
    def run_execution(self, ex, source='rest'):
        """Start execution `ex` (already stored); `source` says who started it ('rest',
        'scheduler', 'auto_heal', 'system') for the execution log."""
        self.log_execution(ex, source)
        extra = workflows.EXTRA_WORKS.get(ex['workflow_id'])
        if extra is not None:
            work = functools.partial(extra, self.engine)
        else:
            work = {'create_snapshot': self.engine.create_snapshot_work,
                    'restore_snapshot': self.engine.restore_work,
                    'heal': self.engine.heal_work}.get(ex['workflow_id'])
        self.engine.start_execution(ex, work)

    def log_execution(self, ex, source):
        """Every execution this manager started, by anyone (issue 15: "the old manager
        fired nothing after the cut-over")."""
        with self._execution_log_lock:
            self._execution_log.append({
                'id': ex['id'], 'workflow_id': ex['workflow_id'],
                'deployment_id': ex.get('deployment_id'), 'tenant': ex.get('tenant_name'),
                'created_by': ex.get('created_by'), 'source': source,
                'created_at': ex.get('created_at'), 'time': time.time()})

    def started_executions(self, since=None, source=None):
        """Test helper: the executions started here (dicts id, workflow_id,
        deployment_id, tenant, created_by, source, created_at, time = wall-clock epoch),
        optionally only those started at/after `since` (epoch seconds) or by `source`."""
        with self._execution_log_lock:
            return [dict(e) for e in self._execution_log
                    if (since is None or e['time'] >= since)
                    and (source is None or e['source'] == source)]

    def emit_event(self, ex, event_type, message, **fields):
        """Store one ``cloudify_event`` of execution ``ex`` (what the workflow's context
        sends: cloudify-manager@7.0.4 rest-service/manager_rest/rest/resources_v3_1/
        events.py ``_event_from_raw_event``; the fields of its list answer)."""
        event = {'timestamp': datamod.ts(), 'reported_timestamp': datamod.ts(),
                 'blueprint_id': ex.get('blueprint_id'), 'deployment_id': ex.get('deployment_id'),
                 'execution_id': ex['id'], 'workflow_id': ex.get('workflow_id'),
                 'tenant_name': ex.get('tenant_name'), 'message': message,
                 'event_type': event_type, 'operation': fields.get('operation'),
                 'node_instance_id': fields.get('node_instance_id'),
                 'node_name': fields.get('node_name'), 'source_id': None, 'target_id': None,
                 'error_causes': fields.get('error_causes'), 'type': 'cloudify_event'}
        with self.store.lock:
            self.execution_events.setdefault(ex['id'], []).append(event)
        return event

    def events_of(self, execution_ids):
        """The stored events of these executions, oldest first."""
        with self.store.lock:
            return [dict(event) for eid in execution_ids
                    for event in self.execution_events.get(eid, [])]

    def on_execution_end(self, ex):
        self.mark('execution {0} {1} {2}'.format(ex['workflow_id'], ex['status'], ex['id']))

    def broker_alive(self, broker):
        """Can the new manager reach the old agent's broker (behaviour §7.6)?  A manager of this
        process answers by its cloudify-rabbitmq unit; otherwise a TCP connect decides."""
        port = broker.get('port')
        with _REGISTRY_LOCK:
            other = _REGISTRY.get((broker.get('ip') or '127.0.0.1', port))
        if other is not None:
            return (not other.stopped and not other.torn_down and
                    other.unit_active('cloudify-rabbitmq'))
        try:
            with socket.create_connection((broker.get('ip') or '127.0.0.1', int(port)), 1):
                return True
        except (OSError, TypeError, ValueError):
            return False

    def agents(self, tenant=None):
        """Test helper: each host's current agent (the one its runtime properties name),
        with 'broker', 'version', 'installs', 'process' ('running' / 'stopped')."""
        with self.store.lock:
            return [dict(a) for a in self.store.all('agents')
                    if (tenant is None or a['tenant_name'] == tenant)
                    and datamod.is_current_agent(a)]

    def agent_records(self, tenant=None):
        """Test helper: every row of the agents table, the ones a move left behind
        ('upgraded' / 'stopped', AG@7.0.4 operations.py create_agent_amqp)
        included."""
        with self.store.lock:
            return [dict(a) for a in self.store.all('agents')
                    if tenant is None or a['tenant_name'] == tenant]

    def agent_installs(self):
        """Test helper: {(tenant, deployment_id): number of install_new_agents runs}."""
        with self.store.lock:
            return dict(self.store.agent_installs)

    # -- lifecycle ------------------------------------------------------------------------------
    def teardown(self):
        """Tear the manager down on its host (behaviour §7.5 4.0.x row): stop serving, delete
        /opt/manager and /etc/cloudify.  The host (SSH) stays up."""
        if self.torn_down:
            return
        self.torn_down = True
        self.listener.stop()
        if self.http_listener is not None:
            self.http_listener.stop()
        self.engine.stop()
        with _REGISTRY_LOCK:
            if _REGISTRY.get((self.rest_host, self.rest_port)) is self:
                del _REGISTRY[(self.rest_host, self.rest_port)]
        for rel in ('opt/manager', 'etc/cloudify', 'tmp/cloudify', 'opt/mgmtworker'):
            shutil.rmtree(self.host_path(rel), ignore_errors=True)

    def reinstall(self, version, edition=None, data='empty', **kwargs):
        """Install a fresh manager of `version` on the same host and REST port (in-place
        upgrades).  Tears this one down first if needed."""
        self.teardown()
        kwargs.setdefault('time_scale', self.time_scale)
        new = SimulatedManager(version, edition or self.rules.edition, data,
                               machine=self.machine, port=self.rest_port, **kwargs)
        return new

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if not self.torn_down:
            self.listener.stop()
            if self.http_listener is not None:
                self.http_listener.stop()
            self.engine.stop()
            with _REGISTRY_LOCK:
                if _REGISTRY.get((self.rest_host, self.rest_port)) is self:
                    del _REGISTRY[(self.rest_host, self.rest_port)]
        if self.machine.current is self:
            self.machine.stop()


class _SslRequired:
    """The plain HTTP server of an SSL-enabled 4.2+ manager: `return 400` for everything
    (MB@4.2 https-external-rest-server.cloudify, nginx's own error page); 6.0+ answers
    ^/api/ with a JSON `SSL_REQUIRED` error (behaviour §2.1, MI@6.0.0 manager.upstream).  The
    agent-package location of that server is not simulated."""

    def __init__(self, rules):
        self.rules = rules

    def handle(self, request):
        if self.rules.ssl_required_json and request.path.startswith('/api/'):
            body = {'message': 'SSL is required: use https', 'error_code': 'SSL_REQUIRED'}
            return Response(400, json.dumps(body).encode('utf-8'),
                            content_type='application/json')
        return apimod.nginx_page(400)


def _generate_rest_security(rules):
    """behaviour §7.2 table: keys per version."""
    alphabet = list(string.ascii_letters + string.digits)
    secrets.SystemRandom().shuffle(alphabet)
    conf = {'hash_salt': base64.b64encode(secrets.token_bytes(32)).decode('ascii'),
            'secret_key': base64.b64encode(secrets.token_bytes(32)).decode('ascii'),
            'encoding_alphabet': ''.join(alphabet[:31]),
            'encoding_block_size': 24, 'encoding_min_length': 5}
    if rules.rest_security_encryption_key_bytes:
        conf['encryption_key'] = base64.urlsafe_b64encode(
            secrets.token_bytes(rules.rest_security_encryption_key_bytes)).decode('ascii')
    return conf


def start(version, edition='premium', data='empty', state_dir=None, ssh=True, port=0,
          time_scale=DEFAULT_TIME_SCALE, ssh_port=0, **kwargs):
    """Start a simulated manager (and its SSH host when available).

    kwargs: admin_password, networks ({name: ip}), security_enabled (3.4.2), update_3,
    patch_1 (or version strings '4.0.1+update3' / '4.0.0+patch1'), hostname,
    download_headers, ssl, and the behaviour §12 options of SimulatedManager (licensed,
    licence_expired, licence_trial, licence_version, distributed,
    failed_logins_before_account_lock,
    account_lock_period, legacy_stage_restore, ok_fail_delay, db_swap_seconds,
    deadlock_on_db_swap_traffic)."""
    machine = Machine(state_dir=state_dir, ssh=ssh, ssh_port=ssh_port)
    try:
        return SimulatedManager(version, edition, data, machine=machine, port=port,
                                time_scale=time_scale, **kwargs)
    except Exception:
        machine.stop()
        raise


def _licence_date(value):
    """A licence date as the REST service renders it ('%Y-%m-%dT%H:%M:%S.%fZ'); accepts
    dates, ISO strings and the licence file's month/day/year."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return datamod.ts(value)
    if isinstance(value, datetime.date):
        return datamod.ts(datetime.datetime(value.year, value.month, value.day))
    text = str(value)
    for fmt in ('%Y-%m-%dT%H:%M:%S.%fZ', '%Y-%m-%dT%H:%M:%SZ', '%Y-%m-%d', '%m/%d/%Y'):
        try:
            return datamod.ts(datetime.datetime.strptime(text, fmt))
        except ValueError:
            continue
    return text


def licence_expired(licence):
    """MGR@7.0.4 storage/management_models.py License.expired: expiration_date < now."""
    if not licence.get('expiration_date'):
        return False
    return licence['expiration_date'] < datamod.ts()
