"""The plugin's one error vocabulary: stable kebab-case ids, hints and exit codes.

Every failure the operator can meet is an ``UpgradeError`` (a ``CloudifyCliError``, so
the host's excepthook prints ``possible_solutions`` if one ever escapes the command
boundary in ``cli.py``).  The id appears in the human output, the ``--json`` document
and the journal; the exit code follows ``docs/cli-contract.md``.
"""
from cloudify_cli.exceptions import CloudifyCliError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_HEALS_FOUND = 4


class UpgradeError(CloudifyCliError):
    """A failure with a stable id, what happened, and what to do about it."""

    exit_code = EXIT_FAILED
    default_id = 'upgrade-error'

    def __init__(self, message, error_id=None, hints=None, step=None,
                 details=None):
        super(UpgradeError, self).__init__(message)
        self.message = message
        self.error_id = error_id or self.default_id
        self.possible_solutions = list(hints or [])
        self.step = step
        self.details = details or {}

    @property
    def hints(self):
        return self.possible_solutions

    def to_dict(self):
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
        super(BlockedError, self).__init__(message, **kwargs)
        self.checks = checks or []


class InputError(UpgradeError):
    """Bad input detected by the plugin rather than by click (exit 2)."""
    exit_code = EXIT_USAGE
    default_id = 'bad-input'


class NotImplementedYet(UpgradeError):
    """A contract command whose behaviour has not been delivered yet (exit 1)."""
    default_id = 'not-implemented-yet'

    def __init__(self, command, issue):
        super(NotImplementedYet, self).__init__(
            '`cfy upgrade {0}` is not implemented yet (tracked in issue {1}); '
            'it has changed nothing.'.format(command, issue),
            hints=['Follow the manual procedure for this step, or use a later '
                   'release of cloudify-upgrade-plugin.'])
