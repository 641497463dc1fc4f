"""The layout of a manager: all-in-one, a 5.x+ cluster, or a 4.x HA cluster (issue 16 item 1).

Owns ``discover_layout(manager)``: which manager, broker and DB nodes a manager belongs to,
from three sources (behaviour §12.9):

- the cfy profile's ``cluster`` section (``{manager: [...], broker: [...], db: [...]}``, each
  entry with ``hostname``, ``host_ip`` and optional ``rest_port``, ``rest_protocol``,
  ``ssh_user``, ``ssh_key``, ``ssh_port``, ``cert``; written by `cfy profiles use` / `cfy cluster
  update-profile` / `cfy profiles set-cluster`, cloudify-cli@7.0.4 commands/cluster.py, env.py
  ``CLUSTER_NODE_ATTRS``); a 4.x CLI wrote a list of nodes instead;
- 5.0.5+: ``GET managers`` / ``brokers`` / ``db-nodes`` and ``GET cluster-status`` (behaviour
  §12.9; broker credentials in ``GET brokers`` are dropped here, never recorded);
- 4.0-5.0.0 premium: ``GET /cluster`` (``initialized``) and ``GET /cluster/nodes`` (``master``,
  ``online``), the 4.x active/passive HA cluster (behaviour §3.5, §12.9).

The REST lists say which nodes exist; the profile's entries say how to reach each one (its
address and SSH settings; the profile's own SSH settings otherwise).  ``Layout.to_dict`` is what
the workspace records (nothing secret: no key path, no broker password).  ``node_manager`` is
the same ``Manager`` at one node's address: the plugin's client never fails over between nodes
(cfy's own ``ClusterHTTPClient`` does, env.py), so a sequence of calls stays on one node.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger

ALL_IN_ONE, CLUSTER, HA4 = 'all-in-one', 'cluster', 'ha4'
# the per-node settings of a profile's cluster entry (cloudify-cli@7.0.4 env.py
# CLUSTER_NODE_ATTRS, plus cert / trust_all of `cfy profiles set-cluster --rest-certificate`)
SSH_ATTRS = ('ssh_user', 'ssh_key', 'ssh_port')


@dataclass
class Node:
    """One node of a layout.  ``address``: where the plugin reaches it."""

    kind: str                              # manager | broker | db
    name: str
    address: Optional[str]
    private_ip: Optional[str] = None
    public_ip: Optional[str] = None
    role: Optional[str] = None             # managers: active | leader | standby
    status: Optional[str] = None           # cluster-status / online: OK | Fail | ...
    version: Optional[str] = None
    distribution: Optional[str] = None
    ssh: Dict[str, object] = field(default_factory=dict, repr=False)   # not recorded

    def to_dict(self) -> dict:
        doc = {'kind': self.kind, 'name': self.name, 'address': self.address}
        for name in ('private_ip', 'public_ip', 'role', 'status', 'version', 'distribution'):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        if self.ssh.get('ssh_user'):
            doc['ssh'] = '{0}@{1}:{2}'.format(
                self.ssh['ssh_user'], self.address, self.ssh.get('ssh_port') or 22)
        return doc


@dataclass
class Layout:
    """The nodes a manager belongs to; ``kind`` all-in-one | cluster | ha4."""

    kind: str
    managers: List[Node]
    brokers: List[Node] = field(default_factory=list)
    db_nodes: List[Node] = field(default_factory=list)
    detected_by: List[str] = field(default_factory=list)

    @property
    def is_cluster(self) -> bool:
        return self.kind != ALL_IN_ONE

    @property
    def multi_manager(self) -> bool:
        return len(self.managers) > 1

    def manager(self, key: str) -> Optional[Node]:
        """The manager node named ``key`` or reached at address ``key``."""
        for node in self.managers:
            if key in (node.name, node.address, node.private_ip, node.public_ip):
                return node
        return None

    def to_dict(self) -> dict:
        return {'kind': self.kind, 'managers': [n.to_dict() for n in self.managers],
                'brokers': [n.to_dict() for n in self.brokers],
                'db_nodes': [n.to_dict() for n in self.db_nodes],
                'detected_by': list(self.detected_by)}

    @classmethod
    def from_dict(cls, doc: dict, profile=None) -> 'Layout':
        """A recorded layout again; SSH settings come back from ``profile``."""
        def nodes(items):
            return [Node(kind=i.get('kind'), name=i.get('name'), address=i.get('address'),
                         private_ip=i.get('private_ip'), public_ip=i.get('public_ip'),
                         role=i.get('role'), status=i.get('status'),
                         version=i.get('version'), distribution=i.get('distribution'))
                    for i in items or []]
        layout = cls(kind=doc.get('kind') or ALL_IN_ONE, managers=nodes(doc.get('managers')),
                     brokers=nodes(doc.get('brokers')), db_nodes=nodes(doc.get('db_nodes')),
                     detected_by=list(doc.get('detected_by') or []))
        _apply_profile(layout, profile_section(profile), profile)
        return layout


# -- the profile's cluster section ---------------------------------------------------------

def _value(profile, name, default=None):
    if profile is None:
        return default
    if isinstance(profile, dict):
        return profile.get(name, default)
    return getattr(profile, name, default)


def profile_section(profile) -> Dict[str, List[dict]]:
    """The profile's ``cluster`` as {manager|broker|db: [entries]} (a 4.x list: managers)."""
    section = _value(profile, 'cluster') or {}
    if isinstance(section, list):       # cfy 4.x profiles: a list of manager nodes
        return {'manager': [dict(e, host_ip=e.get('host_ip') or e.get('manager_ip'))
                            for e in section if isinstance(e, dict)]}
    if not isinstance(section, dict):
        return {}
    found = {kind: [e for e in (section.get(kind) or []) if isinstance(e, dict)]
             for kind in ('manager', 'broker', 'db')}
    return found if any(found.values()) else {}


def _profile_ssh(entry: dict, profile) -> dict:
    """The SSH settings of a node: its entry's, else the profile's own (behaviour §12.9)."""
    ssh = {}
    for name in SSH_ATTRS:
        value = entry.get(name)
        if value in (None, ''):
            value = _value(profile, name)
        if value not in (None, ''):
            ssh[name] = value
    return ssh


def _apply_profile(layout: Layout, section: Dict[str, List[dict]], profile) -> None:
    """Addresses and SSH settings from the profile's entries; the profile's own SSH settings
    for nodes without an entry."""
    entries = section.get('manager') or []
    for node in layout.managers:
        entry = next((e for e in entries if e.get('hostname') == node.name), None)
        if entry is None:
            entry = next((e for e in entries if e.get('host_ip') and e.get('host_ip') in (
                node.address, node.private_ip, node.public_ip)), None)
        entry = entry or {}
        if entry.get('host_ip'):
            node.address = entry['host_ip']
        node.ssh = _profile_ssh(entry, profile)


# -- discovery -----------------------------------------------------------------------------

def discover_layout(manager) -> Layout:
    """The layout ``manager`` belongs to (module docstring); never raises for a manager that
    cannot tell (an all-in-one layout of itself, or the profile's section, is the answer)."""
    logger = get_logger()
    profile = manager.profile
    section = profile_section(profile)
    layout = None
    if versions.has_cluster_nodes_api(manager.version):
        layout = _from_node_lists(manager)
    elif versions.has_ha_cluster_api(manager.version) and manager.edition != 'community':
        layout = _from_ha_cluster(manager)
    if layout is None and len(section.get('manager') or []) > 0:
        layout = _from_profile(section)
    if layout is None:
        layout = Layout(ALL_IN_ONE, [Node('manager', manager.host, manager.host,
                                          role='active')], detected_by=['the manager alone'])
    if section:
        layout.detected_by.insert(0, 'the profile\'s cluster section')
    _apply_profile(layout, section, profile)
    logger.debug('layout of %s: %s', manager.label, layout.to_dict())
    return layout


def _items(manager, resource) -> Optional[List[dict]]:
    try:
        answer = manager.list_page(resource, {}, what='listing the {0}'.format(resource))
    except UpgradeError as error:
        get_logger().debug('%s: GET %s failed: %s', manager.label, resource, error.message)
        return None
    items = answer.get('items') if isinstance(answer, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else None


def _from_node_lists(manager) -> Optional[Layout]:
    """5.0.5+: GET managers, brokers, db-nodes; node states from GET cluster-status."""
    managers = _items(manager, 'managers')
    if not managers:
        return None
    brokers = _items(manager, 'brokers') or []
    dbs = _items(manager, 'db-nodes') or []
    nodes = [Node('manager', m.get('hostname'), m.get('public_ip') or m.get('private_ip'),
                  private_ip=m.get('private_ip'), public_ip=m.get('public_ip'),
                  role='active', version=m.get('version'),
                  distribution=_distribution(m)) for m in managers]
    layout = Layout(
        CLUSTER if len(managers) > 1 or len(brokers) > 1 or len(dbs) > 1 else ALL_IN_ONE,
        nodes,
        # GET brokers also shows the broker credentials to admins: never kept
        [Node('broker', b.get('name'), b.get('host')) for b in brokers],
        [Node('db', d.get('name'), d.get('host')) for d in dbs],
        detected_by=['GET managers, brokers, db-nodes'])
    status = _cluster_status(manager)
    if status:
        layout.detected_by.append('GET cluster-status')
        for kind, nodes in (('manager', layout.managers), ('broker', layout.brokers),
                            ('db', layout.db_nodes)):
            reported = ((status.get(kind) or {}).get('nodes') or {})
            for node in nodes:
                state = reported.get(node.name)
                if isinstance(state, dict):
                    node.status = state.get('status')
    return layout


def _distribution(item) -> Optional[str]:
    parts = [item.get('distribution'), item.get('distro_release')]
    return ' '.join(str(p) for p in parts if p) or None


def _cluster_status(manager) -> Optional[dict]:
    try:
        answer = manager.get('/cluster-status', retry=False, what='reading the cluster status')
    except UpgradeError as error:
        get_logger().debug('%s: cluster-status: %s', manager.label, error.message)
        return None
    services = answer.get('services') if isinstance(answer, dict) else None
    return services if isinstance(services, dict) else None


def _from_ha_cluster(manager) -> Optional[Layout]:
    """4.x HA: GET /cluster says whether a cluster was started; GET /cluster/nodes lists it."""
    try:
        state = manager.get('/cluster', retry=False, what='reading the HA cluster state')
    except UpgradeError as error:
        get_logger().debug('%s: GET /cluster: %s', manager.label, error.message)
        return None
    if not isinstance(state, dict) or not state.get('initialized'):
        return None
    nodes = _items(manager, 'cluster/nodes') or []
    managers = [Node('manager', n.get('name'), n.get('host_ip') or n.get('public_ip'),
                     private_ip=n.get('host_ip'), public_ip=n.get('public_ip'),
                     role='leader' if n.get('master') else 'standby',
                     status='online' if n.get('online') else 'offline')
                for n in nodes]
    if not managers:
        managers = [Node('manager', manager.host, manager.host, role='leader')]
    return Layout(HA4, managers, detected_by=['GET /cluster, /cluster/nodes'])


def _from_profile(section) -> Layout:
    """Only the profile knows (e.g. a manager that refuses the node lists)."""
    managers = [Node('manager', e.get('hostname') or e.get('host_ip'), e.get('host_ip'))
                for e in section.get('manager') or []]
    brokers = [Node('broker', e.get('hostname'), e.get('host_ip'))
               for e in section.get('broker') or []]
    dbs = [Node('db', e.get('hostname'), e.get('host_ip')) for e in section.get('db') or []]
    kind = CLUSTER if len(managers) > 1 or len(brokers) > 1 or len(dbs) > 1 else ALL_IN_ONE
    return Layout(kind, managers, brokers, dbs, detected_by=[])


# -- one node at a time ----------------------------------------------------------------------

def manager_at(manager, address: str):
    """The same ``Manager`` (credentials, version, REST port and protocol, profile) at
    another address: a node of its cluster; no new discovery."""
    return manager._copy(info=dataclasses.replace(manager.info, host=address))


def node_manager(manager, node: Node):
    """``manager`` at ``node``'s address (``manager_at``)."""
    return manager_at(manager, node.address)


def node_answers(manager, node: Node) -> bool:
    """Does ``node``'s REST service answer (unauthenticated)?"""
    return node_manager(manager, node).rest_answers()[0]


def node_ssh_profile(profile, address: str, name: Optional[str] = None) -> dict:
    """The settings ``host.ssh.Host.from_profile`` needs to reach the manager node at
    ``address``: its cluster entry's SSH settings, else the profile's own (behaviour §12.9)."""
    entries = profile_section(profile).get('manager') or []
    entry = next((e for e in entries if address in (e.get('host_ip'), e.get('hostname'))), {})
    settings = {'name': '{0} ({1})'.format(name or entry.get('hostname') or address, address),
                'manager_ip': address}
    settings.update(_profile_ssh(entry, profile))
    return settings
