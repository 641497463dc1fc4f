"""`cfy upgrade status`: where an upgrade stands, as a table and the next command.

Reads the workspace only (``engine.summary.summarize``: no REST, no SSH) and prints the
steps done, failed and pending with the command to run next, or with ``--json`` exactly the
contract's ``status`` document (``upgrade_id``, ``mode``, ``status``, ``steps``, ``next``).
"""
from cloudify_cli.table import print_data

from cloudify_upgrade_plugin import log
from cloudify_upgrade_plugin.engine.command import Outcome
from cloudify_upgrade_plugin.engine.summary import REHEARSED, RUNNING, summarize
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.options import StatusOptions


def run(options: StatusOptions) -> Outcome:
    """``cfy upgrade status [--upgrade-id ID] [--json]``."""
    workspace = Workspace.open(options.upgrade_id)
    document = summarize(workspace)
    if log.json_mode():
        log.emit_json({key: document[key]
                       for key in ('upgrade_id', 'mode', 'status', 'steps', 'next')})
        return Outcome(document)
    _print_human(document)
    return Outcome(document)


def _print_human(document):
    logger = log.get_logger()
    logger.info('Upgrade %s (mode: %s, created %s)', document['upgrade_id'],
                document.get('mode') or 'unknown', document.get('created_at') or 'unknown')
    rows = [dict(row, error_id=row.get('error_id') or '', runbook=row['runbook'] or '',
                 started_at=row['started_at'] or '', ended_at=row['ended_at'] or '')
            for row in document['steps']]
    print_data(['runbook', 'id', 'status', 'started_at', 'ended_at', 'error_id'], rows,
               'Steps:', labels={'id': 'step', 'error_id': 'error'})
    logger.info('Status: %s', document['status'])
    if document['status'] == REHEARSED:
        logger.info('Rehearsed: every step before the point of no return is done; the old '
                    'manager is still in charge (nothing fenced, no agent moved).')
    if document['next']:
        logger.info('Next: %s', document['next'])
    elif any(row['status'] == RUNNING for row in document['steps']):
        logger.info('Next: wait - another `cfy upgrade` process is working on this upgrade.')
    elif document.get('mode') == 'new-host':
        logger.info('Nothing is left to run: verify-heals is clean. Shut the old manager '
                    'down (or disconnect it from every network it heals on).')
    else:
        logger.info('Nothing is left to do for this upgrade.')
