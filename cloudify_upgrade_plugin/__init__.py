"""cloudify-upgrade-plugin: `cfy upgrade`, the Manager upgrade procedure as a cfy command group.

This package owns nothing at import time: importing it must stay cheap, because
`cfy --help` may import it through the start-up hook. See docs/ARCHITECTURE.md.
"""
from cloudify_upgrade_plugin.__version__ import __version__  # noqa: F401
