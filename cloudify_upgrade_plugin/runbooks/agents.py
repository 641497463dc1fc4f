"""Moving the agents: one ``install_new_agents`` execution per eligible deployment.

Through the REST API, not the 7.0.5 ``cfy agents install`` (facts §5.2: its ``_offset``-only
paging never ends on 4.2-4.5.x targets).  Eligible: a deployment whose Compute host
instances (``id == host_id``) are all ``started`` (the workflow refuses others, facts §5.3);
the others are reported, never silently skipped.  Bounded concurrency; each deployment's
execution id and result are persisted (``agents/state.json``, atomically, after every
change), so a re-run waits for executions already started instead of starting a second
one, and retries only the failed deployments.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin.engine.checks import BLOCK, FAIL, PASS, Check
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.manager.events import EventPrinter
from cloudify_upgrade_plugin.runbooks import common

STATE_FILE = 'agents/state.json'
SUCCEEDED, FAILED, STARTED = 'succeeded', 'failed', 'started'
# Host states with no agent running: never installed, or uninstalled.
NO_AGENT_STATES = ('uninitialized', 'deleted')


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


def plan(manager) -> Tuple[List[Tuple[Optional[str], str]], List[dict]]:
    """(eligible [(tenant, deployment)], not_eligible [{tenant, deployment_id, reason}])."""
    eligible, not_eligible = [], []
    for tenant in manager.list_tenants() or [None]:
        hosts = {}
        for instance in manager.list_all(
                'node-instances', tenant=tenant,
                include=['id', 'host_id', 'deployment_id', 'state']):
            if instance.get('host_id') and instance.get('host_id') == instance.get('id'):
                hosts.setdefault(instance['deployment_id'], []).append(instance)
        for deployment in manager.list_all('deployments', tenant=tenant, include=['id']):
            instances = hosts.get(deployment['id'])
            if not instances:
                continue  # no host, no agent
            if all(i.get('state') in NO_AGENT_STATES for i in instances):
                continue  # never installed (or torn down): there is no agent to move
            bad = sorted(i['id'] for i in instances if i.get('state') != 'started')
            if bad:
                not_eligible.append({'tenant': tenant, 'deployment_id': deployment['id'],
                                     'reason': 'hosts not started: {0}'.format(
                                         ', '.join(bad))})
            else:
                eligible.append((tenant, deployment['id']))
    return eligible, not_eligible


def _existing_execution(manager, tenant, deployment_id, since):
    """An install_new_agents execution on this deployment created at/after `since`."""
    for execution in manager.for_tenant(tenant).list_all(
            'executions', tenant=tenant, deployment_id=deployment_id,
            workflow_id='install_new_agents', sort='-created_at',
            include=['id', 'status', 'created_at'], include_system_workflows=False,
            page_size=10):
        if since and (execution.get('created_at') or '') < since:
            return None
        return execution
    return None


def _install_one(manager, state, tenant, deployment_id, timeout, since):
    logger = get_logger()
    scoped = manager.for_tenant(tenant) if tenant else manager
    entry = state.get(tenant, deployment_id)
    execution_id = entry.get('execution_id') if entry.get('status') == STARTED else None
    if execution_id is None:
        existing = _existing_execution(manager, tenant, deployment_id, since)
        if existing is not None and existing.get('status') not in ('failed', 'cancelled'):
            execution_id = existing['id']
            state.update(tenant, deployment_id, status=STARTED, execution_id=execution_id)
            logger.info('Agents of %s/%s: adopting execution %s started earlier.',
                        tenant, deployment_id, execution_id)
    if execution_id is None:
        execution = scoped.start_execution(deployment_id, 'install_new_agents')
        execution_id = execution['id']
        state.update(tenant, deployment_id, status=STARTED, execution_id=execution_id,
                     attempts=entry.get('attempts', 0) + 1)
        logger.info('Agents of %s/%s: execution %s started.', tenant, deployment_id,
                    execution_id)
    try:
        waits.wait_for_execution(scoped, execution_id, timeout=timeout,
                                 on_event=EventPrinter(execution_id))
    except UpgradeError as error:
        state.update(tenant, deployment_id, status=FAILED, execution_id=execution_id,
                     error=error.message[:500])
        logger.error('Agents of %s/%s: %s', tenant, deployment_id, error.message)
        return False
    state.update(tenant, deployment_id, status=SUCCEEDED, execution_id=execution_id,
                 error=None)
    return True


def install_all(ctx) -> dict:
    """Install new agents everywhere; raise ``agents-failed`` if any deployment failed."""
    manager = ctx.target_manager
    state = AgentState(ctx.workspace)
    eligible, not_eligible = plan(manager)
    since = ctx.workspace.meta.get('cutover_at')
    todo = [(t, d) for t, d in eligible if state.get(t, d).get('status') != SUCCEEDED]
    get_logger().info('Agents: %d deployment(s) eligible, %d already moved, %d to do, %d '
                      'not eligible.', len(eligible), len(eligible) - len(todo), len(todo),
                      len(not_eligible))
    timeout = ctx.options.agent_timeout
    workers = max(1, min(ctx.options.agents_concurrency, len(todo) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda td: _install_one(manager, state, td[0], td[1], timeout, since),
                      todo))
    failed = [dict(state.get(t, d)) for t, d in eligible
              if state.get(t, d).get('status') != SUCCEEDED]
    summary = {'deployments': len(eligible),
               'succeeded': len(eligible) - len(failed),
               'failed': [{'tenant': f.get('tenant'), 'deployment_id': f.get('deployment_id'),
                           'execution_id': f.get('execution_id'), 'error': f.get('error')}
                          for f in failed],
               'not_eligible': not_eligible}
    ctx.workspace.update_meta(agents=summary)
    if failed:
        raise UpgradeError(
            'Agents could not be installed on {0} of {1} deployment(s): {2}'.format(
                len(failed), len(eligible), ', '.join(
                    '{0}/{1}'.format(f['tenant'], f['deployment_id']) for f in failed)),
            error_id='agents-failed',
            hints=['Look at each execution\'s events on the new manager (`cfy events list '
                   '<execution id> -t <tenant>`), fix the cause (the old manager and its '
                   'RabbitMQ must stay up), then run the same command again: only the '
                   'failed deployments are retried.'])
    check = Check('agents-not-eligible', BLOCK, FAIL if not_eligible else PASS,
                  '{0} deployment(s) were not moved because their hosts are not started: '
                  '{1}'.format(len(not_eligible), '; '.join(
                      '{0}/{1} ({2})'.format(n['tenant'], n['deployment_id'], n['reason'])
                      for n in not_eligible)) if not_eligible else
                  'Every deployment with agents was moved.')
    common.evaluate_late([check], ctx, 'install-agents', ['agents-not-eligible'])
    return summary
