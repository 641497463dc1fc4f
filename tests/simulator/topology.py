"""The node layout a simulated manager reports: GET managers / brokers / db-nodes (5.0.5+),
GET cluster-status (5.0.5+), GET /cluster and /cluster/nodes (4.x HA) and the 4.x refusal to
restore on a multi-node cluster.

An all-in-one manager reports itself as its only manager, broker and DB node
(:func:`all_in_one`); a simulated cluster (cluster.py) hands its own :class:`Topology` to
every node.  This module only renders; version rules come from rules.py (behaviour §12.9,
§3.5; MGR@<tag> storage/management_models.py, cluster_status_manager.py).
"""
from dataclasses import dataclass, field
from typing import Any, Optional

from tests.simulator import data as datamod

# the columns of Manager / RabbitMQBroker / DBNodes that every 5.0.5+ version marshals
# (MGR@5.0.5..7.0.4 storage/management_models.py; extra columns per version in
# rules.Rules.cluster_node_extra_fields)
MANAGER_FIELDS = ('id', 'hostname', 'private_ip', 'public_ip', 'version', 'edition',
                  'distribution', 'distro_release', 'fs_sync_node_id', 'networks',
                  'last_seen', 'status_report_frequency', 'ca_cert_content')
BROKER_FIELDS = ('name', 'host', 'management_host', 'port', 'username', 'password',
                 'params', 'networks', 'is_external', 'ca_cert_content')
DB_FIELDS = ('name', 'host', 'is_external')
BROKER_PORT = 5671

# display names of the services in GET cluster-status (MGR@7.0.4 cluster_status_manager.py
# SERVICE_DESCRIPTIONS), for the simulator's units
SERVICE_NAMES = {'cloudify-restservice': ('Manager REST', 'REST API service'),
                 'nginx': ('Webserver', 'nginx - high performance web server'),
                 'cloudify-mgmtworker': ('Management Worker', 'Management Worker service'),
                 'cloudify-rabbitmq': ('RabbitMQ Broker', 'RabbitMQ Broker service'),
                 'cloudify-riemann': ('Riemann', 'Riemann service'),
                 'postgresql': ('PostgreSQL 14 database server',
                                'PostgreSQL 14 database server'),
                 'postgresql-9.5': ('PostgreSQL', 'PostgreSQL database server')}
BROKER_UNIT = 'cloudify-rabbitmq'


@dataclass
class NodeEntry:
    """One node of a layout.  `kind`: 'manager' | 'broker' | 'db'; `node`: the
    SimulatedManager of a manager entry, or the manager a broker/DB runs beside (a
    colocated or all-in-one layout), else None; `healthy`: tests may mark a broker / DB
    entry as failing (GET cluster-status)."""
    kind: str
    name: str
    ip: str
    node: Any = None
    unit: Optional[str] = None
    healthy: bool = True
    extra: dict = field(default_factory=dict)

    def is_healthy(self):
        node = self.node
        if node is None:
            return self.healthy
        if node.stopped or node.torn_down or not node.listener.listening:
            return False
        if self.kind == 'manager':
            return all(node.unit_active(u) for u in node.units)
        return self.healthy and node.unit_active(self.unit) if self.unit else self.healthy


@dataclass
class Topology:
    """The layout: manager, broker and DB entries; `kind` None (all-in-one), 'nodes' (5.0.5+
    premium cluster, behaviour §12.9) or 'ha4' (4.x active/passive HA, behaviour §3.5); `leader` the
    index of the active manager of a 4.x HA cluster."""
    managers: list
    brokers: list
    db_nodes: list
    kind: Optional[str] = None
    leader: int = 0

    @property
    def multi_node(self):
        return len(self.managers) > 1


def all_in_one(mgr):
    """A single manager: itself as manager, broker and DB node."""
    units = mgr.rules.units
    db_unit = [u for u in units if u.startswith('postgresql') or u == 'elasticsearch']
    return Topology(
        managers=[NodeEntry('manager', mgr.hostname, mgr.rest_host, node=mgr)],
        brokers=[NodeEntry('broker', mgr.hostname, mgr.rest_host, node=mgr, unit=BROKER_UNIT)],
        db_nodes=[NodeEntry('db', mgr.hostname, mgr.rest_host, node=mgr,
                            unit=db_unit[0] if db_unit else None)])


def _fields(base, rules):
    return base + tuple(rules.cluster_node_extra_fields)


def _extras(entry, rules):
    out = {}
    for name in rules.cluster_node_extra_fields:
        if name == 'node_id':
            # 5.0.5 status-reporter node ids (MGR@5.0.5 management_models.py) [I: value]
            out[name] = entry.extra.get('node_id') or '{0}-{1}'.format(entry.kind, entry.name)
        else:
            out[name] = None          # monitoring_username/password (5.1-6.3) [U: values]
    return out


def manager_items(topology, rules):
    """GET managers items and fields (MGR@<tag> storage/management_models.py; behaviour §12.9)."""
    fields = _fields(MANAGER_FIELDS, rules)
    items = []
    for index, entry in enumerate(topology.managers):
        node = entry.node
        item = {'id': index + 1, 'hostname': entry.name, 'private_ip': entry.ip,
                'public_ip': entry.ip, 'version': rules.reported_version,
                'edition': rules.edition, 'distribution': rules.distribution[0],
                'distro_release': rules.distribution[1],
                # a syncthing device id in clusters (MI configure_cluster_script) [I: value]
                'fs_sync_node_id': entry.extra.get('fs_sync_node_id', ''),
                'networks': dict(node.networks) if node is not None else {'default': entry.ip},
                'last_seen': datamod.ts(), 'status_report_frequency': None,
                'ca_cert_content': node.ca_cert() if node is not None else None}
        item.update(_extras(entry, rules))
        items.append(item)
    return items, fields


def broker_items(topology, rules, ca_cert=None):
    """GET brokers items and fields (MGR@<tag> storage/management_models.py, MGR@7.0.4
    resources_v3_1/manager.py: credentials are shown to users with the
    broker_credentials permission, i.e. admins here)."""
    fields = _fields(BROKER_FIELDS, rules)
    items = []
    for entry in topology.brokers:
        item = {'name': entry.name, 'host': entry.ip, 'management_host': entry.ip,
                'port': BROKER_PORT, 'username': 'cloudify',
                'password': 'sim-rabbitmq-password', 'params': None,
                'networks': {'default': entry.ip}, 'is_external': False,
                'ca_cert_content': ca_cert}
        item.update(_extras(entry, rules))
        items.append(item)
    return items, fields


def db_items(topology, rules):
    """GET db-nodes items and fields (MGR@<tag> storage/management_models.py)."""
    fields = _fields(DB_FIELDS, rules)
    items = []
    for entry in topology.db_nodes:
        item = {'name': entry.name, 'host': entry.ip, 'is_external': False}
        item.update(_extras(entry, rules))
        items.append(item)
    return items, fields


# -- GET cluster-status (MGR@5.0.5..7.0.4 resources_v3_1/cluster_status.py,
#    cluster_status_manager.py; cloudify-common cloudify/cluster_status.py) -------------------
HEALTHY, DEGRADED, FAIL = 'OK', 'Degraded', 'Fail'


def _node_services(entry, rules):
    node = entry.node
    if node is None:
        return {}
    if entry.kind == 'manager':
        units = [u for u in node.units if u != BROKER_UNIT and not u.startswith('postgres')]
    else:
        units = [entry.unit] if entry.unit else []
    out = {}
    reachable = not node.stopped and node.listener.listening
    for unit in units:
        if not reachable:
            continue                    # nobody reports for a node that is down [I]
        name, description = SERVICE_NAMES.get(unit, (unit, unit))
        active = node.unit_active(unit)
        out[name] = {'status': 'Active' if active else 'Inactive', 'extra_info': {
            rules.process_manager: {
                'instances': [{'Description': description,
                               'state': 'running' if active else 'stopped', 'Id': unit}],
                'display_name': name, 'unit_id': unit}}}
    return out


def _service_state(entries, rules, detailed, quorum):
    nodes = {}
    for entry in entries:
        healthy = entry.is_healthy()
        node = {'private_ip': entry.ip, 'public_ip': entry.ip,
                'version': rules.reported_version,
                'status': HEALTHY if healthy else FAIL}
        if detailed:
            node['services'] = _node_services(entry, rules)
            if rules.cluster_status_metrics:
                node['metrics'] = [{'last_check': datamod.ts(), 'healthy': healthy,
                                    'metric_type': 'up', 'metric_name': 'http endpoints'}]
        if rules.cluster_status_node_failures:
            node['failures'] = [] if healthy else ['Node {0} not healthy.'.format(entry.name)]
        nodes[entry.name] = node
    healthy_count = sum(1 for n in nodes.values() if n['status'] == HEALTHY)
    if healthy_count == len(nodes):
        status = HEALTHY
    elif healthy_count >= quorum:
        status = DEGRADED
    else:
        status = FAIL
    return {'is_external': False, 'status': status, 'nodes': nodes}


def cluster_status(topology, rules, summary=False):
    """-> (http status, body).  Managers need one healthy node, brokers and DB nodes a
    majority (quorum); the overall status is the worst of the three (MGR@7.0.4
    `_get_cluster_service_status`, `_get_overall_state`).  `?summary=true` answers
    {status, services: {}}, with HTTP 500 when Fail from 5.1.0."""
    services = {
        'broker': _service_state(topology.brokers, rules, not summary,
                                 len(topology.brokers) // 2 + 1),
        'db': _service_state(topology.db_nodes, rules, not summary,
                             len(topology.db_nodes) // 2 + 1),
        'manager': _service_state(topology.managers, rules, not summary, 1),
    }
    states = [s['status'] for s in services.values()]
    overall = FAIL if FAIL in states else DEGRADED if DEGRADED in states else HEALTHY
    if summary:
        code = 500 if overall == FAIL and rules.cluster_status_summary_500 else 200
        return code, {'status': overall, 'services': {}}
    return 200, {'status': overall, 'services': services}


# -- 4.x HA (behaviour §3.5; MGR@4.4 resources_v3/cluster.py; COMMON@4.4 cluster.py) ------------
def ha_state(topology):
    """GET /cluster: ClusterState {initialized, logs, error} (plus `consul`, README
    assumption)."""
    initialized = topology.kind == 'ha4'
    return {'initialized': initialized, 'consul': {}, 'error': None, 'logs': []}


def ha_nodes(topology):
    """GET /cluster/nodes items (ClusterNode: name, host_ip, public_ip, master, online,
    initialized, credentials, required; CLI@4.4 `cfy cluster nodes list` also shows the
    `checks` consul/services/database/heartbeat) or None when no cluster was started (MGR@4.4
    ClusterNodes.get: 404)."""
    if topology.kind != 'ha4':
        return None
    items = []
    for index, entry in enumerate(topology.managers):
        online = entry.is_healthy()
        items.append({'name': entry.name, 'host_ip': entry.ip, 'public_ip': entry.ip,
                      'master': index == topology.leader, 'online': online,
                      'initialized': True, 'credentials': None, 'required': None,
                      'checks': {'consul': online, 'services': online, 'database': online,
                                 'heartbeat': online}})
    return items


def multi_node_refusal(topology, action):
    """MGR@4.1..4.6 snapshots.py `_verify_no_multi_node_cluster`: the message refusing
    `action` on a multi-node HA cluster, or None."""
    if topology.kind == 'ha4' and topology.multi_node:
        return ('Action `{0}` is not available on a cluster with more than one node'
                .format(action))
    return None
