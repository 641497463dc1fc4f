"""Attach the plugin's entry-point commands to cfy's root group.

The logic lives in the stdlib-only ``_cloudify_upgrade_hook`` module (it must work even
when this package is broken or gone); this module is the package-side entry used by the
fallbacks (``cfy-upgrade``, ``python -m cloudify_upgrade_plugin``) and by tests, which
may run from an editable install that carries no ``.pth``.
"""
import sys
from typing import Any, List, Optional

import click
from cloudify_cli.main import _cfy

from cloudify_upgrade_plugin.cli import upgrade


def cfy_root() -> click.Group:
    """cfy's root click group, with the plugin commands attached (even if disabled)."""
    if 'upgrade' not in _cfy.commands:
        _cfy.add_command(upgrade, 'upgrade')
    return _cfy


def main(argv: Optional[List[str]] = None) -> Any:
    """`cfy-upgrade ARGS` behaves exactly like `cfy upgrade ARGS`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    root = cfy_root()
    return root.main(args=['upgrade'] + argv, prog_name='cfy')
