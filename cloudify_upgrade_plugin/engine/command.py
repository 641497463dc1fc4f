"""The shape every upgrade command shares: checks -> runner -> report -> render.

``Command.run()`` is the one path of prepare, new-host, in-place and verify-heals:

1. ``check()``: everything before anything changes (open the managers and the workspace,
   run the checks that block); a failure here is raised as it is (a ``BlockedError``
   carries its ``document``: exit 3, nothing changed, no report);
2. ``execute()``: the work (usually a ``Runner`` over the command's runbook);
3. on an ``UpgradeError`` from it, ``failed(error)`` sets the error's ``document`` (the
   ``--json`` output) and returns the document to report, or None (no report); the error
   is raised again;
4. otherwise ``document()`` is reported (``report``: report.json / report.md of the
   workspace) and rendered (``render``: the document with ``--json``, else human lines);
5. the ``Outcome`` (the document and the exit code) goes back to ``cli.py``, which exits.
"""
from dataclasses import dataclass
from typing import Optional

from cloudify_upgrade_plugin.engine.report import write_report
from cloudify_upgrade_plugin.errors import EXIT_OK, UpgradeError


@dataclass(frozen=True)
class Outcome:
    """What a command produced: its JSON document and the exit code it ends with."""

    document: dict
    exit_code: int = EXIT_OK


class Command:
    """Base class of the commands; subclasses set ``workspace`` once it is known."""

    workspace = None

    def run(self) -> Outcome:
        self.check()
        try:
            self.execute()
        except UpgradeError as error:
            document = self.failed(error)
            if document is not None:
                self.report(document)
            raise
        document = self.document()
        self.report(document)
        self.render(document)
        return Outcome(document, self.exit_code(document))

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
        write_report(self.workspace, document)

    def render(self, document: dict) -> None:
        raise NotImplementedError

    def exit_code(self, document: dict) -> int:
        return EXIT_OK
