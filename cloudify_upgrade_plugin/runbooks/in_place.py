"""`in-place`: restore onto the rebuilt manager at the same address (issue 7)."""
from cloudify_upgrade_plugin.errors import NotImplementedYet


def run(options):
    raise NotImplementedYet('in-place', 7)
