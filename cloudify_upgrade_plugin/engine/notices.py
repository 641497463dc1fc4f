"""Warnings the operator must see: one path from the checks and the steps to the output and
the report (issue 17 item 18).

A warning is ``{"id", "step", "message"}``: something that did not stop the upgrade but
needs the operator (a licence that could not be read, plugins built for another Python,
old users left without passwords, auto-heal left running...).  They come from two places:

- checks whose status is ``warn`` (``engine.checks``): the source checks prepare keeps in
  workspace.json ``checks``, the target checks check-target keeps in ``target_checks``, and
  the ``checks`` of the document being built (plan, a blocked command);
- steps, through ``warn(workspace, warning_id, message, step)``: logged at once (seen with
  ``--json`` too, on stderr) and kept in workspace.json ``warnings`` (one per id and step;
  a later one replaces it), so that every later command carries it.

``collect(workspace, checks)`` gathers both, in that order, without duplicates; the command
skeleton (``engine.command``) puts the result into every document as ``warnings`` (so into
the ``--json`` output and report.json), prints it after the human output (``lines``), and
the report renders it as its ``Warnings`` section.
"""
from typing import Iterable, List, Optional

from cloudify_upgrade_plugin.engine.redact import redact_text
from cloudify_upgrade_plugin.log import warn_always

META_KEY = 'warnings'
# workspace.json keys holding evaluated checks, and the step that made them
CHECK_KEYS = (('checks', 'check-source'), ('target_checks', 'check-target'))


def warn(workspace, warning_id: str, message: str, step: Optional[str] = None,
         announce: bool = True) -> dict:
    """Log the warning now (unless ``announce`` is False: it was logged already) and keep
    it in the workspace for the output and the report."""
    message = redact_text(str(message))
    if announce:
        warn_always('%s', message)
    item = {'id': warning_id, 'step': step, 'message': message}
    if workspace is not None:
        kept = [entry for entry in workspace.meta.get(META_KEY) or []
                if isinstance(entry, dict) and
                (entry.get('id'), entry.get('step')) != (warning_id, step)]
        workspace.update_meta(**{META_KEY: kept + [item]})
    return item


def from_checks(checks: Iterable, step: Optional[str] = None) -> List[dict]:
    """The warnings of evaluated checks (``Check`` objects or their ``to_dict()``)."""
    found = []
    for check in checks or ():
        doc = check.to_dict() if hasattr(check, 'to_dict') else check
        if isinstance(doc, dict) and doc.get('status') == 'warn':
            found.append({'id': doc.get('id'), 'step': step, 'message': doc.get('message')})
    return found


def collect(workspace, checks: Iterable = ()) -> List[dict]:
    """Every warning of the upgrade so far: its checks', its steps', and those of
    ``checks`` (the document's own), without duplicates."""
    found = []
    if workspace is not None:
        meta = workspace.meta
        for key, step in CHECK_KEYS:
            found.extend(from_checks(meta.get(key), step))
        found.extend(entry for entry in meta.get(META_KEY) or [] if isinstance(entry, dict))
    found.extend(from_checks(checks))
    unique, seen = [], set()
    for item in found:
        key = (item.get('id'), item.get('message'))
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def lines(warnings: Iterable[dict]) -> List[str]:
    """The human lines: ``Warning [id]: message``."""
    return ['Warning [{0}]: {1}'.format(item.get('id'), item.get('message'))
            for item in warnings or ()]
