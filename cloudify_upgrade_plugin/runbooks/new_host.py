"""`new-host`: restore onto a new manager and move the agents (issue 6)."""
from cloudify_upgrade_plugin.errors import NotImplementedYet


def run(options):
    raise NotImplementedYet('new-host', 6)
