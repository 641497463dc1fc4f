"""`plan` and `prepare`: everything before the old manager is touched (issue 5)."""
from cloudify_upgrade_plugin.errors import NotImplementedYet


def plan(options):
    raise NotImplementedYet('plan', 5)


def prepare(options):
    raise NotImplementedYet('prepare', 5)
