"""Moving the agents: one ``install_new_agents`` execution per deployment, then a check.

Through the REST API, not the 7.0.5 ``cfy agents install`` (behaviour §5.2: its ``_offset``-only
paging never ends on 4.2-4.5.x targets).  ``plan`` decides which hosts (node instances with
``id == host_id``) move:

- only those whose ``install_method`` the workflow moves (behaviour §12.6: ``init_script``,
  ``plugin`` and ``remote`` from 4.5; a ``provided`` agent is the operator's, a ``none`` host
  has none), read from ``GET /agents`` where the target has it (4.5+); the others are
  reported in ``not_moved`` with the reason, never counted as moved;
- not the hosts named by ``--skip-node-instances`` (known to be dead): reported in
  ``not_moved``; the rest of their deployment moves, the workflow getting the remaining
  hosts as ``node_instance_ids``;
- a deployment whose hosts never had an agent (all ``uninitialized`` / ``deleted``) is left
  out; one whose hosts to move are not all ``started`` is not eligible (the workflow refuses
  it, behaviour §5.3) and fails the late check ``agents-not-eligible`` unless waived.

``--stop-old-agents`` passes ``stop_old_agent`` to each deployment whose own
``install_new_agents`` declares it (the types its blueprint imported; an undeclared
parameter is refused, behaviour §5.3); the others are reported in ``old_agents_kept``.

Bounded concurrency; each deployment's execution and result are persisted
(``agents/state.json``, atomically, after every change: started -> failed | installed ->
succeeded | unverified), so a re-run waits for executions already started instead of
starting a second one, and checks what a killed run installed.  Where the target lists its
agents, the newest row of every moved host must then be at the target's version and
``started`` (a move leaves the old row ``upgraded`` or ``stopped`` and adds a new one;
``state`` is listed from 6.4): any other host is listed and the step fails
(``agents-not-verified``); a re-run checks those hosts again and moves only the ones still
wrong.
"""
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import BLOCK, FAIL, PASS, Check
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.manager.events import EventPrinter
from cloudify_upgrade_plugin.runbooks import common, inventory

STATE_FILE = 'agents/state.json'
# a deployment's state: started -> failed | installed (the execution ended) -> succeeded
# (checked, or nothing to check with) | unverified (some hosts are not moved)
SUCCEEDED, FAILED, STARTED = 'succeeded', 'failed', 'started'
INSTALLED, UNVERIFIED = 'installed', 'unverified'
WORKFLOW = 'install_new_agents'
# Host states with no agent running: never installed, or uninstalled.
NO_AGENT_STATES = ('uninitialized', 'deleted')
NO_AGENT = 'none'
SKIPPED_REASON = 'skipped: named by --skip-node-instances'
METHOD_REASONS = {
    'provided': 'install_method provided: the agent was installed by hand and is not moved '
                'by install_new_agents; move it by hand',
    NO_AGENT: 'no agent (install_method none, or no agent listed for this host)',
}


@dataclass
class Move:
    """One deployment's move: the hosts that move and the workflow's parameters."""

    tenant: Optional[str]
    deployment_id: str
    hosts: List[str]
    parameters: Dict[str, object] = field(default_factory=dict)


@dataclass
class AgentPlan:
    """What ``plan`` found: the moves, and every host or deployment left out and why."""

    moves: List[Move] = field(default_factory=list)
    not_eligible: List[dict] = field(default_factory=list)
    not_moved: List[dict] = field(default_factory=list)
    old_agents_kept: List[dict] = field(default_factory=list)
    verifiable: bool = False          # the target lists its agents (GET /agents)

    @property
    def eligible(self) -> List[tuple]:
        return [(move.tenant, move.deployment_id) for move in self.moves]


class AgentState:
    """Per-deployment install state, persisted after every change."""

    def __init__(self, workspace):
        self.workspace = workspace
        self.lock = threading.Lock()
        self.data = workspace.read_json(STATE_FILE) or {}

    @staticmethod
    def key(tenant, deployment_id) -> str:
        return '{0}/{1}'.format(tenant or '-', deployment_id)

    def get(self, tenant, deployment_id) -> dict:
        return dict(self.data.get(self.key(tenant, deployment_id)) or {})

    def update(self, tenant, deployment_id, **fields) -> None:
        with self.lock:
            entry = self.data.setdefault(self.key(tenant, deployment_id), {
                'tenant': tenant, 'deployment_id': deployment_id, 'attempts': 0})
            entry.update(fields)
            self.workspace.makedirs('agents')
            self.workspace.write_json(STATE_FILE, self.data)


# -- which hosts move -------------------------------------------------------------------------

def _hosts_by_deployment(instances) -> Dict[str, List[dict]]:
    hosts = {}
    for instance in instances:
        if instance.get('host_id') and instance.get('host_id') == instance.get('id'):
            hosts.setdefault(instance['deployment_id'], []).append(instance)
    return hosts


def agent_rows(manager, tenants) -> Dict[str, Dict[str, List[dict]]]:
    """The target's agent rows by tenant (``inventory.DEFAULT_TENANT`` for None) and host
    node instance, oldest first: one paged listing over every tenant where the rows name
    their tenant (5.0.5+; the inventory's ``Lister``), else one per tenant."""
    fields = versions.agent_list_fields(manager.version)
    if versions.agent_rows_name_their_tenant(manager.version):
        grouped = inventory.Lister(manager, list(tenants)).by_tenant('agents', fields) or {}
    else:       # no tenant_name to group by: tenant by tenant
        grouped = {tenant or inventory.DEFAULT_TENANT: list(
            manager.list_all('agents', tenant=tenant, include=fields)) for tenant in tenants}
    by_tenant = {}
    for tenant, found in grouped.items():
        rows = by_tenant.setdefault(tenant, {})
        for row in found:
            host = row.get('node_instance_id') or row.get('host_id') or row.get('id')
            rows.setdefault(host, []).append(row)
        for listed in rows.values():
            # a stable sort: without created_at (before 6.4) the listing order stands
            listed.sort(key=lambda row: row.get('created_at') or '')
    return by_tenant


def _declares(deployment, parameter) -> bool:
    for workflow in deployment.get('workflows') or []:
        if workflow.get('name') == WORKFLOW:
            return parameter in (workflow.get('parameters') or {})
    return False


def plan(manager, skip=(), stop_old_agents=False) -> AgentPlan:
    """The hosts that move, per deployment, and everything left out (see the module doc).
    A ``skip`` id that is no host of the target is bad input (``unknown-node-instances``).

    One paged node-instances listing over every tenant (4.2+; per tenant before: the
    inventory's ``Lister``), the same for the agent rows when there are hosts; the
    deployments (their declared workflow parameters) only for ``--stop-old-agents``."""
    skip = set(skip or ())
    result = AgentPlan(verifiable=versions.has_agents_list(manager.version))
    moved_methods = versions.moved_install_methods(manager.version)
    every_host = set()
    tenants = manager.list_tenants() or [None]
    grouped = inventory.Lister(manager, tenants).by_tenant(
        'node-instances', ['id', 'host_id', 'deployment_id', 'state']) or {}
    every_row = agent_rows(manager, tenants) if result.verifiable and any(
        grouped.values()) else {}
    for tenant in tenants:
        hosts = _hosts_by_deployment(grouped.get(tenant or inventory.DEFAULT_TENANT) or [])
        every_host.update(i['id'] for found in hosts.values() for i in found)
        rows = every_row.get(tenant or inventory.DEFAULT_TENANT, {}) \
            if result.verifiable else None
        deployments = manager.list_all('deployments', tenant=tenant,
                                       include=['id', 'workflows']) \
            if stop_old_agents and hosts else [{'id': d} for d in sorted(hosts)]
        for deployment in deployments:
            instances = hosts.get(deployment['id'])
            if not instances or all(i.get('state') in NO_AGENT_STATES for i in instances):
                continue  # no host, or never installed (or torn down): no agent to move
            moving = []
            for instance in sorted(instances, key=lambda i: i['id']):
                method = None
                if rows is not None:
                    found = rows.get(instance['id'])
                    method = (found[-1].get('install_method') or 'remote') if found \
                        else NO_AGENT
                if instance['id'] in skip:
                    reason = SKIPPED_REASON
                elif method is not None and method not in moved_methods:
                    reason = METHOD_REASONS.get(method, 'install_method {0} is not moved by '
                                                        'install_new_agents'.format(method))
                else:
                    moving.append(instance)
                    continue
                result.not_moved.append({
                    'tenant': tenant, 'deployment_id': deployment['id'],
                    'node_instance_id': instance['id'], 'install_method': method,
                    'reason': reason})
            _add_move(result, tenant, deployment, instances, moving, skip, stop_old_agents)
    unknown = sorted(skip - every_host)
    if unknown:
        raise InputError(
            '--skip-node-instances names {0} that {1} no host node instance of the new '
            'manager.'.format(', '.join(unknown), 'is' if len(unknown) == 1 else 'are'),
            error_id='unknown-node-instances',
            hints=['Give the ids of host node instances (`cfy node-instances list -d DEP`, '
                   'the Compute nodes), comma-separated.'])
    return result


def _add_move(result, tenant, deployment, instances, moving, skip, stop_old_agents):
    if not moving:
        return
    bad = [i['id'] for i in moving if i.get('state') != 'started']
    if bad:
        result.not_eligible.append({'tenant': tenant, 'deployment_id': deployment['id'],
                                    'reason': 'hosts not started: {0}'.format(
                                        ', '.join(bad))})
        return
    move = Move(tenant, deployment['id'], [i['id'] for i in moving])
    if any(i['id'] in skip for i in instances):
        # the workflow takes every host unless told which (behaviour §5.3)
        move.parameters['node_instance_ids'] = list(move.hosts)
    if stop_old_agents:
        if _declares(deployment, 'stop_old_agent'):
            move.parameters['stop_old_agent'] = True
        else:
            result.old_agents_kept.append({
                'tenant': tenant, 'deployment_id': deployment['id'],
                'reason': 'its install_new_agents declares no stop_old_agent (blueprint '
                          'types older than 4.4): the old agents keep running'})
    result.moves.append(move)


# -- the move ------------------------------------------------------------------------------------

def _existing_execution(manager, tenant, deployment_id, since, done=()):
    """An install_new_agents execution on this deployment created at/after `since` that
    is not one of ``done`` (executions already concluded)."""
    for execution in manager.for_tenant(tenant).list_all(
            'executions', tenant=tenant, deployment_id=deployment_id,
            workflow_id=WORKFLOW, sort='-created_at',
            include=['id', 'status', 'created_at'], include_system_workflows=False,
            page_size=10):
        if since and (execution.get('created_at') or '') < since:
            return None
        return None if execution['id'] in done else execution
    return None


def _install_one(manager, state, move, timeout, since):
    logger = get_logger()
    tenant, deployment_id = move.tenant, move.deployment_id
    scoped = manager.for_tenant(tenant) if tenant else manager
    entry = state.get(tenant, deployment_id)
    done = entry.get('concluded') or []
    execution_id = entry.get('execution_id') if entry.get('status') == STARTED else None
    if execution_id is None:
        existing = _existing_execution(manager, tenant, deployment_id, since, done)
        if existing is not None and existing.get('status') not in ('failed', 'cancelled'):
            execution_id = existing['id']
            state.update(tenant, deployment_id, status=STARTED, execution_id=execution_id)
            logger.info('Agents of %s/%s: adopting execution %s started earlier.',
                        tenant, deployment_id, execution_id)
    if execution_id is None:
        execution = scoped.start_execution(deployment_id, WORKFLOW, move.parameters)
        execution_id = execution['id']
        state.update(tenant, deployment_id, status=STARTED, execution_id=execution_id,
                     attempts=entry.get('attempts', 0) + 1, hosts=move.hosts)
        logger.info('Agents of %s/%s: execution %s started (%d host(s)).', tenant,
                    deployment_id, execution_id, len(move.hosts))
    try:
        waits.wait_for_execution(scoped, execution_id, timeout=timeout,
                                 on_event=EventPrinter(execution_id))
    except UpgradeError as error:
        state.update(tenant, deployment_id, status=FAILED, execution_id=execution_id,
                     error=error.message[:500], concluded=done + [execution_id])
        logger.error('Agents of %s/%s: %s', tenant, deployment_id, error.message)
        return False
    state.update(tenant, deployment_id, status=INSTALLED, execution_id=execution_id,
                 error=None, concluded=done + [execution_id])
    return True


# -- the check -------------------------------------------------------------------------------------

def _problem(rows, target) -> Optional[str]:
    """Why the newest agent row of a host is not a moved agent (None when it is)."""
    if not rows:
        return 'no agent is listed for it'
    newest = rows[-1]
    try:
        version = versions.as_version(newest.get('version')).base
    except InputError:
        version = None
    if version != target.base:
        return 'its newest agent is at version {0}, not {1}'.format(
            newest.get('version'), target.base)
    if 'state' in newest and newest.get('state') != 'started':
        return 'its newest agent is {0}, not started'.format(newest.get('state'))
    return None


def verify(manager, moves: List[Move]) -> List[dict]:
    """The hosts of ``moves`` whose newest agent row is not at the target's version and
    ``started``: [{tenant, deployment_id, node_instance_id, version, state, reason}]."""
    problems = []
    tenants = sorted({move.tenant for move in moves}, key=lambda t: t or '')
    every_row = agent_rows(manager, tenants)
    for tenant in tenants:
        rows = every_row.get(tenant or inventory.DEFAULT_TENANT, {})
        for move in (m for m in moves if m.tenant == tenant):
            for host in move.hosts:
                reason = _problem(rows.get(host), manager.version)
                if reason:
                    newest = (rows.get(host) or [{}])[-1]
                    problems.append({'tenant': tenant, 'deployment_id': move.deployment_id,
                                     'node_instance_id': host,
                                     'version': newest.get('version'),
                                     'state': newest.get('state'), 'reason': reason})
    return problems


def _record_check(state, moves, problems):
    """Mark each checked deployment succeeded, or unverified with its wrong hosts."""
    for move in moves:
        wrong = [p['node_instance_id'] for p in problems
                 if (p['tenant'], p['deployment_id']) == (move.tenant, move.deployment_id)]
        if wrong:
            state.update(move.tenant, move.deployment_id, status=UNVERIFIED, unverified=wrong,
                         error='agents not moved: {0}'.format(', '.join(wrong)))
        else:
            state.update(move.tenant, move.deployment_id, status=SUCCEEDED, unverified=[],
                         error=None)


def _retry_of(move, entry) -> Move:
    """A deployment whose check failed before: only its wrong hosts move again."""
    hosts = [h for h in entry.get('unverified') or [] if h in move.hosts] or move.hosts
    return dataclasses.replace(move, hosts=hosts, parameters=dict(
        move.parameters, node_instance_ids=list(hosts)))


def _check(manager, state, agent_plan):
    """Check every deployment whose execution ended (installed) or whose check failed
    before (unverified, its wrong hosts only); without an agents list, installed is done."""
    pending = []
    for move in agent_plan.moves:
        entry = state.get(move.tenant, move.deployment_id)
        if entry.get('status') == INSTALLED:
            pending.append(move)
        elif entry.get('status') == UNVERIFIED:
            pending.append(_retry_of(move, entry))
    if not agent_plan.verifiable:
        for move in pending:
            state.update(move.tenant, move.deployment_id, status=SUCCEEDED)
    elif pending:
        _record_check(state, pending, verify(manager, pending))


def install_all(ctx) -> dict:
    """Move and check the agents; raise ``agents-failed`` / ``agents-not-verified``."""
    manager = ctx.target_manager
    options = ctx.options
    state = AgentState(ctx.workspace)
    agent_plan = plan(manager, options.skip_node_instances, options.stop_old_agents)
    # what a previous run moved (or found wrong): checked again before anything moves
    _check(manager, state, agent_plan)
    todo = []
    for move in agent_plan.moves:
        entry = state.get(move.tenant, move.deployment_id)
        if entry.get('status') == SUCCEEDED:
            continue
        todo.append(_retry_of(move, entry) if entry.get('status') == UNVERIFIED else move)
    get_logger().info(
        'Agents: %d deployment(s) eligible, %d already moved, %d to do, %d not eligible; '
        '%d host(s) not moved (provided, none or skipped).', len(agent_plan.moves),
        len(agent_plan.moves) - len(todo), len(todo), len(agent_plan.not_eligible),
        len(agent_plan.not_moved))
    since = ctx.workspace.meta.get('cutover_at')
    workers = max(1, min(options.agents_concurrency, len(todo) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda move: _install_one(manager, state, move, options.agent_timeout,
                                                since), todo))
    _check(manager, state, agent_plan)
    summary = _summary(agent_plan, state)
    ctx.workspace.update_meta(agents=summary)
    _raise_failures(summary)
    check = Check('agents-not-eligible', BLOCK, FAIL if agent_plan.not_eligible else PASS,
                  '{0} deployment(s) were not moved because their hosts are not started: '
                  '{1}'.format(len(agent_plan.not_eligible), '; '.join(
                      '{0}/{1} ({2})'.format(n['tenant'], n['deployment_id'], n['reason'])
                      for n in agent_plan.not_eligible)) if agent_plan.not_eligible else
                  'Every deployment with agents to move was moved.')
    common.evaluate_late([check], ctx, 'install-agents', ['agents-not-eligible'])
    return summary


def _summary(agent_plan, state) -> dict:
    entries = [(move, state.get(move.tenant, move.deployment_id))
               for move in agent_plan.moves]
    failed = [(m, e) for m, e in entries if e.get('status') not in (SUCCEEDED, UNVERIFIED)]
    unverified = [(m, e) for m, e in entries if e.get('status') == UNVERIFIED]
    succeeded = [m for m, e in entries if e.get('status') == SUCCEEDED]
    return {
        'deployments': len(agent_plan.moves),
        'succeeded': len(succeeded),
        'failed': [{'tenant': m.tenant, 'deployment_id': m.deployment_id,
                    'execution_id': e.get('execution_id'), 'error': e.get('error')}
                   for m, e in failed],
        'unverified': [{'tenant': m.tenant, 'deployment_id': m.deployment_id,
                        'execution_id': e.get('execution_id'),
                        'node_instance_ids': e.get('unverified') or []}
                       for m, e in unverified],
        'hosts_moved': sum(len(m.hosts) for m in succeeded),
        'verified': agent_plan.verifiable,
        'not_eligible': agent_plan.not_eligible,
        'not_moved': agent_plan.not_moved,
        'old_agents_kept': agent_plan.old_agents_kept,
    }


def _raise_failures(summary):
    failed, unverified = summary['failed'], summary['unverified']
    if failed:
        raise UpgradeError(
            'Agents could not be installed on {0} of {1} deployment(s): {2}'.format(
                len(failed), summary['deployments'], ', '.join(
                    '{0}/{1}'.format(f['tenant'], f['deployment_id']) for f in failed)),
            error_id='agents-failed',
            hints=['Look at each execution\'s events on the new manager (`cfy events list '
                   '<execution id> -t <tenant>`), fix the cause (the old manager and its '
                   'RabbitMQ must stay up), then run the same command again: only the '
                   'failed deployments are retried.',
                   'A host that is dead for good: --skip-node-instances ID,... leaves it '
                   'out (reported).'])
    if unverified:
        hosts = ['{0}/{1}/{2}'.format(u['tenant'], u['deployment_id'], host)
                 for u in unverified for host in u['node_instance_ids']]
        raise UpgradeError(
            'The move ended but {0} agent(s) are not at the new manager\'s version and '
            'started: {1}'.format(len(hosts), ', '.join(hosts)),
            error_id='agents-not-verified',
            hints=['`cfy agents list -t <tenant>` on the new manager shows each agent\'s '
                   'version and state; check those hosts (the old agent must be reachable '
                   'through the old manager\'s RabbitMQ), then run the same command again: '
                   'they are checked again and only the ones still wrong are moved again.',
                   'A host that is dead for good: --skip-node-instances ID,... leaves it '
                   'out (reported).'])
