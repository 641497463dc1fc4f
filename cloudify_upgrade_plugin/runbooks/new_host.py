"""`new-host`: restore onto a new manager and move the agents (issue 6).

The steps are shared with in-place (runbooks/restore.py); this module only names the mode.
"""
from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.runbooks import restore


def run(options):
    return restore.run(options, versions.MODE_NEW_HOST)
