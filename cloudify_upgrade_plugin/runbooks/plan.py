"""`cfy upgrade plan`: the checks prepare would run and the ordered steps; changes nothing.

Runs the source checks that need no snapshot and lists the steps of the chosen mode (the
prepare steps, in place the manual teardown, then the restore steps) with what each
changes.  With ``--to-profile`` it also runs the target checks that need no snapshot
(``restore.checks.plan_target_checks``: licence, path, edition, predicted restore route,
clean, admin), read only, without a workspace.  ``notes`` say where the vendor tests
another way (``cfy_manager upgrade`` from 6.1+ all-in-one managers, behaviour §12.8).  It
also estimates the snapshot's size, the disk it needs and its transfer time
(``estimates.py``).  It sends only read requests.  Exit 3 when a blocking check fails.
"""
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.checks import evaluate, validate_waivers
from cloudify_upgrade_plugin.engine.command import Outcome
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.options import PlanOptions
from cloudify_upgrade_plugin.runbooks import cluster, cluster_steps, common, estimates
from cloudify_upgrade_plugin.runbooks.prepare import (
    BackupHostFiles, base_document, prepare_steps, report_blocked, source_host_profiles)
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command
from cloudify_upgrade_plugin.runbooks.restore.checks import plan_target_checks
from cloudify_upgrade_plugin.runbooks.source_checks import (
    SOURCE_CHECKS, host_backups_needed, source_checks)


def run(options: PlanOptions) -> Outcome:
    """`cfy upgrade plan`: checks and the ordered steps; read only (GETs, SSH reads)."""
    mode = options.mode
    known_hosts.configure(accept_new=options.accept_new_host_keys, pin=False)  # writes nothing
    if options.to_profile:
        validate_waivers(options.waivers, restore_command.CHECK_IDS,
                         restore_command.UNWAIVABLE)
    else:
        validate_waivers(options.waivers, SOURCE_CHECKS.ids, SOURCE_CHECKS.unwaivable)
    manager = common.open_manager(options.from_profile, role='source')
    target = common.parse_target(options.target_version)
    common.verify_host_keys(source_host_profiles(manager, mode))
    target_manager = _target_manager(options, manager, target)
    if target_manager is not None and target is None:
        target = target_manager.version
    estimate = estimates.for_manager(manager, options.link_mbps)
    checks = source_checks(manager, mode, target, estimate)
    if target_manager is not None:
        for check in plan_target_checks(manager, target_manager, mode,
                                        restore_command.CHECK_IDS):
            checks.add(check)
    document = base_document(manager, mode, checks)
    document['upgrade_id'] = None
    document['target_version'] = str(target) if target else None
    document['estimates'] = estimates.section(estimate, checks)
    if target_manager is not None:
        document['target'] = common.manager_meta(target_manager)
    document['steps'] = describe_steps(manager, mode, target)
    document['notes'] = notes(manager)
    document.update(cluster.source_section(manager, target))
    document['cluster_target_steps'] = cluster_steps.describe()
    document['next'] = _prepare_command(mode, target, options)
    try:
        evaluated = evaluate(checks, options.waivers)
    except UpgradeError as error:
        document['checks'] = (error.document or {}).get('checks', document['checks'])
        document['next'] = None
        report_blocked(error, document, _plan_lines(document))
        raise
    document['checks'] = [check.to_dict() for check in evaluated]
    document['warnings'] = notices.collect(None, document['checks'])
    common.render(document, _plan_lines(document))
    return Outcome(document)


def _target_manager(options, source, target):
    """The manager of ``--to-profile`` (None without it); its version must be the
    ``--target-version`` when both are given."""
    if not options.to_profile:
        return None
    if options.to_profile == source.profile_name:
        raise InputError('--to-profile {0} is the old manager\'s profile.'.format(
            options.to_profile), error_id='target-is-source-profile',
            hints=['Give the profile of the new manager (in place, it does not exist before '
                   'the teardown: plan without --to-profile).'])
    target_manager = common.open_manager(options.to_profile, role='target')
    if target is not None and target.base != target_manager.version.base:
        raise InputError('--target-version {0} but {1} runs {2}.'.format(
            target, target_manager.label, target_manager.version),
            error_id='target-version-mismatch',
            hints=['Leave --target-version out: the target\'s own version is used.'])
    return target_manager


def notes(manager) -> List[str]:
    """Where the vendor tests another way than a snapshot upgrade (behaviour §12.8)."""
    if not versions.cfy_manager_upgrade_applies(manager.version):
        return []
    nodes = _manager_nodes(manager)
    if nodes is not None and nodes > 1:
        return []
    return ['{0} {1}: the vendor-tested in-place alternative is `cfy_manager upgrade` on '
            'the manager host (an RPM upgrade that keeps the certificates, '
            'rest-security.conf, the licence, LDAP and the plugins; tested from 6.1-6.4 '
            'all-in-one managers to 7.0, behaviour §12.8){2}. Snapshots (this plugin) remain '
            'the documented way to move to a new manager.'.format(
                manager.version, manager.edition or '',
                '' if nodes == 1 else ' - if this is an all-in-one manager')]


def _manager_nodes(manager) -> Optional[int]:
    """How many manager nodes the source lists (``GET /managers``, 5.0.5+), or None."""
    try:
        return len(list(manager.list_all('managers', include=['hostname'])))
    except UpgradeError:
        return None


def _prepare_command(mode, target, options):
    parts = ['cfy upgrade prepare --mode {0}'.format(mode)]
    if target:
        parts.append('--target-version {0}'.format(target))
    if options.from_profile:
        parts.append('--from-profile {0}'.format(options.from_profile))
    return ' '.join(parts)


def describe_steps(manager, mode, target) -> List[dict]:
    """The steps prepare and the chosen mode will run, with what each changes."""
    steps = []
    for step in prepare_steps(freeze=False):
        changes = step.changes
        if isinstance(step, BackupHostFiles):
            needed = host_backups_needed(manager, mode)
            changes = 'copies {0} from the old manager host into backups/'.format(
                ' and '.join(common.HOST_FILES[kind][0] for kind in needed)) \
                if needed else 'nothing (no host file is needed for {0} {1})'.format(
                    manager.version, mode)
        steps.append({'command': 'prepare', 'id': step.id, 'title': step.title,
                      'changes': changes})
    if mode == versions.MODE_IN_PLACE:
        steps.append({'command': 'manual', 'id': 'teardown-and-reinstall',
                      'title': 'By hand, after prepare: tear the old manager down and '
                               'install the new version at the same address (prepare prints '
                               'how for {0})'.format(manager.version),
                      'changes': 'deletes the old manager, its data and certificates'})
    steps.extend({'command': mode, 'id': step['id'], 'title': step['title'],
                  'changes': step['changes']}
                 for step in restore_command.describe(mode, manager.version, target))
    return steps


def _plan_lines(document):
    lines = ['Source: {0} {1} (API {2})'.format(
        document['source']['version'], document['source']['edition'],
        document['source']['api_prefix'])]
    target = document.get('target')
    if target:
        lines.append('Target: {0} {1} at {2} (profile {3})'.format(
            target['version'], target['edition'], target['address'], target['profile']))
    lines.extend(cluster.section_lines(document))
    lines.extend(common.check_lines(document['checks']))
    lines.extend('Note: ' + note for note in document.get('notes') or [])
    lines.extend(estimates.lines(document['estimates']))
    lines.append('Steps ({0}):'.format(document['mode']))
    for number, step in enumerate(document['steps'], 1):
        lines.append('  {0:2}. [{1}] {2}: {3} - changes: {4}'.format(
            number, step['command'], step['id'], step['title'], step['changes']))
    lines.append('If the new manager is a cluster of several managers, {0} adds: {1}.'.format(
        document['mode'], ', '.join(step['id'] for step in document['cluster_target_steps'])))
    lines.append('Next: {0}'.format(document['next']))
    return lines
