"""Snapshot archives: streamed, hashed, resumable transfer and zip inspection."""
