"""Snapshot archives: streamed, hashed, resumable transfer and zip inspection.

``transfer``: ``download``/``download_snapshot``, ``upload``/``upload_snapshot`` (over a
``manager.connection.Connection``), and - from ``localfile`` and ``progress`` -
``sha256_file``, ``verify_file``, ``progress_reporter``.  ``localfile``: the ``.part`` of
a download, its hash and flush workers, SHA-256 files.  ``archive``: ``inspect``,
``read_member``.  Nothing is imported here so that importing the package stays cheap.
"""
