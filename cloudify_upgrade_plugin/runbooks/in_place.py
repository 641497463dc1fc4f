"""`in-place`: restore onto the rebuilt manager at the same address (issue 7).

The steps are shared with new-host (runbooks/restore.py); this module only names the mode.
"""
from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.runbooks import restore


def run(options):
    return restore.run(options, versions.MODE_IN_PLACE)
