"""SSH access to manager hosts (fabric), driven by the cfy profile's SSH settings.

``ssh``: ``Host`` (commands, files, services), ``HostUnavailable``, ``RemoteCommandFailed``
(defined in ``errors``); ``dirs``: directory copies (tar over SSH); ``known_hosts``: host
keys pinned on first use.  Nothing is imported here so that importing the package stays
cheap.
"""
