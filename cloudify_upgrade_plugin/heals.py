"""`verify-heals`: find heal executions that may have duplicated VMs (issue 8)."""
from cloudify_upgrade_plugin.errors import NotImplementedYet


def run(options):
    raise NotImplementedYet('verify-heals', 8)
