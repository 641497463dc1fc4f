"""`python -m cloudify_upgrade_plugin ARGS`: the same as `cfy upgrade ARGS`."""
from cloudify_upgrade_plugin.registration import main

if __name__ == '__main__':
    main()
