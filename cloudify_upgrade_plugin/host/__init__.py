"""SSH access to manager hosts (fabric), driven by the cfy profile's SSH settings.

The implementation is ``cloudify_upgrade_plugin.host.ssh`` (``Host``, ``HostUnavailable``,
``RemoteCommandFailed``); it is not imported here so that importing the package stays cheap.
"""
