"""Moves, renames and deletes in the store, without rescoring.

Each function runs inside the store writer (``db`` is its sqlite_utils
Database), so a move is one committed step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..scoring.record import FileStat, mark_deleted, path_key


def _prefix_range(folder: Path | str) -> tuple[str, str]:
    prefix = path_key(folder).rstrip("/") + "/"
    return prefix, prefix[:-1] + chr(ord("/") + 1)


def move_path(db: Any, src: Path | str, dest: Path | str, root: Path | str) -> bool:
    """Give the row of ``src`` the path ``dest`` (a rename inside the watched tree).

    A row already at ``dest`` (renamed over) goes: its file was replaced.
    Returns False when ``src`` had no live row (the caller scores ``dest``)."""
    conn = db.conn
    row = conn.execute("SELECT id FROM images WHERE path = ? AND status != 'deleted'", (path_key(src),)).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM images WHERE path = ? AND id != ?", (path_key(dest), row[0]))
    conn.execute("UPDATE images SET path = ?, root = ?, updated_at = ? WHERE id = ?",
                 (path_key(dest), str(root), time.time(), row[0]))
    return True


def move_folder(db: Any, src: Path | str, dest: Path | str, root: Path | str) -> int:
    """Re-path every row under folder ``src`` to the same place under ``dest``; returns how many.
    The folder's own row (the error row of a folder named like a photo) is marked deleted:
    the scan of ``dest`` that follows records what the new name is."""
    conn = db.conn
    mark_deleted(db, [src])
    lo, hi = _prefix_range(src)
    dest_prefix = path_key(dest).rstrip("/") + "/"
    rows = conn.execute("SELECT id, path FROM images WHERE path >= ? AND path < ?", (lo, hi)).fetchall()
    now = time.time()
    for image_id, old in rows:
        new = dest_prefix + old[len(lo):]
        conn.execute("DELETE FROM images WHERE path = ? AND id != ?", (new, image_id))
        conn.execute("UPDATE images SET path = ?, root = ?, updated_at = ? WHERE id = ?", (new, str(root), now, image_id))
    return len(rows)


def mark_folder_deleted(db: Any, folder: Path | str) -> int:
    """Mark deleted every row under ``folder``, and the folder's own row: a folder named
    like a photo (``x.jpg/``) has an error row saying so. Returns how many changed."""
    lo, hi = _prefix_range(folder)
    own = mark_deleted(db, [folder])
    return own + db.conn.execute("UPDATE images SET status = 'deleted', updated_at = ? WHERE path >= ? AND path < ? AND status != 'deleted'",
                                 (time.time(), lo, hi)).rowcount


def unchanged_row(conn: Any, path: Path | str, size: int, mtime_ns: int) -> bool:
    """Whether ``path`` already has a scored (or error) row for exactly this size and mtime."""
    row = conn.execute("SELECT size, mtime_ns, status FROM images WHERE path = ?", (path_key(path),)).fetchone()
    return row is not None and FileStat(size, mtime_ns).already_done(*row)


def vanished_candidates(conn: Any, size: int) -> list[tuple[int, str, str | None]]:
    """Rows of this size marked deleted whose content could reappear: (id, path, content_hash).
    (Found through the status index: cheap however large the library.)"""
    rows = conn.execute(
        "SELECT id, path, content_hash FROM images WHERE status = 'deleted' AND size = ? AND content_hash IS NOT NULL",
        (size,),
    ).fetchall()
    return [(int(i), p, h) for i, p, h in rows]


def relink(db: Any, image_id: int, path: Path | str, root: Path | str, size: int, mtime_ns: int) -> None:
    """A vanished row's photo turned up at ``path``: move the row there, keeping its scores."""
    conn = db.conn
    conn.execute("DELETE FROM images WHERE path = ? AND id != ?", (path_key(path), image_id))
    conn.execute(
        "UPDATE images SET path = ?, root = ?, size = ?, mtime_ns = ?, status = 'scored', updated_at = ? WHERE id = ?",
        (path_key(path), str(root), size, mtime_ns, time.time(), image_id),
    )
