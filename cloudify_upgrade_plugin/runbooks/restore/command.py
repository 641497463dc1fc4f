"""`cfy upgrade new-host` and `cfy upgrade in-place`: the restore command, for either mode.

``run(options)`` picks the mode from the options (``NewHostOptions`` -> new-host,
``InPlaceOptions`` -> in-place) and runs the shared skeleton (``engine.command``): open the
prepared workspace and the target manager (waiting while a restore this upgrade started
restarts or reboots it), run the target checks (a blocking failure is exit 3 before
anything is uploaded), run the steps (``steps_for``), write the report and render the
document.  The waivers are checked first, once, against every check id the command can
raise (``CHECK_IDS``: the late ones included) and the ids that cannot be waived
(``UNWAIVABLE``), so that no later step refuses one.  ``describe`` lists the steps of a
mode for ``plan``.

``new-host --rehearse`` runs the same steps up to the point of no return (the cut-over:
upload, restore on the new manager, credentials, reconcile) and stops there with the
document's ``status`` ``rehearsed`` (exit 0): nothing is fenced on the old manager, no agent
moves, the active profile stays; the same command without ``--rehearse`` goes on from the
cut-over.
"""
import time
from typing import Dict, FrozenSet, List

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import evaluate, validate_waivers
from cloudify_upgrade_plugin.engine.command import Command, Outcome
from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Runbook, Step, default_confirm
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import profiles, restore_wait
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.logins import LEDGER
from cloudify_upgrade_plugin.options import RestoreOptions
from cloudify_upgrade_plugin.runbooks import (
    after_restore, agents, cluster, cluster_fence, cluster_steps, common, credentials,
    old_users)
from cloudify_upgrade_plugin.runbooks.context import RestoreContext
from cloudify_upgrade_plugin.runbooks.in_place import IN_PLACE
from cloudify_upgrade_plugin.runbooks.new_host import NEW_HOST
from cloudify_upgrade_plugin.runbooks.restore import plugins
from cloudify_upgrade_plugin.runbooks.restore.base import LATE_CHECKS, RestoreMode
from cloudify_upgrade_plugin.runbooks.restore.checks import (
    TARGET_CHECKS, CheckTarget, target_checks)
from cloudify_upgrade_plugin.runbooks.restore.route import RouteCopy
from cloudify_upgrade_plugin.runbooks.restore.cutover import (
    CutOver, Finish, FollowCredentials, InstallAgents, Reconcile, RestoreUsers)
from cloudify_upgrade_plugin.runbooks.restore.execute import (
    StartRestore, UploadSnapshot, WaitRestore)
from cloudify_upgrade_plugin.runbooks.source_checks import SOURCE_CHECKS

MODES: Dict[str, RestoreMode] = {mode.name: mode for mode in (NEW_HOST, IN_PLACE)}
# Every check id --waive may name in new-host / in-place: the target's, the cluster's,
# either mode's, the late ones and prepare's (the same waivers may be given to every command
# of an upgrade).
_REGISTRIES = (TARGET_CHECKS, cluster.CLUSTER_CHECKS, LATE_CHECKS, SOURCE_CHECKS) + tuple(
    mode.checks for mode in MODES.values())
CHECK_IDS: FrozenSet[str] = frozenset().union(*(registry.ids for registry in _REGISTRIES))
# The ids among them that describe what a manager refuses whatever the options say.
UNWAIVABLE: Dict[str, str] = {check_id: why for registry in _REGISTRIES
                              for check_id, why in registry.unwaivable.items()}


def steps_for(mode: RestoreMode, source) -> List[Step]:
    """The restore-side steps of ``mode`` for a source of version ``source``."""
    steps = [CheckTarget(), RouteCopy(), UploadSnapshot(), StartRestore(), WaitRestore()]
    steps.extend(mode.steps_after_restore(source))
    if versions.snapshot_carries_passwords(source):
        steps.append(FollowCredentials())
    else:
        steps.append(RestoreUsers())
    steps.extend(after_restore.steps())
    steps.extend([Reconcile(), CutOver()])
    steps.extend(mode.steps_after_cutover(source))
    steps.extend([InstallAgents(), Finish()])
    return steps


def describe(mode: str, source, target) -> List[dict]:
    """[{'id', 'title', 'changes'}] in order, for this mode and version pair (for plan)."""
    return [{'id': step.id, 'title': step.title, 'changes': step.changes}
            for step in steps_for(MODES[mode], versions.as_version(source))]


def run(options: RestoreOptions) -> Outcome:
    """`cfy upgrade new-host` / `cfy upgrade in-place`."""
    known_hosts.configure(accept_new=options.accept_new_host_keys)
    return RestoreCommand(MODES[options.mode], options).run()


class RestoreCommand(Command):
    """Open the workspace and the target, check, then run the steps of the mode."""

    def __init__(self, mode: RestoreMode, options: RestoreOptions):
        self.mode = mode
        self.options = options
        self.ctx = None
        self.rehearsed = False

    def run(self) -> Outcome:
        try:
            return super().run()
        finally:     # a process running several upgrades (the fleet) keeps no stale listener
            if self.workspace is not None:
                LEDGER.on_change(None, key=self.workspace.root)

    def check(self) -> None:
        options, mode = self.options, self.mode
        old_users.validate_options(options)
        cluster.refuse_unwaivable(options.waivers)
        validate_waivers(options.waivers, CHECK_IDS, UNWAIVABLE)
        workspace = self.workspace = Workspace.open(options.upgrade_id, base=options.workdir)
        meta = workspace.meta
        _require_prepared(workspace, meta, mode.name)
        _track_failed_logins(workspace, options.reset_failed_logins)
        source_profile = (meta.get('source') or {}).get('profile')
        target_profile = mode.target_profile(options, meta, source_profile)
        try:
            target = _open_target(target_profile, source_profile, workspace, options.timeout)
        except UpgradeError as error:
            # pinned to a node of a cluster that does not answer: never another node
            raise cluster.open_failure(workspace, error, _profile_host(target_profile))
        plugins.validate_option(options, target)
        ctx = self.ctx = RestoreContext(
            workspace, yes=options.yes, rehearse=options.rehearse, options=options, mode=mode,
            target_manager=target,
            target_profile=target_profile, source_profile=source_profile,
            check_ids=CHECK_IDS)
        ctx.confirm = _confirm_with_summary(ctx)
        cluster.attach_target(ctx)
        target = ctx.target_manager
        workspace.update_meta(target=common.manager_meta(target))
        after_restore.validate_inputs(options, workspace, target)     # exit 2, no change
        if workspace.journal.state().get(CheckTarget.id) != 'succeeded':
            # blocked before anything is uploaded: exit 3 and nothing changed
            common.verify_host_keys(_ssh_hosts(ctx, meta))
            common.journal_host_keys(workspace)
            ctx.target_checks = target_checks(ctx)
            cluster.add_target_checks(ctx.target_checks, ctx)
            try:
                evaluate(ctx.target_checks, options.waivers)
            except BlockedError as error:
                raise cluster.blocked(error)

    def execute(self) -> None:
        source = versions.Version.parse(self.workspace.meta['source']['version'])
        runbook = Runbook(self.mode.name, cluster_steps.with_cluster_steps(
            steps_for(self.mode, source), self.ctx.cluster))
        fingerprint = {'target': {'address': self.ctx.target_manager.address},
                       'restore_mode': self.mode.name}
        result = Runner(self.workspace, runbook, fingerprint).run(self.ctx)
        self.rehearsed = bool(result.get('rehearsed'))

    def failed(self, error: UpgradeError) -> dict:
        document = result_document(self.workspace, self.mode)
        document['status'] = 'failed'
        document['error'] = error.to_dict()
        error.document = dict(document, **(error.document or {}))
        return error.document       # with the checks of a blocked check-target

    def document(self) -> dict:
        if self.rehearsed:
            return rehearsal_document(self.workspace, self.mode)
        return result_document(self.workspace, self.mode)

    def report(self, document: dict) -> None:
        write_report(self.workspace, document,
                     sections=after_restore.report_sections(self.workspace.meta))

    def render(self, document: dict) -> None:
        common.render(document, rehearsal_lines(document) if self.rehearsed
                      else result_lines(document))


def _ssh_hosts(ctx, meta) -> list:
    """The profiles of the hosts this run will use over SSH: the target's when its profile
    has SSH settings (target-disk; restore-users, restore-ssl), the old manager's when the
    cut-over stops its riemann (new-host, 3.x/4.x)."""
    found = []
    if common.ssh_configured(ctx.target_manager):       # target-disk runs `df` there
        found.append(ctx.target_profile)
    source = versions.Version.parse((meta.get('source') or {}).get('version'))
    if ctx.mode.name == versions.MODE_NEW_HOST and versions.has_riemann(source) and \
            not ctx.options.no_stop_old_healing and ctx.source_profile and \
            ctx.source_profile not in found:
        profile = profiles.profile_context(ctx.source_profile)
        if getattr(profile, 'ssh_user', None) and getattr(profile, 'ssh_key', None):
            found.append(ctx.source_profile)
    return found


def _require_prepared(workspace, meta, mode):
    if workspace.journal.state().get('write-prepare-report') != 'succeeded' or \
            not meta.get('snapshot'):
        raise InputError(
            'Upgrade {0} is not prepared: its prepare did not finish.'.format(
                workspace.upgrade_id), error_id='prepare-not-finished',
            hints=['Run `cfy upgrade prepare --upgrade-id {0}` first.'.format(
                workspace.upgrade_id)])
    if meta.get('mode') != mode:
        raise InputError(
            'Upgrade {0} was prepared for a {1} upgrade, not {2}.'.format(
                workspace.upgrade_id, meta.get('mode'), mode), error_id='wrong-mode',
            hints=['Run `cfy upgrade {0} --upgrade-id {1}`, or prepare a new upgrade with '
                   '--mode {2}.'.format(meta.get('mode'), workspace.upgrade_id, mode)])


def _track_failed_logins(workspace, reset: bool) -> None:
    """The failed logins earlier runs recorded count in this one (``manager/logins.py``),
    unless ``--reset-failed-logins``; every change is kept in workspace.json."""
    recorded = workspace.meta.get('failed_logins') or []
    if reset:
        if recorded:
            get_logger().info('Forgetting %d account(s) with failed logins recorded by '
                              'earlier runs (--reset-failed-logins).', len(recorded))
        LEDGER.forget()
        workspace.update_meta(failed_logins=[])
    else:
        LEDGER.load(recorded)
    LEDGER.on_change(lambda entries: _keep_failed_logins(workspace, entries),
                     key=workspace.root)


def _keep_failed_logins(workspace, entries) -> None:
    if workspace.meta.get('failed_logins') != entries:   # the fleet: other upgrades' too
        workspace.update_meta(failed_logins=entries)


def _open_target(target_profile, source_profile, workspace, timeout):
    """The target manager, waited for while a restore this upgrade started restarts or
    reboots it (in place: the reboot after restoring the certificates; issue 7 "a reboot in
    the middle of a step is expected, not an error").  A 5.0.5-6.1 target that may still
    swap its database is left alone until the quiet period is over (behaviour §12.7)."""
    restoring = bool(workspace.meta.get('restore_execution_id'))
    recorded = (workspace.meta.get('target') or {}).get('version')
    if restoring and recorded and not workspace.meta.get('restore_ended_seen_at'):
        restore_wait.stay_quiet('The target manager', restore_wait.quiet_left(
            recorded, workspace.meta.get('restore_started_at')))
    deadline = time.monotonic() + float(timeout)
    delay = 0.25
    waiting = False
    while True:
        try:
            return _connect_target(target_profile, source_profile, workspace)
        except _Retry:
            pass
        except UpgradeError as error:
            if not restoring or error.error_id not in ('manager-unreachable',
                                                       'manager-not-detected'):
                raise
            if time.monotonic() >= deadline:
                raise UpgradeError(
                    'The target manager did not come back within {0}s: {1}'.format(
                        timeout, error.message), error_id='rest-timeout',
                    details=error.details,
                    hints=['Check the manager host (a reboot after restoring certificates can '
                           'take several minutes), then run the same command again.'])
            if not waiting:
                get_logger().info('The target manager does not answer (a restore restarts '
                                  'its REST service, or reboots it); waiting up to %ss.',
                                  timeout)
                waiting = True
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)


class _Retry(Exception):
    """Something was repaired on the target; connect again."""


_REFUSED = ('manager-auth-failed', 'failed-logins-limit')


def _profile_host(name):
    try:
        return profiles.read_profile(name).host
    except UpgradeError:
        return None


def _connect_target(target_profile, source_profile, workspace):
    """The target manager, at the cluster node the upgrade is pinned to once it is.  The old
    admin's password is tried only when the restore this upgrade started there installs it
    (``credentials.source_admin_credentials``); before that a refused profile is an error
    naming it, not a retry with another password."""
    pinned = cluster.pinned_address(workspace)
    try:
        return common.open_manager(target_profile, role='target', host=pinned)
    except UpgradeError as error:
        if error.error_id not in _REFUSED:
            raise
        refused = error
    source = credentials.source_admin_credentials(
        workspace, source_profile, target_profile, profiles.read_profile(target_profile)
        .protocol)
    if source is not None:
        get_logger().info('The target refuses the credentials of profile %s; the restore this '
                          'upgrade started there installs the old admin\'s, trying them.',
                          target_profile)
        try:
            return Manager.from_profile(target_profile, host=pinned, credentials=source)
        except UpgradeError as error:
            if error.error_id not in _REFUSED:
                raise
    if old_users.recover_lockout(workspace, target_profile):
        raise _Retry()
    raise _profile_refused(refused, target_profile, workspace, source is not None)


def _profile_refused(refused, target_profile, workspace, tried_source):
    """The target refuses the profile's credentials: exit 3 while nothing was sent to it
    yet (no upload), else 1."""
    changed = workspace.journal.state().get(UploadSnapshot.id) is not None
    message = 'The target manager refuses the credentials of profile {0}{1}: {2}'.format(
        target_profile, ' (and the old admin\'s, which the restore installs)'
        if tried_source else '', refused.message)
    hints = ['Correct the profile: `cfy profiles use {0}` then `cfy profiles set '
             '--manager-username USER --manager-password PASSWORD`, and run the same command '
             'again.'.format(target_profile)]
    if refused.error_id == 'failed-logins-limit':
        hints = list(refused.possible_solutions)
    elif not changed:
        hints.append('Nothing was sent to the target yet: the old manager\'s password is '
                     'never tried before this upgrade restored its snapshot there.')
    kind = UpgradeError if changed else BlockedError
    return kind(message, error_id=refused.error_id if refused.error_id != 'manager-auth-failed'
                else 'target-credentials-refused', hints=hints,
                details=dict(refused.details or {}, profile=target_profile))


def _confirm_with_summary(ctx):
    """The point of no return: say what was verified and what happens next, then ask."""
    def confirm(step):
        meta = ctx.workspace.meta
        logger = get_logger()
        target = meta.get('target') or {}
        reconciliation = meta.get('reconciliation') or {}
        waived = [e['details'].get('check') for e in ctx.workspace.journal.waivers()]
        logger.info('Verified so far: snapshot %s (version %s, sha256 checked) restored on %s '
                    '(%s %s, services %s); reconciliation %s%s.',
                    (meta.get('snapshot') or {}).get('id'),
                    (meta.get('snapshot') or {}).get('snapshot_version'),
                    target.get('address'), target.get('version'), target.get('edition'),
                    meta.get('target_health') or 'not checked',
                    'clean' if reconciliation.get('ok') else '{0} difference(s), '
                    'waived'.format(len(reconciliation.get('differences') or [])),
                    '; waived checks: {0}'.format(', '.join(sorted(set(waived))))
                    if waived else '')
        try:
            agent_plan = agents.plan(ctx.target_manager, ctx.options.skip_node_instances,
                                     ctx.options.stop_old_agents)
            moving = '{0} deployment(s) in {1} tenant(s){2}{3}'.format(
                len(agent_plan.moves), len({t for t, _ in agent_plan.eligible}),
                ' ({0} not eligible: hosts not started)'.format(len(agent_plan.not_eligible))
                if agent_plan.not_eligible else '',
                '; {0} host(s) not moved (provided, none or skipped)'.format(
                    len(agent_plan.not_moved)) if agent_plan.not_moved else '')
        except UpgradeError:
            moving = 'every eligible deployment'
        fence = ctx.mode.fence_plan(ctx, meta)
        if ctx.mode.name == versions.MODE_NEW_HOST and \
                cluster_fence.old_manager_nodes(ctx.workspace):
            fence += '; {0}'.format((meta.get('source_cluster') or {}).get('fence'))
        logger.info('What happens now: %s; the cut-over time is recorded; then the agents of '
                    '%s are reinstalled to talk to the new manager and checked. Keep the '
                    'old manager and its RabbitMQ up until this ends.', fence, moving)
        return default_confirm(step)
    return confirm


def result_document(workspace: Workspace, mode: RestoreMode) -> dict:
    meta = workspace.meta
    target = meta.get('target') or {}
    agents_summary = meta.get('agents') or {}
    return {'upgrade_id': workspace.upgrade_id, 'mode': meta.get('mode'),
            'target': {'version': target.get('version'), 'edition': target.get('edition'),
                       'address': target.get('address'), 'profile': target.get('profile')},
            'restore_execution_id': meta.get('restore_execution_id'),
            'reconciliation': meta.get('reconciliation') or {'ok': None, 'differences': []},
            'plugins': after_restore.plugins_document(meta),
            'ldap': meta.get('ldap'),
            'agents': {'deployments': agents_summary.get('deployments'),
                       'succeeded': agents_summary.get('succeeded'),
                       'failed': agents_summary.get('failed') or [],
                       'not_eligible': agents_summary.get('not_eligible') or [],
                       'hosts_moved': agents_summary.get('hosts_moved'),
                       'verified': agents_summary.get('verified'),
                       'unverified': agents_summary.get('unverified') or [],
                       'not_moved': agents_summary.get('not_moved') or [],
                       'old_agents_kept': agents_summary.get('old_agents_kept') or []},
            'cutover_at': meta.get('cutover_at'),
            'healing_fenced': meta.get('healing_fenced'),
            'skipped_deployments': meta.get('restore_skipped_deployments'),
            'cluster': cluster.result_section(meta),
            'old_manager_fence': meta.get('old_manager_fence'),
            'status': 'done',
            'steps': common.step_states(workspace),
            'next': 'cfy upgrade verify-heals --upgrade-id {0}'.format(workspace.upgrade_id),
            'left_to_do': plugins.left_to_do(meta.get('restore_skipped_deployments')) +
            after_restore.left_to_do(meta) + mode.left_to_do() + cluster.left_to_do(meta)}


def fence_lines(record) -> List[str]:
    """What the fence of a 5.x+ old manager did, and the commands that undo it."""
    if not record:
        return []
    disabled = '; execution schedules disabled: {0}'.format(', '.join(
        '{0}/{1}/{2}'.format(s.get('tenant') or '-', s['deployment_id'], s['id'])
        for s in record['schedules'])) if record.get('schedules') else ''
    if record.get('waived'):
        lines = ['The old manager was NOT fenced (--no-fence-old-manager, a recorded '
                 'waiver){0}.'.format(disabled)]
    else:
        lines = ['Old manager fenced: maintenance mode {0}{1}.'.format(
            record.get('maintenance'), disabled)]
    if record.get('undo'):
        lines.append('To give the old manager its duties back (a rollback): {0}'.format(
            '; '.join('`{0}`'.format(command) for command in record['undo'])))
    return lines


def rehearsal_document(workspace: Workspace, mode: RestoreMode) -> dict:
    """The document of a rehearsal: the result so far, stopped before the cut-over."""
    document = result_document(workspace, mode)
    document['status'] = 'rehearsed'
    document['next'] = 'cfy upgrade {0} --upgrade-id {1}'.format(mode.name,
                                                                 workspace.upgrade_id)
    document['left_to_do'] = [
        'The old manager is still in charge: its auto-heal was not stopped and no agent '
        'moved; the new manager holds the restored copy of the snapshot. Do not use the '
        'new manager until the upgrade goes on.',
        'Whatever changes on the old manager from now on is not on the new one: if '
        'blueprints, deployments or users change before the cut-over, start a new upgrade '
        '(prepare again, onto a reinstalled new manager).',
        'To go on: `{0}` (without --rehearse); the finished steps are not redone.'.format(
            document['next'])]
    return document


def rehearsal_lines(document: dict) -> List[str]:
    lines = ['Upgrade {0}: rehearsed on {1} {2} ({3}): everything before the point of no '
             'return is done; the old manager is still in charge.'.format(
                 document['upgrade_id'], document['target']['version'],
                 document['target']['edition'], document['target']['address']),
             'Status: rehearsed.',
             'Reconciliation: {0}.'.format('no difference' if document['reconciliation']['ok']
                                           else document['reconciliation']['differences'])]
    lines.extend(document['left_to_do'])
    lines.append('Next: {0}'.format(document['next']))
    return lines


def result_lines(document: dict) -> List[str]:
    agents_doc = document['agents']
    lines = ['Upgrade {0}: restored on {1} {2}.'.format(
        document['upgrade_id'], document['target']['version'], document['target']['edition'])]
    lines.extend(after_restore.result_lines(document))
    lines.append('Agents: {0} of {1} deployment(s) moved.'.format(agents_doc['succeeded'],
                                                                  agents_doc['deployments']))
    if agents_doc.get('verified'):
        lines.append('Agents checked on the new manager: {0} host(s) at its version and '
                     'started.'.format(agents_doc.get('hosts_moved')))
    for host in agents_doc.get('not_moved') or []:
        lines.append('Not moved: {0}/{1} host {2}: {3}.'.format(
            host['tenant'] or '-', host['deployment_id'], host['node_instance_id'],
            host['reason']))
    for kept in agents_doc.get('old_agents_kept') or []:
        lines.append('Old agents not stopped: {0}/{1}: {2}.'.format(
            kept['tenant'] or '-', kept['deployment_id'], kept['reason']))
    lines.append('Cut-over at {0}.'.format(document['cutover_at']))
    lines.extend(fence_lines(document.get('old_manager_fence')))
    lines.extend(cluster.result_lines(document.get('cluster')))
    lines.extend(document.get('left_to_do') or [])
    lines.append('Next: {0}'.format(document['next']))
    return lines
