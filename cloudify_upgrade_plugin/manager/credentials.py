"""Who the plugin logs in to a manager as: a username and password, or an API token.

``Credentials`` is frozen and never shows a secret: its ``repr`` masks the password and the
token, so a manager, an error or a log line that prints it leaks nothing.  ``label`` says
where the credentials came from (``'target'``, ``'source'`` profile...) and is not part of
equality: the same username and password from two places are the same credentials.
Every secret is registered with the redaction (``engine.redact``) as soon as a manager
uses it.
"""
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True, repr=False)
class Credentials:
    """Basic-auth credentials (``username`` and ``password``) or an API ``token``."""

    username: Optional[str] = None
    password: Optional[str] = None
    token: Optional[str] = None
    label: Optional[str] = field(default=None, compare=False)

    def __repr__(self) -> str:
        return 'Credentials(username={0!r}, password={1}, token={2}, label={3!r})'.format(
            self.username, '***' if self.password else None, '***' if self.token else None,
            self.label)

    @property
    def basic(self) -> bool:
        """True when they are a username and a password (Basic auth)."""
        return bool(self.username and self.password)
