"""`cfy upgrade plan`: the checks prepare would run and the ordered steps; changes nothing.

Runs the source checks that need no snapshot and lists the steps of the chosen mode (the
prepare steps, in place the manual teardown, then the restore steps) with what each
changes.  It sends only read requests.  Exit 3 when a blocking check fails.
"""
from typing import List

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.checks import evaluate
from cloudify_upgrade_plugin.engine.command import Outcome
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.options import PlanOptions
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.prepare import (
    BackupHostFiles, base_document, prepare_steps, report_blocked, source_host_profiles)
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command
from cloudify_upgrade_plugin.runbooks.source_checks import host_backups_needed, source_checks


def run(options: PlanOptions) -> Outcome:
    """`cfy upgrade plan`: checks and the ordered steps; read only (GETs, SSH reads)."""
    mode = options.mode
    known_hosts.configure(accept_new=options.accept_new_host_keys, pin=False)  # writes nothing
    manager = common.open_manager(options.from_profile, role='source')
    target = common.parse_target(options.target_version)
    common.verify_host_keys(source_host_profiles(manager, mode))
    checks = source_checks(manager, mode, target)
    document = base_document(manager, mode, checks)
    document['upgrade_id'] = None
    document['target_version'] = str(target) if target else None
    document['steps'] = describe_steps(manager, mode, target)
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
    lines.extend(common.check_lines(document['checks']))
    lines.append('Steps ({0}):'.format(document['mode']))
    for number, step in enumerate(document['steps'], 1):
        lines.append('  {0:2}. [{1}] {2}: {3} - changes: {4}'.format(
            number, step['command'], step['id'], step['title'], step['changes']))
    lines.append('Next: {0}'.format(document['next']))
    return lines
