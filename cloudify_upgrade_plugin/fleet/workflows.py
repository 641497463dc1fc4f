"""The fleet workflows: one upgrade command on many managed upgrades, a few at a time.

``upgrade_plan``, ``upgrade_prepare``, ``upgrade_cutover`` (``rehearse``) and
``upgrade_verify_heals`` run the ``cloudify.interfaces.upgrade`` operation of the command
on every node instance of ``cloudify.nodes.upgrade.ManagedUpgrade`` (or those named by
``node_ids`` / ``node_instance_ids``), at most ``concurrency`` at once:

- one subgraph per node instance (event, operation, event), built in graph mode like
  cloudify-common's own ``heal`` and ``check_status`` graphs;
- the subgraphs are dealt round-robin into ``concurrency`` lanes (sorted by node id, then
  instance id); each lane is a chain, so a manager starts when the previous one of its
  lane has ended, whatever the outcome;
- a subgraph's failure is contained by its ``on_failure`` handler (``contain_failure``:
  drop its pending tasks, keep the error text, ``HandlerResult.ignore()``), so the other
  lanes and the rest of the failed lane go on;
- at the end the node instances are refreshed and each one's record for the command
  (``fleet.runtime``) decides: the workflow logs who is done, who was skipped (``prepare``
  and ``cutover`` already done) and who failed, and ends with ``WorkflowFailed`` naming
  every failed node instance with its error.

A rerun therefore re-runs only what is not done.  The graph is built through
``make_or_get_graph`` so a resumed execution on a manager continues the stored graph.
"""
from __future__ import annotations

from cloudify.decorators import workflow
from cloudify.exceptions import WorkflowFailed
from cloudify.workflows import tasks as workflow_tasks
from cloudify.workflows.tasks_graph import make_or_get_graph

from cloudify_upgrade_plugin.engine.redact import install_log_filter, redact_text
from cloudify_upgrade_plugin.fleet import runtime
from cloudify_upgrade_plugin.fleet.operations import SKIP_WHEN_DONE

NODE_TYPE = 'cloudify.nodes.upgrade.ManagedUpgrade'
INTERFACE = 'cloudify.interfaces.upgrade'


def contain_failure(subgraph):
    """on_failure of a node instance's subgraph: the others go on; remember the error."""
    failed = subgraph.failed_task
    subgraph.info['error'] = _task_error(failed) if failed is not None else None
    for task in list(subgraph.tasks.values()):
        if task.get_state() == workflow_tasks.TASK_PENDING:
            subgraph.remove_task(task)
    return workflow_tasks.HandlerResult.ignore()


def _task_error(task) -> str | None:
    """The failed task's error in one line (local tasks keep the exception, remote ones a
    serialized error)."""
    error = None
    try:
        result = task.async_result.result
    except RuntimeError:        # no result set
        result = None
    if isinstance(result, BaseException):
        error = '{0}: {1}'.format(type(result).__name__, result) if str(result) \
            else type(result).__name__
    elif isinstance(task.error, dict):
        error = task.error.get('message')
    return redact_text(error.strip().splitlines()[0]) if error and error.strip() else None


def _targets(ctx, node_ids, node_instance_ids):
    """The ManagedUpgrade node instances named by the parameters (all when none)."""
    node_ids = _ids(node_ids)
    node_instance_ids = _ids(node_instance_ids)
    nodes = [node for node in ctx.nodes if NODE_TYPE in node.type_hierarchy]
    known_nodes = {node.id for node in nodes}
    instances = [instance for node in nodes for instance in node.instances]
    known_instances = {instance.id for instance in instances}
    unknown = sorted(set(node_ids) - known_nodes) + \
        sorted(set(node_instance_ids) - known_instances)
    if unknown:
        raise WorkflowFailed(
            'Not a {0} node or node instance of this deployment: {1}. Nothing was run.'
            .format(NODE_TYPE, ', '.join(unknown)))
    chosen = [instance for instance in instances
              if (not node_ids or instance.node_id in node_ids)
              and (not node_instance_ids or instance.id in node_instance_ids)]
    if not chosen:
        raise WorkflowFailed('No {0} node instance to run on{1}. Nothing was run.'.format(
            NODE_TYPE, ' (node_ids and node_instance_ids select none together)'
            if node_ids and node_instance_ids else ''))
    return sorted(chosen, key=lambda instance: (instance.node_id, instance.id))


def _ids(value) -> list:
    """A list parameter; one id given as a string counts as a list of one."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _concurrency(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkflowFailed('concurrency must be an integer of at least 1, not {0!r}. '
                             'Nothing was run.'.format(value))
    return value


@make_or_get_graph
def _graph(ctx, command, instances, concurrency, operation_kwargs):
    graph = ctx.graph_mode()
    subgraphs = []
    for instance in instances:
        subgraph = graph.subgraph('upgrade_{0}_{1}'.format(command, instance.id))
        subgraph.info.update(instance_id=instance.id, command=command)
        sequence = subgraph.sequence()
        sequence.add(
            instance.send_event('upgrade {0}: starting'.format(command)),
            instance.execute_operation('{0}.{1}'.format(INTERFACE, command),
                                       kwargs=operation_kwargs, allow_kwargs_override=True),
            instance.send_event('upgrade {0}: finished'.format(command)))
        subgraph.on_failure = contain_failure
        subgraphs.append(subgraph)
    for lane in range(concurrency):
        chain = subgraphs[lane::concurrency]
        for before, after in zip(chain, chain[1:]):
            graph.add_dependency(after, before)
    return graph


def run_fleet(ctx, command, concurrency=1, node_ids=None, node_instance_ids=None,
              operation_kwargs=None):
    """Run ``command`` on the chosen managed upgrades; raise ``WorkflowFailed`` naming
    every node instance that failed."""
    install_log_filter(ctx.logger)
    concurrency = _concurrency(concurrency)
    targets = _targets(ctx, node_ids, node_instance_ids)
    skipped = [instance for instance in targets if command in SKIP_WHEN_DONE
               and runtime.is_done(instance.runtime_properties, command)]
    to_run = [instance for instance in targets if instance not in skipped]
    for instance in skipped:
        ctx.logger.info('upgrade %s: %s already done; skipped.', command, instance.id)
    ctx.logger.info('upgrade %s on %d managed upgrade(s), %d at a time%s.', command,
                    len(to_run), min(concurrency, len(to_run) or 1),
                    ', {0} already done'.format(len(skipped)) if skipped else '')
    errors, fresh = {}, {}
    if to_run:
        graph = _graph(ctx, command, to_run, concurrency, operation_kwargs or {},
                       name='upgrade_{0}'.format(command))
        # the graph forgets its tasks as they end: keep the subgraphs for their errors
        subgraphs = [task for task in graph.tasks if task.is_subgraph]
        graph.execute()
        errors = {task.info.get('instance_id'): task.info.get('error')
                  for task in subgraphs if task.info.get('error')}
        fresh = _runtime_properties(ctx)
    _conclude(ctx, command, to_run, skipped, errors, fresh)


def _runtime_properties(ctx) -> dict:
    """{node instance id: runtime properties} as stored now.  Only the instances are read
    (``ctx.refresh_node_instances`` reads and copies every node too: locally the whole
    deployment, a fixed cost at the end of every workflow)."""
    return {item['id'] if isinstance(item, dict) else item.id:
            (item['runtime_properties'] if isinstance(item, dict)
             else item.runtime_properties) or {}
            for item in ctx.internal.handler.get_node_instances()}


def _conclude(ctx, command, ran, skipped, errors, fresh):
    done, failed = [], []
    for instance in ran:
        record = runtime.record(fresh.get(instance.id) or {}, command)
        ok = record.get('execution_id') == ctx.execution_id and \
            record.get('status') in runtime.OK_STATUSES
        if ok:
            done.append('{0} ({1})'.format(instance.id, record['status']))
            continue
        error = record.get('error') if record.get('execution_id') == ctx.execution_id \
            else None
        if error:
            reason = '[{0}] {1}'.format(error.get('id'), error.get('message'))
        else:
            reason = errors.get(instance.id) or 'no outcome was recorded (see the ' \
                                                'operation\'s events)'
        failed.append('{0} (node {1}): {2}'.format(instance.id, instance.node_id,
                                                   reason.rstrip('.')))
    ctx.logger.info('upgrade %s: %d done, %d skipped (already done), %d failed.', command,
                    len(done), len(skipped), len(failed))
    if failed:
        raise WorkflowFailed(redact_text(
            'upgrade_{0} failed on {1} of {2} managed upgrade(s): {3}. Fix the cause and '
            'run upgrade_{0} again: what is done is not redone.'.format(
                command, len(failed), len(ran) + len(skipped), '; '.join(failed))))


@workflow(resumable=True)
def upgrade_plan(ctx, concurrency=5, node_ids=None, node_instance_ids=None, **_):
    """Checks and steps of every managed upgrade; read only."""
    run_fleet(ctx, 'plan', concurrency, node_ids, node_instance_ids)


@workflow(resumable=True)
def upgrade_prepare(ctx, concurrency=2, node_ids=None, node_instance_ids=None, **_):
    """Snapshot, download, host backups and inventory of every old manager."""
    run_fleet(ctx, 'prepare', concurrency, node_ids, node_instance_ids)


@workflow(resumable=True)
def upgrade_cutover(ctx, concurrency=1, rehearse=False, node_ids=None,
                    node_instance_ids=None, **_):
    """Restore (new-host or in-place) and move the agents; ``rehearse`` stops every
    upgrade before its point of no return."""
    run_fleet(ctx, 'cutover', concurrency, node_ids, node_instance_ids,
              operation_kwargs={'rehearse': bool(rehearse)})


@workflow(resumable=True)
def upgrade_verify_heals(ctx, concurrency=5, node_ids=None, node_instance_ids=None, **_):
    """Heals the old managers may have duplicated since their cut-over."""
    run_fleet(ctx, 'verify_heals', concurrency, node_ids, node_instance_ids)
