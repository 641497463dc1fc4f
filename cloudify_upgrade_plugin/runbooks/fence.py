"""Fencing a 5.x+ old manager after the cut-over (new-host; issue 15 item 2).

5.x and later have no riemann (behaviour §12.5): what goes on acting on the VMs after the
cut-over is the old manager's execution scheduler (5.2+) and whatever is still started
there.  The step ``fence-old-manager`` runs after the point of no return and before the agents
move:

- on 5.2.x, whose scheduler ignores maintenance mode, it lists the execution schedules of
  every tenant and disables the enabled ones.  Their ids are written to workspace.json
  (``old_manager_fence.schedules``) before the first one is disabled, so that a run killed
  half-way still knows which schedules it disabled; the step's journal entry lists them;
- then it puts the old manager in maintenance mode and waits until it is ``activated`` (a
  6.0+ scheduler skips every schedule while it is);
- ``--no-fence-old-manager`` records the waiver ``fence-old-manager`` instead.

Every call goes with ``X-BYPASS-MAINTENANCE`` where the version lets an admin through (5.2+),
so a re-run after the maintenance mode was activated can still disable schedules.
``undo_commands`` are the exact cfy commands that give the old manager its duties back
(the output and the report show them).
"""
from typing import List

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.runbooks import common

WAIVER_ID = 'fence-old-manager'
WAIVER_OPTION = '--no-fence-old-manager'
META_KEY = 'old_manager_fence'
SCHEDULE_FIELDS = ['id', 'deployment_id', 'workflow_id', 'enabled', 'next_occurrence']


def needed(source) -> bool:
    """Whether new-host fences this old manager with maintenance mode (5.x and later)."""
    return versions.fenced_by_maintenance(source)


def plan_text(source, options, address) -> str:
    """What the fence will do, for the point-of-no-return summary and ``plan``."""
    if getattr(options, 'no_fence_old_manager', False):
        return 'the old manager is NOT fenced ({0}): its schedules and anyone using it ' \
               'may still act on the VMs'.format(WAIVER_OPTION)
    schedules = ' after disabling its enabled execution schedules (5.2.x runs them in ' \
                'maintenance mode)' if versions.schedules_ignore_maintenance(source) else ''
    return 'the old manager ({0}) is put in maintenance mode{1}'.format(address, schedules)


def enabled_schedules(manager) -> List[dict]:
    """The enabled execution schedules of every tenant: [{tenant, id, deployment_id,
    workflow_id}]."""
    found = []
    for tenant in manager.list_tenants() or [None]:
        for schedule in manager.list_all('execution-schedules', tenant=tenant,
                                         include=SCHEDULE_FIELDS):
            if schedule.get('enabled'):
                found.append({'tenant': tenant, 'id': schedule['id'],
                              'deployment_id': schedule.get('deployment_id'),
                              'workflow_id': schedule.get('workflow_id')})
    return found


def _key(schedule):
    return (schedule.get('tenant'), schedule.get('deployment_id'), schedule.get('id'))


def fence(ctx, step_id: str) -> dict:
    """Fence the old manager (or record the waiver); the details journaled by the step."""
    workspace = ctx.workspace
    record = dict(workspace.meta.get(META_KEY) or {})
    profile = ctx.source_profile
    if ctx.options.no_fence_old_manager:
        workspace.journal.append(step_id, 'waived', {'check': WAIVER_ID,
                                                     'reason': WAIVER_OPTION})
        get_logger().warning('The old manager is NOT fenced (%s): its execution schedules '
                             'and anyone still using it may act on the VMs the new manager '
                             'now manages; shut it down soon.', WAIVER_OPTION)
        record.update(waived=True, maintenance=None)
        if record.get('schedules'):     # an earlier attempt disabled these: say how to undo
            record['undo'] = undo_commands(profile, record['schedules'])
        workspace.update_meta(**{META_KEY: record})
        return {'waived': True}
    try:
        manager = common.open_manager(profile, role='old').bypassing_maintenance()
        schedules = _disable_schedules(manager, workspace, record)
        state = manager.maintenance_state()
        if state != 'activated':
            if state != 'activating':
                manager.activate_maintenance()
            state = waits.wait_for_maintenance(manager, ctx.options.timeout)
    except UpgradeError as error:
        error.possible_solutions.append(
            'If the old manager is down for good, run the same command with {0} (recorded '
            'as a waiver).'.format(WAIVER_OPTION))
        raise
    record.update(waived=False, maintenance=state, profile=profile, schedules=schedules,
                  undo=undo_commands(profile, schedules))
    workspace.update_meta(**{META_KEY: record})
    get_logger().info('Old manager fenced: maintenance mode %s%s.', state,
                      '; {0} execution schedule(s) disabled: {1}'.format(
                          len(schedules), ', '.join(
                              '{0}/{1}/{2}'.format(*_key(s)) for s in schedules))
                      if schedules else '')
    return {'maintenance': state, 'schedules_disabled': schedules}


def _disable_schedules(manager, workspace, record) -> List[dict]:
    """5.2.x: disable every enabled schedule; the ids are recorded first (see above)."""
    schedules = list(record.get('schedules') or [])
    if not versions.schedules_ignore_maintenance(manager.version):
        return schedules
    known = {_key(s) for s in schedules}
    schedules += [s for s in enabled_schedules(manager) if _key(s) not in known]
    record['schedules'] = schedules
    workspace.update_meta(**{META_KEY: record})
    for schedule in schedules:
        manager.set_schedule_enabled(schedule['id'], schedule['deployment_id'], False,
                                     tenant=schedule['tenant'])
    return schedules


def undo_commands(profile, schedules) -> List[str]:
    """The cfy commands that undo the fence, in order (maintenance mode first: 5.2.x refuses
    the schedule updates cfy sends while it is activated)."""
    commands = ['cfy profiles use {0}'.format(profile), 'cfy maintenance-mode deactivate']
    for schedule in schedules:
        commands.append('cfy deployments schedule enable {0} {1}{2}'.format(
            schedule['deployment_id'], schedule['id'],
            ' -t {0}'.format(schedule['tenant']) if schedule.get('tenant') else ''))
    return commands
