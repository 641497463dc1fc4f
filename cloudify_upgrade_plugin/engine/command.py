"""The shape every upgrade command shares: checks -> runner -> report -> render.

``Command.run()`` is the one path of prepare, new-host, in-place and verify-heals:

1. ``check()``: everything before anything changes (open the managers and the workspace,
   run the checks that block); a failure here is raised (a ``BlockedError`` carries its
   ``document``: exit 3, nothing changed); once ``workspace`` is known it is handled like
   a failure of ``execute`` (3.), except bad input (``InputError``, exit 2), which writes
   nothing;
2. ``execute()``: the work (usually a ``Runner`` over the command's runbook);
3. on an ``UpgradeError`` from it, ``failed(error)`` sets the error's ``document`` (the
   ``--json`` output) and returns the document to report, or None (no report); the error
   is raised again;
4. otherwise ``document()`` is reported (``report``: report.json / report.md of the
   workspace) and rendered (``render``: the document with ``--json``, else human lines);
5. the ``Outcome`` (the document and the exit code) goes back to ``cli.py``, which exits.

Every document reported or shown carries ``warnings`` (``engine.notices.collect``: the
upgrade's warn-status checks and the warnings its steps recorded), printed after the human
output too (issue 17 item 18).  The report is written after the command's last journal entry
and carries the journal's head (issue 17 item 19), so every command that acts on a
workspace rewrites it, whatever its end.
"""
from dataclasses import dataclass
from typing import Optional

from cloudify_upgrade_plugin import log
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.report import write_report_locked
from cloudify_upgrade_plugin.errors import EXIT_OK, InputError, UpgradeError

# Errors saying the workspace is another process's or another upgrade's: no report.
NOT_OURS = ('workspace-locked', 'fingerprint-changed')


@dataclass(frozen=True)
class Outcome:
    """What a command produced: its JSON document and the exit code it ends with."""

    document: dict
    exit_code: int = EXIT_OK


class Command:
    """Base class of the commands; subclasses set ``workspace`` once it is known."""

    workspace = None

    def run(self) -> Outcome:
        try:
            self.check()
        except UpgradeError as error:
            if self.workspace is not None and not isinstance(error, InputError):
                self._failed(error)
            raise
        try:
            self.execute()
        except UpgradeError as error:
            self._failed(error)
            raise
        document = self.with_warnings(self.document())
        self.report(document)
        self.render(document)
        self.render_warnings(document)
        return Outcome(document, self.exit_code(document))

    def _failed(self, error: UpgradeError) -> None:
        if error.error_id in NOT_OURS:
            return      # the workspace belongs to another process or upgrade: leave it be
        document = self.failed(error)
        if document is not None:
            document = self.with_warnings(document)
            if error.document is not None:
                error.document['warnings'] = document['warnings']
            self.report(document)
            self.render_warnings(document)

    def with_warnings(self, document: dict) -> dict:
        """``document`` with ``warnings``: every warning of the upgrade so far."""
        if document is None:
            return document
        document = dict(document)
        document['warnings'] = notices.collect(self.workspace, document.get('checks'))
        return document

    def render_warnings(self, document: dict) -> None:
        """The warnings after the human output (with ``--json`` they are in the document)."""
        if log.json_mode():
            return
        logger = log.get_logger()
        for line in notices.lines(document.get('warnings')):
            logger.warning(line)

    def check(self) -> None:
        """Everything before anything changes; raise to stop."""

    def execute(self) -> None:
        raise NotImplementedError

    def failed(self, error: UpgradeError) -> Optional[dict]:
        """Set ``error.document`` for a failure of ``execute``; the document to report
        (None: nothing is reported)."""
        return None

    def document(self) -> dict:
        raise NotImplementedError

    def report(self, document: dict) -> None:
        write_report_locked(self.workspace, document)

    def render(self, document: dict) -> None:
        raise NotImplementedError

    def exit_code(self, document: dict) -> int:
        return EXIT_OK
