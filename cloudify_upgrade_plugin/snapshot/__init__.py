"""Snapshot archives: streamed, hashed, resumable transfer and zip inspection.

``cloudify_upgrade_plugin.snapshot.transfer``: ``download``/``download_snapshot``,
``upload``/``upload_snapshot``, ``sha256_file``, ``verify_file``, ``progress_reporter``.
``cloudify_upgrade_plugin.snapshot.archive``: ``inspect``, ``read_member``.
Nothing is imported here so that importing the package stays cheap.
"""
