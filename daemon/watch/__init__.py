"""Watching the photo folders: settle, coalesce, moves and deletes, network shares."""
