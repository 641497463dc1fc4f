"""The errors of SSH access to a manager host."""
from cloudify_upgrade_plugin.errors import UpgradeError


class HostUnavailable(UpgradeError):
    """The manager host cannot be reached or logged into over SSH."""
    default_id = 'ssh-failed'


class RemoteCommandFailed(UpgradeError):
    """A command on the manager host exited non-zero."""
    default_id = 'ssh-command-failed'

    def __init__(self, message, rc=None, stderr='', **kwargs):
        super().__init__(message, **kwargs)
        self.rc = rc
        self.stderr = stderr
