"""The workspace report: ``report.json`` (the command's JSON document) and ``report.md``.

``write_report(workspace, doc)`` writes both atomically (0600) and redacted.  ``report.md`` is
the human summary: the steps done / failed / pending (from ``summary.summarize``), the checks
in ``doc['checks']``, the warnings in ``doc['warnings']`` (``engine.notices``), the waivers
recorded in the journal, and what is left to do (``next`` plus any ``doc['left_to_do']``
items), then the command's own ``sections`` (``[(title,
[markdown lines])]``: e.g. new-host's reconciliation table).  Returns ``(json_path,
md_path)``.

Every command rewrites the report; a section another command added (``KEPT_SECTIONS``: the
findings of verify-heals, and their ``left_to_do`` items) is kept from the previous
report.json when the new document has none, so a later run of new-host never hides them.

Both carry the journal's head as it was when they were written (issue 17 item 19):
``report.json`` ``journal`` = ``{"entries", "head"}``, the number of journal lines and the
``hash`` of the last one (the journal is hash-chained, so that hash stands for every line
before it; 64 zeros for an empty journal), and ``report.md`` says the same.  A report whose
head is not the journal's last hash is older than the journal.  ``write_report_locked``
writes it only while holding the workspace lock (never under another process's feet).
"""
import json
from typing import Optional, Tuple

from cloudify_upgrade_plugin.engine.journal import GENESIS
from cloudify_upgrade_plugin.engine.redact import redact, redact_text
from cloudify_upgrade_plugin.engine.summary import FINISHED, summarize
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger

REPORT_JSON = 'report.json'
REPORT_MD = 'report.md'
# {section key: prefix of its left_to_do items}
KEPT_SECTIONS = {'verify_heals': 'verify-heals: '}


def write_report(workspace, doc, sections=None) -> Optional[Tuple[str, str]]:
    try:
        return _write_report(workspace, doc, sections)
    except OSError as exc:   # a full disk must not hide the command's own result
        get_logger().error('The report of upgrade %s could not be written: %s',
                           workspace.upgrade_id, exc)
        return None


def write_report_locked(workspace, doc) -> Optional[Tuple[str, str]]:
    """``write_report`` holding the workspace lock; nothing (None) while another process
    holds it: that process writes the report when it ends."""
    try:
        with workspace.lock():
            return write_report(workspace, doc)
    except UpgradeError as error:
        if error.error_id != 'workspace-locked':
            raise
        get_logger().info('The report of upgrade %s is left to the other process working on '
                          'it.', workspace.upgrade_id)
        return None


def journal_head(workspace) -> dict:
    """``{"entries", "head"}`` of the workspace's (verified) journal now."""
    entries = workspace.journal.entries()
    return {'entries': len(entries), 'head': entries[-1]['hash'] if entries else GENESIS}


def _kept(workspace, doc):
    """``doc`` plus the sections of the previous report it does not carry itself."""
    missing = [key for key in KEPT_SECTIONS if key not in doc]
    if not missing:
        return doc
    try:
        previous = workspace.read_json(REPORT_JSON, default={}) or {}
    except (OSError, UpgradeError):     # unreadable: this command's report replaces it
        return doc
    doc = dict(doc)
    for key in missing:
        if key in previous:
            doc[key] = previous[key]
            prefix = KEPT_SECTIONS[key]
            doc['left_to_do'] = list(doc.get('left_to_do') or []) + [
                item for item in previous.get('left_to_do') or []
                if str(item).startswith(prefix)]
    return doc


def _write_report(workspace, doc, sections):
    doc = redact(_kept(workspace, doc or {}))
    doc['journal'] = journal_head(workspace)
    summary = summarize(workspace)
    waivers = [entry for entry in workspace.journal.waivers()]
    json_path = workspace.write_json(REPORT_JSON, doc)
    text = redact_text(render_markdown(summary, doc, waivers, sections))
    md_path = workspace.write_bytes(REPORT_MD, text)
    return json_path, md_path


def _cell(value):
    return str(value if value not in (None, '') else '-').replace('|', '\\|').replace(
        '\n', ' ')


def render_markdown(summary, doc, waivers, sections=None) -> str:
    lines = ['# Upgrade {0}'.format(summary['upgrade_id']), '',
             '- mode: {0}'.format(summary.get('mode') or 'unknown'),
             '- status: {0}'.format(summary.get('status') or 'unknown'),
             '- created: {0}'.format(summary.get('created_at') or 'unknown')]
    head = doc.get('journal') or {}
    if head:
        lines.append('- journal: {0} entries, head {1}'.format(
            head.get('entries'), head.get('head')))
    for key in ('source', 'target'):
        if isinstance(doc.get(key), dict) and doc[key]:
            lines.append('- {0}: {1}'.format(key, ', '.join(
                '{0} {1}'.format(k, v) for k, v in sorted(doc[key].items()))))
    error = doc.get('error')
    if isinstance(error, dict):
        lines += ['', '## Error', '',
                  '**{0}**: {1}'.format(error.get('id'), error.get('message'))]
        for hint in error.get('hints') or []:
            lines.append('- {0}'.format(hint))

    steps = summary['steps']
    done = [row for row in steps if row['status'] in FINISHED]
    failed = [row for row in steps if row['status'] in ('failed', 'interrupted')]
    pending = [row for row in steps if row not in done and row not in failed]
    counts = '{0} done, {1} failed, {2} pending.'.format(len(done), len(failed), len(pending))
    lines += ['', '## Steps', '', counts, '']
    if steps:
        lines += ['| runbook | step | status | started | ended | error |',
                  '|---|---|---|---|---|---|']
        for row in steps:
            lines.append('| {0} | {1} | {2} | {3} | {4} | {5} |'.format(*map(_cell, (
                row.get('runbook'), row['id'], row['status'], row.get('started_at'),
                row.get('ended_at'), row.get('error_id')))))

    checks = doc.get('checks') or []
    if checks:
        lines += ['', '## Checks', '', '| check | severity | status | message |',
                  '|---|---|---|---|']
        for check in checks:
            lines.append('| {0} | {1} | {2} | {3} |'.format(*map(_cell, (
                check.get('id'), check.get('severity'), check.get('status'),
                check.get('message')))))

    lines += ['', '## Warnings', '']
    warnings = doc.get('warnings') or []
    lines += ['- [{0}] {1}'.format(item.get('id'), item.get('message'))
              for item in warnings] if warnings else ['None.']

    lines += ['', '## Waivers', '']
    if waivers:
        for entry in waivers:
            details = entry.get('details') or {}
            lines.append('- {0} ({1}): {2}'.format(
                details.get('check'), entry['ts'], details.get('reason')))
    else:
        lines.append('None.')

    lines += ['', '## Left to do', '']
    left = list(doc.get('left_to_do') or [])
    next_command = doc.get('next') or summary.get('next')
    if next_command:
        left.insert(0, 'Run `{0}`.'.format(next_command))
    for row in steps:
        if row['status'] not in FINISHED:
            left.append('Step {0} ({1}): {2}{3}.'.format(
                row['id'], row.get('runbook') or '-', row['status'],
                ' [{0}]'.format(row['error_id']) if row.get('error_id') else ''))
    lines += ['- {0}'.format(item) for item in left] if left else ['Nothing.']
    for title, body in sections or ():
        lines += ['', '## {0}'.format(title), ''] + list(body)
    lines += ['', '## Document', '', '```json',
              json.dumps(doc, indent=2, sort_keys=True, default=str), '```', '']
    return '\n'.join(lines)
