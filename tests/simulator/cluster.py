"""Simulated Cloudify Manager clusters (issue 16 item 7): several manager nodes that share one
data state, each with its own REST service, host tree, SSH server and rest-security.conf.

- **5.0.5+ premium clusters** (behaviour §12.9): N managers listed by GET managers, with broker and
  DB node entries (GET brokers, db-nodes; on their own addresses, or beside the managers with
  `colocated=True`) and GET cluster-status.  The nodes share the DB (one `data.Store`: every
  resource, user, token, execution), the licence and the failed-login counts (DB rows), and
  maintenance mode from 5.1.1 (rules.py `maintenance_state_in_db`; a per-node file before).
  Each node keeps its own units, request log, faults, worker (an execution runs on the node
  that received the request) and host files.  `cfy_manager stop|start|restart` over SSH (or
  `node.cfy_manager(...)`) stops / starts every service of that node: stopped, its REST
  address refuses connections; the shared state survives.
- **4.0-4.6 premium HA** (behaviour §3.5; MGR@4.1..4.6, COMMON@4.4): an active node (`leader`)
  and standbys; GET /cluster says initialized, GET /cluster/nodes lists the nodes; a standby
  answers every REST call with 400 `not_cluster_master` (rules.py); the active node refuses
  a restore on 4.1+ while the cluster has more than one node.

What a cluster install shares: every node starts with the same rest-security.conf (MI@7.0.4
restservice.py takes hash_salt, secret_key, encoding_*, encryption_key from config.yaml
`flask_security`, which a cluster's nodes share; written to each node's
/etc/cloudify/config.yaml here too), the same internal CA and the same SSH user and client
key (each node also authorises its own key).  Nothing syncs rest-security.conf afterwards
(MGR@7.0.4 snapshot_restore.py `_restore_security_file`; behaviour §12.9 [U]): a restore merges
the snapshot's file on the node that ran it only, and a node whose file differs hashes
passwords (hash_salt) and signs 4.x-6.x tokens (secret_key) differently, so it refuses the
restored users until its file is made equal and its REST service restarted (a service start
re-reads the file, manager.py).

The file server (/opt/manager/resources, where snapshots live) is replicated between the
managers (syncthing: MI@5.1.0..7.0.4 restservice configure_cluster_script, the
`fs_sync_node_id` of GET managers; DOCS 4.x 'All Cloudify database and filesystem data is
mirrored'): an upload to one node, or a snapshot it creates, is on every node at once, and a
deletion removes it everywhere [I: syncthing copies asynchronously; the simulator does it at
once, and a node also fetches a missing snapshot from its peers when it reads it].

Addresses: each node listens on its own loopback address (managers 127.0.1.<n>, brokers
127.0.2.<n>, DB nodes 127.0.3.<n>) with the **same** REST port and the same SSH port on every
manager.  Stock cfy's ClusterHTTPClient (cloudify_cli/env.py 7.0.5) tries the profile's
manager_ip first, skips every node whose host_ip is that address and keeps the profile's port
for nodes whose entry has none (the entries `cfy profiles use` writes carry hostname,
host_type and host_ip only), so nodes must differ by address, as real ones do.

Entry point: :func:`start_cluster` -> :class:`SimulatedCluster` (README 'Clusters').
"""
import base64
import errno
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Optional

from tests.simulator import tls as tlsmod
from tests.simulator import topology as topomod
from tests.simulator.manager import DEFAULT_TIME_SCALE, Machine, SimulatedManager
from tests.simulator.rules import Rules
from tests.simulator.transport import Response

MANAGER_ADDRESS = '127.0.1.{0}'
BROKER_ADDRESS = '127.0.2.{0}'
DB_ADDRESS = '127.0.3.{0}'
BIND_ATTEMPTS = 8
FAIL_MODES = ('stop', '502')

# cloudify-manager-install@7.0.4 cfy_manager/main.py `main`: the commands argh knows
CFY_MANAGER_COMMANDS = ('validate', 'install', 'configure', 'remove', 'start', 'stop',
                        'restart', 'sanity-check', 'add-networks', 'update-encryption-key',
                        'create-internal-certs', 'create-external-certs',
                        'generate-test-cert', 'reset-admin-password', 'image-starter',
                        'wait-for-starter', 'version', 'upgrade', 'run-init', 'certificates',
                        'brokers', 'dbs', 'logs')


def _node_host_class():
    """The SSH server of a cluster node: SimulatedHost plus `cfy_manager` (imported lazily:
    asyncssh is only needed with ssh=True)."""
    from tests.simulator.host import CommandFailed, SimulatedHost

    class NodeHost(SimulatedHost):
        """Adds `cfy_manager start|stop|restart` (MI@4.3..7.0.4 cfy_manager/main.py): run
        as a user it re-executes itself through `/usr/bin/sudo` (`_ensure_root`), so it needs
        sudo rights like the commands the host already knows."""
        machine = None

        def _cmd_cfy_manager(self, args, sudo, stdin, out):
            node = self.machine.current if self.machine is not None else None
            if node is None or node.torn_down or not node.rules.has_cfy_manager:
                if sudo:
                    raise CommandFailed(1, 'sudo: cfy_manager: command not found')
                raise CommandFailed(127, 'bash: cfy_manager: command not found')
            if not sudo and not self.sudo_allowed:
                raise CommandFailed(1, 'sudo: a password is required')
            words = [a for a in args if not a.startswith('-')]
            command = words[0] if words else None
            if command not in CFY_MANAGER_COMMANDS:
                # argh's answer to an unknown command (there is no `cfy_manager status`)
                choices = ', '.join("'{0}'".format(c) for c in CFY_MANAGER_COMMANDS)
                raise CommandFailed(2, 'usage: cfy_manager [-h] {{{0}}} ...\ncfy_manager: '
                                       'error: argument {{{0}}}: invalid choice: {1!r} '
                                       '(choose from {2})'.format(
                                           ','.join(CFY_MANAGER_COMMANDS), command, choices))
            if command not in ('start', 'stop', 'restart') or len(words) > 1:
                raise CommandFailed(1, 'simulated host: only `cfy_manager start|stop|restart` '
                                       'of the whole node is simulated')
            out.write(node.cfy_manager(command).encode())
            return 0
    return NodeHost


@dataclass
class FailAfter:
    """Fault: after `remaining` more requests matching method / path (regex) have been
    answered, the node goes down at its next request ('stop': as `cfy_manager stop`, that
    request's connection is dropped and new ones are refused; '502': its REST service stops,
    nginx answers 502).  Stock cfy's ClusterHTTPClient fails over on both."""
    remaining: int
    method: Optional[str]
    path: Optional[re.Pattern]
    mode: str
    tripped: bool = False

    def matches(self, request):
        return ((self.method is None or request.method == self.method) and
                (self.path is None or self.path.search(request.path) is not None))


def _shared(name, shared_rule=None):
    """A node attribute that lives in the cluster's DB once the node has joined (before: its
    own, so SimulatedManager.__init__ can run unchanged); `shared_rule`: a rules.Rules flag
    that must hold for the value to be shared (else it stays per node)."""
    local = '_local_' + name

    def shared(self):
        return self.__dict__.get('_joined') and (
            shared_rule is None or getattr(self.rules, shared_rule))

    def fget(self):
        if shared(self):
            return self.cluster.db[name]
        return self.__dict__[local]

    def fset(self, value):
        if shared(self):
            self.cluster.db[name] = value
        else:
            self.__dict__[local] = value
    return property(fget, fset)


class ClusterNode(SimulatedManager):
    """A manager node of a :class:`SimulatedCluster` (a SimulatedManager whose DB state is
    the cluster's).  Extra handle surface: `cluster`, `index`, `name` (its hostname),
    `rest_host` (its address), `running`, `cfy_manager(action)`, `fail_after(...)`,
    `is_leader` (4.x HA)."""

    store = _shared('store')
    user_passwords = _shared('user_passwords')
    licence = _shared('licence')
    _failed_logins = _shared('failed_logins')
    _maintenance = _shared('maintenance', 'maintenance_state_in_db')

    def __init__(self, cluster, index, version, edition, data, machine, port, **kwargs):
        self.cluster = cluster
        self.index = index
        self._fail = None
        self._fail_lock = threading.Lock()
        super().__init__(version, edition, data, machine=machine, port=port, **kwargs)

    @property
    def state(self):
        return self.store

    @state.setter
    def state(self, value):
        self.store = value

    @property
    def name(self):
        return self.hostname

    def _join(self, first):
        """Become a node of the cluster: the first node's DB state is the cluster's."""
        if first:
            self.cluster.db.update(
                store=self.store, user_passwords=self.user_passwords, licence=self.licence,
                failed_logins=self._failed_logins, maintenance=self._maintenance)
        self.__dict__['_joined'] = True
        self.api.store = self.store

    def _install_tls(self):
        """The cluster's CA signs a certificate for this node's address."""
        if not self.ssl:
            return None
        cert, key = tlsmod.make_server_certificate(self.cluster.ca_cert, self.cluster.ca_key,
                                                   self.rest_host)
        cert_rel, key_rel = self.rules.external_cert_files
        self._write_host_file(cert_rel, cert, 0o644)
        self._write_host_file(key_rel, key, 0o600)
        self.ca_path = self.cluster.ca_path
        return tlsmod.server_context(self.host_path(cert_rel), self.host_path(key_rel))

    def topology(self):
        return self.cluster.topology or topomod.all_in_one(self)   # None while starting

    @property
    def is_leader(self):
        return self.cluster.topology.kind == 'ha4' and self.cluster.topology.leader == self.index

    # -- services of the node --------------------------------------------------------------
    @property
    def running(self):
        """Every service of the node runs and its REST address listens."""
        return (not self.stopped and self.listener.listening and
                all(self.unit_active(u) for u in self.units))

    def cfy_manager(self, action):
        """`cfy_manager stop|start|restart` on this node (MI@7.0.4 cfy_manager/main.py: every
        component's stop() / start()); returns what it prints [I: the log format]."""
        lines = []
        if action in ('stop', 'restart'):
            lines.append('Stopping Cloudify Manager services...')
            for unit in reversed(list(self.units)):
                self._stop_unit(unit)
            lines.append('Cloudify Manager services successfully stopped!')
            self.mark('cfy_manager stop')
        if action in ('start', 'restart'):
            lines.append('Starting Cloudify Manager services...')
            for unit in list(self.units):
                self._start_unit(unit)
            lines.append('Cloudify Manager services successfully started!')
            self.mark('cfy_manager start')
        if not lines:
            raise ValueError('cfy_manager action must be start, stop or restart')
        return ''.join(line + '\n' for line in lines)

    def fail_after(self, count=1, method=None, path=None, mode='stop'):
        """Fault (FailAfter): after `count` more requests matching `method` / `path` (a
        regex searched in the request path) were answered, the node goes down."""
        if mode not in FAIL_MODES:
            raise ValueError('mode must be one of {0}'.format(', '.join(FAIL_MODES)))
        with self._fail_lock:
            self._fail = FailAfter(int(count), method, re.compile(path) if path else None,
                                   mode)

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, request):
        with self._fail_lock:
            fail = self._fail
            if fail is not None and fail.tripped:
                self._fail = None
        if fail is not None and fail.tripped:
            if fail.mode == 'stop':
                self.record_request(request)
                self.cfy_manager('stop')
                return None                     # this connection drops, new ones refused
            self._stop_unit('cloudify-restservice')     # nginx answers 502 from now on
        topology = self.cluster.topology
        if topology.kind == 'ha4' and topology.leader != self.index and \
                request.path.startswith('/api/'):
            entry = self.record_request(request)
            entry['status'] = self.rules.ha_standby_status
            body = {'message': 'This node is not the cluster master (simulated message)',
                    'error_code': self.rules.ha_standby_error_code, 'server_traceback': None}
            return Response(self.rules.ha_standby_status, json.dumps(body).encode('utf-8'),
                            content_type='application/json')
        response = super().handle(request)
        if fail is not None and fail.matches(request):
            with self._fail_lock:
                fail.remaining -= 1
                if fail.remaining <= 0:
                    fail.tripped = True
        return response

    # -- the replicated file server ------------------------------------------------------------
    def snapshot_path(self, sid):
        path = super().snapshot_path(sid)
        if not os.path.exists(path):
            self.cluster.fetch_snapshot(self, sid)
        return path

    def receive_snapshot_file(self, sid, chunks):
        super().receive_snapshot_file(sid, chunks)
        self.cluster.replicate_snapshot(self, sid)

    def remove_snapshot_file(self, sid):
        self.cluster.remove_snapshot(sid)

    def on_execution_end(self, ex):
        super().on_execution_end(ex)
        if ex['workflow_id'] == 'create_snapshot' and ex['status'] == 'terminated':
            sid = (ex.get('parameters') or {}).get('snapshot_id')
            if sid:
                self.cluster.replicate_snapshot(self, sid)

    def reinstall(self, version, edition=None, data='empty', **kwargs):
        """Not simulated: a reinstalled node would leave the cluster's shared state (the
        vendor's in-place cluster upgrade is an RPM upgrade, behaviour §12.9)."""
        raise NotImplementedError('cluster nodes cannot be reinstalled in the simulator')

    def __repr__(self):
        return '<ClusterNode {0} {1} on {2}>'.format(self.name, self.rules.describe(),
                                                     self.url)


class SimulatedCluster:
    """Several ClusterNodes sharing one DB state (module docstring).  Handle surface:
    `nodes` (= `managers`, ClusterNode list), `brokers`, `db_nodes` (topology.NodeEntry
    lists), `topology`, `kind` ('nodes' | 'ha4'), `rest_port` / `ssh_port` (the same on every
    manager), `ssh_user`, `ssh_key` (authorised on every manager), `admin_username`,
    `admin_password`, `user_passwords`, `state` (the shared Store), `rest_protocol`,
    `ca_path`, `node(i_or_name)`, `leader` / `set_leader(i)` (4.x HA), `client(i)`,
    `profile_cluster(...)`, `profile_context(...)`, `write_profile(...)`, `info()`,
    `stop()`, `teardown()`."""

    def __init__(self, version, managers=3, brokers=3, db_nodes=3, colocated=False,
                 edition='premium', data='empty', state_dir=None, ssh=True,
                 time_scale=DEFAULT_TIME_SCALE, ssl=False, **kwargs):
        rules = Rules(version, edition, update_3=kwargs.get('update_3', False),
                      patch_1=kwargs.get('patch_1', False))
        if rules.cluster_kind is None:
            raise ValueError('clusters are simulated for premium 4.0-4.6 (HA) and premium '
                             '5.0.5+ managers (behaviour §3.5, §12.9), not {0}'.format(
                                 rules.describe()))
        managers = int(managers)
        if managers < 1:
            raise ValueError('a cluster needs at least one manager')
        self.kind = rules.cluster_kind
        if self.kind == 'ha4':
            brokers = db_nodes = 0          # 4.x HA nodes run every service themselves
            colocated = True
        brokers, db_nodes = int(brokers), int(db_nodes)
        if colocated and self.kind == 'nodes' and (brokers > managers or db_nodes > managers):
            raise ValueError('colocated brokers and DB nodes run on the managers: at most '
                             '{0} of each'.format(managers))
        if self.kind == 'nodes' and (brokers < 1 or db_nodes < 1):
            raise ValueError('a cluster needs at least one broker and one DB node')
        for name in ('hostname', 'port', 'ssh_port'):
            if name in kwargs:
                raise ValueError('{0} is chosen by the cluster'.format(name))
        self.version = version
        self.edition = edition
        self.colocated = colocated
        self.db = {}
        self.nodes = []
        self.ssl = bool(ssl)
        self._dir = None
        self.state_dir = os.path.abspath(state_dir) if state_dir else None
        if self.state_dir is None:
            self._dir = tempfile.mkdtemp(prefix='cfy-sim-cluster-')
        self.ca_cert = self.ca_key = self.ca_path = None
        if self.ssl:
            self.ca_cert, self.ca_key = tlsmod.make_ca('cloudify-simulated-cluster-ca')
            self.ca_path = os.path.join(self.state_dir or self._dir, 'rest-ca.pem')
            os.makedirs(os.path.dirname(self.ca_path), exist_ok=True)
            with open(self.ca_path, 'wb') as f:
                f.write(self.ca_cert)
        self._sync_lock = threading.RLock()
        self.topology = None
        try:
            self._start_nodes(managers, edition, data, ssh, time_scale, kwargs)
        except BaseException:
            self.stop()
            raise
        self.topology = self._layout(managers, brokers, db_nodes)

    # -- start-up ----------------------------------------------------------------------------
    def _node_dir(self, index):
        return os.path.join(self.state_dir or self._dir, 'node-{0}'.format(index + 1))

    def _start_nodes(self, count, edition, data, ssh, time_scale, kwargs):
        last = None
        for _ in range(BIND_ATTEMPTS):
            try:
                self._try_start(count, edition, data, ssh, time_scale, kwargs)
                return
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                last = e
                for node in reversed(self.nodes):
                    node.stop()
                self.nodes = []
                self.db = {}
        raise last

    def _try_start(self, count, edition, data, ssh, time_scale, kwargs):
        """Node 1 on ephemeral ports; the others on the same ports at their own addresses
        (OSError EADDRINUSE when taken: the caller retries with new ports)."""
        host_class = _node_host_class() if ssh else None
        rest_port = ssh_port = 0
        first = None
        for index in range(count):
            address = MANAGER_ADDRESS.format(index + 1)
            machine = Machine(state_dir=self._node_dir(index), ssh=ssh, ssh_port=ssh_port,
                              bind_host=address, host_class=host_class)
            if machine.host is not None:
                machine.host.machine = machine
            try:
                if first is not None:
                    self._share_install_config(first, machine)
                options = dict(kwargs)
                if first is not None:
                    options['admin_password'] = first.admin_password
                node = ClusterNode(self, index, self.version, edition,
                                   data if first is None else 'empty', machine, rest_port,
                                   hostname='manager-{0}'.format(index + 1),
                                   time_scale=time_scale, ssl=self.ssl, **options)
            except BaseException:
                machine.stop()
                raise
            self.nodes.append(node)
            if first is None:
                first, rest_port, ssh_port = node, node.rest_port, node.ssh_port or 0
                node._join(first=True)
            else:
                self._share_install_files(first, node)
                node._join(first=False)
            if not self.colocated:
                for unit in [u for u in node.units if u == topomod.BROKER_UNIT or
                             u.startswith('postgresql') or u == 'elasticsearch']:
                    del node.units[unit]          # a manager-only node of a 9-node layout
        self._share_ssh_key()

    @staticmethod
    def _share_install_config(first, machine):
        """A cluster's nodes install with the same config.yaml `flask_security`
        (MI@7.0.4 restservice.py `_generate_flask_security_config`)."""
        if not first.rules.install_reads_config_yaml:
            return
        import yaml
        conf = first.rest_security_file() or {}
        path = os.path.join(machine.root, 'etc', 'cloudify', 'config.yaml')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            yaml.safe_dump({'flask_security': conf}, f, default_flow_style=False)

    @staticmethod
    def _share_install_files(first, node):
        """Same rest-security.conf (4.x HA join, and what config.yaml gives 5.0.5+) and the
        same internal CA on every node."""
        for rel in ('opt/manager/rest-security.conf',
                    'etc/cloudify/ssl/cloudify_internal_ca_cert.pem',
                    'etc/cloudify/ssl/cloudify_internal_ca_key.pem'):
            content = first.read_host_file(rel)
            if content is not None:
                node._write_host_file(rel, content,
                                      0o440 if rel.endswith('.conf') else 0o600
                                      if 'key' in rel else 0o644)
        node.reload_rest_security()

    def _share_ssh_key(self):
        """Every node authorises the first node's client key (the operator's one key)."""
        hosts = [n.machine.host for n in self.nodes if n.machine.host is not None]
        if len(hosts) < 2:
            return
        with open(hosts[0].key_path + '.pub', 'rb') as f:
            public = f.read()
        for host in hosts[1:]:
            with open(host.authorized_keys_path, 'ab') as f:
                f.write(public if public.endswith(b'\n') else public + b'\n')

    def _layout(self, managers, brokers, db_nodes):
        entries = []
        for node in self.nodes:
            entries.append(topomod.NodeEntry(
                'manager', node.hostname, node.rest_host, node=node,
                extra={'fs_sync_node_id': _sync_id(),
                       'node_id': 'manager-node-{0}'.format(node.index + 1)}))
        broker_list, db_list = [], []
        for index in range(brokers):
            if self.colocated:
                node = self.nodes[index]
                broker_list.append(topomod.NodeEntry('broker', 'broker-{0}'.format(index + 1),
                                                     node.rest_host, node=node,
                                                     unit=topomod.BROKER_UNIT))
            else:
                broker_list.append(topomod.NodeEntry('broker', 'broker-{0}'.format(index + 1),
                                                     BROKER_ADDRESS.format(index + 1)))
        for index in range(db_nodes):
            if self.colocated:
                node = self.nodes[index]
                unit = [u for u in node.units if u.startswith('postgresql')]
                db_list.append(topomod.NodeEntry('db', 'db-{0}'.format(index + 1),
                                                 node.rest_host, node=node,
                                                 unit=unit[0] if unit else None))
            else:
                db_list.append(topomod.NodeEntry('db', 'db-{0}'.format(index + 1),
                                                 DB_ADDRESS.format(index + 1)))
        return topomod.Topology(entries, broker_list, db_list, kind=self.kind)

    # -- handles -------------------------------------------------------------------------------
    @property
    def managers(self):
        return list(self.nodes)

    @property
    def brokers(self):
        return list(self.topology.brokers)

    @property
    def db_nodes(self):
        return list(self.topology.db_nodes)

    def node(self, key):
        """A manager node by index (0-based) or hostname."""
        if isinstance(key, int):
            return self.nodes[key]
        for node in self.nodes:
            if node.hostname == key:
                return node
        raise KeyError(key)

    @property
    def first(self):
        return self.nodes[0]

    @property
    def rest_port(self):
        return self.first.rest_port

    @property
    def rest_protocol(self):
        return self.first.protocol

    @property
    def ssh_port(self):
        return self.first.ssh_port

    @property
    def ssh_user(self):
        return self.first.ssh_user

    @property
    def ssh_key(self):
        return self.first.ssh_key

    @property
    def admin_username(self):
        return self.first.admin_username

    @property
    def admin_password(self):
        return self.first.admin_password

    @property
    def user_passwords(self):
        return self.db['user_passwords']

    @property
    def state(self):
        return self.db['store']

    @property
    def rules(self):
        return self.first.rules

    @property
    def leader(self):
        """The active node of a 4.x HA cluster."""
        return self.nodes[self.topology.leader]

    def set_leader(self, index):
        """4.x HA failover: node `index` becomes the active one."""
        if self.kind != 'ha4':
            raise ValueError('only 4.x HA clusters have a leader')
        self.nodes[index]          # IndexError for a bad index
        self.topology.leader = index

    def client(self, index=0, **kwargs):
        return self.nodes[index].client(**kwargs)

    # -- the replicated file server (module docstring) -------------------------------------
    def replicate_snapshot(self, source, sid):
        path = SimulatedManager.snapshot_path(source, sid)
        with self._sync_lock:
            if not os.path.isfile(path):
                return
            for node in self.nodes:
                if node is not source and not node.torn_down:
                    _copy_file(path, SimulatedManager.snapshot_path(node, sid))

    def fetch_snapshot(self, target, sid):
        with self._sync_lock:
            for node in self.nodes:
                path = SimulatedManager.snapshot_path(node, sid)
                if node is not target and not node.torn_down and os.path.isfile(path):
                    _copy_file(path, SimulatedManager.snapshot_path(target, sid))
                    return

    def remove_snapshot(self, sid):
        with self._sync_lock:
            for node in self.nodes:
                shutil.rmtree(os.path.dirname(SimulatedManager.snapshot_path(node, sid)),
                              ignore_errors=True)

    # -- the cfy profile (behaviour §12.9; cloudify_cli 7.0.5) -------------------------------------
    def profile_cluster(self, ssh=True, cert=None):
        """The profile's `cluster` as `cfy profiles use` (with credentials, validated) and
        `cfy cluster update-profile` 7.0.5 write it (commands/cluster.py `_update_node`:
        hostname, host_type, host_ip = public_ip or private_ip for managers, host for
        brokers / DB nodes, in GET order), plus, per manager, what `cfy profiles set-cluster
        NODE --ssh-user U --ssh-key K --ssh-port P` adds (ssh_user, ssh_key, ssh_port as
        the string click passes) when `ssh`, and `--rest-certificate C` (cert, trust_all
        false, rest_protocol https) when `cert`.  4.x HA: stock 7.0.5 writes none (its
        `cfy profiles use` fails on GET managers, contract test), so this is {}."""
        if self.kind != 'nodes':
            return {}
        section = {'manager': [], 'broker': [], 'db': []}
        for node in self.nodes:
            entry = {'hostname': node.hostname, 'host_type': 'manager',
                     'host_ip': node.rest_host}
            if ssh and node.ssh_port:
                entry.update(ssh_user=node.ssh_user, ssh_key=self.ssh_key,
                             ssh_port=str(node.ssh_port))
            if cert:
                entry.update(cert=str(cert), trust_all=False, rest_protocol='https')
            section['manager'].append(entry)
        for kind, entries in (('broker', self.topology.brokers), ('db', self.topology.db_nodes)):
            for item in entries:
                section[kind].append({'hostname': item.name, 'host_type': kind,
                                      'host_ip': item.ip})
        return section

    def profile_context(self, name=None, node=0, ssh=True, username=None, password=None,
                        tenant='default_tenant'):
        """The whole context.json of a profile made by `cfy profiles use <node address>
        --rest-port P -u -p -t [--ssh-user --ssh-key --ssh-port] [--rest-certificate CA]`
        then `set-cluster` for every manager (behaviour §6.1; cloudify_cli/commands/profiles.py
        `_set_profile_context`, env.py ProfileContext)."""
        first = self.node(node)
        rest_certificate = self.ca_path if self.ssl else None
        context = {
            'name': name or first.rest_host,
            'manager_ip': first.rest_host,
            'ssh_key': self.ssh_key if ssh and self.ssh_port else None,
            'ssh_port': str(self.ssh_port) if ssh and self.ssh_port else 22,
            'ssh_user': self.ssh_user if ssh and self.ssh_port else None,
            'provider_context': _provider_context(first),
            'manager_username': username or self.admin_username,
            'manager_password': password or self.admin_password,
            'manager_token': None,
            'manager_tenant': tenant,
            'rest_port': first.rest_port,
            'rest_protocol': first.protocol,
            'rest_certificate': rest_certificate,
            'kerberos_env': False,
            'cluster': self.profile_cluster(ssh=ssh),
        }
        return context

    def write_profile(self, cfy_workdir, name=None, node=0, ssh=True, username=None,
                      password=None, tenant='default_tenant', activate=True):
        """Write <cfy_workdir>/.cloudify/profiles/<name>/context.json (dir 0700) like the
        stock CLI (env.py ProfileContext.save: sorted keys, indent 4) and make it active.
        Returns the profile name."""
        context = self.profile_context(name, node, ssh, username, password, tenant)
        base = os.path.join(str(cfy_workdir), '.cloudify')
        workdir = os.path.join(base, 'profiles', context['name'])
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        with open(os.path.join(workdir, 'context.json'), 'w') as f:
            json.dump(context, f, sort_keys=True, indent=4)
            f.write('\n')
        if activate:
            with open(os.path.join(base, 'active.profile'), 'w') as f:
                f.write(context['name'])
        return context['name']

    # -- lifecycle -------------------------------------------------------------------------
    def info(self):
        """The JSON line of `python -m tests.simulator --cluster-managers N`."""
        return {'cluster': self.kind, 'rest_port': self.rest_port,
                'rest_protocol': self.rest_protocol, 'rest_certificate': self.ca_path,
                'ssh_port': self.ssh_port, 'ssh_user': self.ssh_user, 'ssh_key': self.ssh_key,
                'admin_username': self.admin_username, 'admin_password': self.admin_password,
                'managers': [{'hostname': n.hostname, 'rest_host': n.rest_host,
                              'rest_port': n.rest_port, 'ssh_port': n.ssh_port,
                              'ssh_key': n.ssh_key, 'http_port': n.http_port}
                             for n in self.nodes],
                'brokers': [{'name': b.name, 'host': b.ip, 'port': topomod.BROKER_PORT}
                            for b in self.topology.brokers],
                'db_nodes': [{'name': d.name, 'host': d.ip} for d in self.topology.db_nodes],
                'leader': (self.nodes[self.topology.leader].hostname
                           if self.kind == 'ha4' else None)}

    def teardown(self):
        for node in self.nodes:
            node.teardown()

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return '<SimulatedCluster {0} {1} x{2}>'.format(self.kind, self.rules.describe(),
                                                        len(self.nodes))


def _sync_id():
    """A syncthing-like device id [I: the value's form]."""
    raw = base64.b32encode(secrets.token_bytes(35)).decode('ascii').rstrip('=')
    return '-'.join(raw[i:i + 7] for i in range(0, 56, 7))


def _copy_file(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = '{0}.sync-{1}'.format(dst, secrets.token_hex(4))
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _provider_context(node):
    """What `cfy profiles use` stores: GET provider/context's `context` (profiles.py
    `_get_provider_context`)."""
    from tests.simulator import api as apimod
    return apimod.provider_context(node.api, None)[1]['context']


def start_cluster(version, managers=3, brokers=3, db_nodes=3, colocated=False,
                  edition='premium', data='empty', state_dir=None, ssh=True,
                  time_scale=DEFAULT_TIME_SCALE, ssl=False, **kwargs):
    """Start a simulated cluster (module docstring; README 'Clusters').  kwargs: the
    SimulatedManager options (admin_password, licensed, ...) applied to every node."""
    return SimulatedCluster(version, managers=managers, brokers=brokers, db_nodes=db_nodes,
                            colocated=colocated, edition=edition, data=data,
                            state_dir=state_dir, ssh=ssh, time_scale=time_scale, ssl=ssl,
                            **kwargs)
