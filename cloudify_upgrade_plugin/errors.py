"""The plugin's one error vocabulary: stable kebab-case ids, hints and exit codes.

Every failure the operator can meet is an ``UpgradeError`` (a ``CloudifyCliError``, so
the host's excepthook prints ``possible_solutions`` if one ever escapes the command
boundary in ``cli.py``).  The id appears in the human output, the ``--json`` document
and the journal; the exit code follows ``docs/cli-contract.md``.
"""
from typing import List, Optional

from cloudify_cli.exceptions import CloudifyCliError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_HEALS_FOUND = 4
EXIT_INCOMPLETE = 5     # verify-heals could not check a manager or a tenant
EXIT_INTERRUPTED = 130      # Ctrl-C (SIGINT): 128 + 2, as shells report it


class UpgradeError(CloudifyCliError):
    """A failure with a stable id, what happened, and what to do about it.

    ``document``: the command's JSON document at the time of the failure (its checks, its
    steps...); the boundary in ``cli.py`` prints it with ``--json`` next to ``error``.
    """

    exit_code = EXIT_FAILED
    default_id = 'upgrade-error'
    document: Optional[dict] = None

    def __init__(self, message: str, error_id: Optional[str] = None,
                 hints: Optional[List[str]] = None, step: Optional[str] = None,
                 details: Optional[dict] = None, document: Optional[dict] = None):
        super().__init__(message)
        self.message = message
        self.error_id = error_id or self.default_id
        self.possible_solutions = list(hints or [])
        self.step = step
        self.details = details or {}
        self.document = document

    @property
    def hints(self) -> List[str]:
        return self.possible_solutions

    def to_dict(self) -> dict:
        doc = {'id': self.error_id, 'message': self.message,
               'hints': self.possible_solutions, 'exit_code': self.exit_code}
        if self.step:
            doc['step'] = self.step
        return doc


class StepFailed(UpgradeError):
    """A step failed while running (exit 1); the journal says where to resume."""
    default_id = 'step-failed'


class BlockedError(UpgradeError):
    """A blocking check failed before anything was changed (exit 3)."""
    exit_code = EXIT_BLOCKED
    default_id = 'blocked'

    def __init__(self, message, checks=None, **kwargs):
        super().__init__(message, **kwargs)
        self.checks = checks or []


class InputError(UpgradeError):
    """Bad input detected by the plugin rather than by click (exit 2)."""
    exit_code = EXIT_USAGE
    default_id = 'bad-input'


class Interrupted(UpgradeError):
    """Ctrl-C (SIGINT) stopped the command (exit 130); the journal records the step that
    was running as ``interrupted`` and the same command resumes it."""
    exit_code = EXIT_INTERRUPTED
    default_id = 'interrupted'
