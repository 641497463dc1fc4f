"""`status`: read a workspace's journal and say what is done and what is next (issue 4)."""
from cloudify_upgrade_plugin.errors import NotImplementedYet


def run(options):
    raise NotImplementedYet('status', 4)
