"""What the pipeline writes: one photo's row and all its scores, in one transaction.

Every function here runs inside the store writer (``db`` is its
sqlite_utils.Database) so a photo's row, its scores and its composite commit
together or not at all.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..imaging.hashing import PHASH_VERSION
from .composite import composite, group_scores

if TYPE_CHECKING:
    from ..imaging.decode import PhotoMeta
    from .base import Score


#: a row in one of these already holds its file's outcome (when its size and mtime still match)
DONE_STATUSES = ("scored", "error")


@dataclass(frozen=True)
class FileStat:
    """The facts of a file that decide whether it changed."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileStat":
        return cls(int(st.st_size), int(st.st_mtime_ns))

    def already_done(self, size: int | None, mtime_ns: int | None, status: str | None) -> bool:
        """Whether a row (its size, mtime and status) already holds this file's outcome:
        scored or refused for exactly this content, so there is nothing to do."""
        return already_done(size, mtime_ns, status, self.size, self.mtime_ns)


def already_done(row_size: int | None, row_mtime_ns: int | None, status: str | None, size: int, mtime_ns: int) -> bool:
    """:meth:`FileStat.already_done` for a file's size and mtime as they are (the catch-up
    scan asks it of a million files and makes no object for each)."""
    return status in DONE_STATUSES and row_size == size and row_mtime_ns == mtime_ns


def path_key(path: Path | str) -> str:
    """The text a path is stored under: itself when it is valid UTF-8, else its
    bytes with the undecodable ones written as ``\\xNN`` (SQLite keeps UTF-8 only)."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def is_utf8_name(path: Path | str) -> bool:
    try:
        str(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _upsert_image(db: Any, path: str, root: str, values: dict[str, Any], now: float) -> int:
    conn = db.conn
    row = conn.execute("SELECT id FROM images WHERE path = ?", (path,)).fetchone()
    if row is None:
        cols = ["path", "root", "first_seen", "updated_at", *values]
        cur = conn.execute(
            f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (path, root, now, now, *values.values()),
        )
        return int(cur.lastrowid)
    image_id = int(row[0])
    sets = ", ".join(f"{c} = ?" for c in ("root", "updated_at", *values))
    conn.execute(f"UPDATE images SET {sets} WHERE id = ?", (root, now, *values.values(), image_id))
    return image_id


def record_result(
    db: Any,
    *,
    path: Path | str,
    root: Path | str,
    stat: FileStat,
    meta: "PhotoMeta",
    phash: str | None,
    content_hash: str | None,
    scores: Sequence["Score"],
    weights: Mapping[str, float],
    scorer_errors: Mapping[str, str] | None = None,
    replaces: Sequence[str] | None = None,
) -> int:
    """Store a scored photo: its row, every score (replacing older ones) and the composite.

    A scorer that failed on this photo is named in the row's ``error`` while
    the photo still counts as scored with what the other scorers measured.
    With ``replaces`` (score names), the content is known to be the one already
    stored: only those scores are replaced and every other (a learned model's,
    the embeddings) is kept. A file whose size or modification time changed
    since its row was written is new content, and replaces everything."""
    now = time.time()
    taken, source = (meta.taken_at, "exif") if meta.taken_at is not None else (stat.mtime_ns / 1e9, "mtime")
    error = "; ".join(f"{name}: {msg}" for name, msg in sorted((scorer_errors or {}).items())) or None
    values = {
        "size": stat.size, "mtime_ns": stat.mtime_ns, "content_hash": content_hash,
        "width": meta.width, "height": meta.height, "taken_at": taken, "taken_source": source,
        "camera": meta.camera, "exif_json": json.dumps(meta.exif, sort_keys=True) if meta.exif else None,
        "phash": phash, "phash_version": PHASH_VERSION if phash else None,
        "status": "scored", "error": error, "scored_at": now,
    }
    conn = db.conn
    if replaces is not None:
        row = conn.execute("SELECT size, mtime_ns FROM images WHERE path = ?", (path_key(path),)).fetchone()
        if row is None or tuple(row) != (stat.size, stat.mtime_ns):
            replaces = None
    image_id = _upsert_image(db, path_key(path), str(root), values, now)
    if replaces is not None:
        conn.executemany("DELETE FROM scores WHERE image_id = ? AND model = ?", [(image_id, n) for n in replaces])
    else:
        # the file's content is new: scores (and embeddings) of the old content no longer hold
        conn.execute("DELETE FROM scores WHERE image_id = ?", (image_id,))
        conn.execute("DELETE FROM embeddings WHERE image_id = ?", (image_id,))
    conn.executemany(
        "INSERT OR REPLACE INTO scores (image_id, model, task, raw, normalised, model_version, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(image_id, s.name, s.task, s.raw, s.normalised, s.version, now) for s in scores],
    )
    recompute_composite(db, image_id, weights)
    return image_id


def record_error(db: Any, *, path: Path | str, root: Path | str, stat: FileStat | None, reason: str) -> int:
    """Store a file that could not be scored, with the reason; its old scores go."""
    now = time.time()
    values = {
        "size": stat.size if stat else None, "mtime_ns": stat.mtime_ns if stat else None,
        "status": "error", "error": reason, "composite": None, "coverage": None, "groups_json": None, "scored_at": now,
    }
    image_id = _upsert_image(db, path_key(path), str(root), values, now)
    db.conn.execute("DELETE FROM scores WHERE image_id = ?", (image_id,))
    return image_id


def recompute_composite(db: Any, image_id: int, weights: Mapping[str, float]) -> None:
    """Recompute a photo's composite, coverage and group scores from its ``scores`` rows."""
    rows = db.conn.execute("SELECT task, normalised FROM scores WHERE image_id = ?", (image_id,)).fetchall()
    result = composite(group_scores((t, v) for t, v in rows), weights)
    db.conn.execute(
        "UPDATE images SET composite = ?, coverage = ?, groups_json = ?, updated_at = ? WHERE id = ?",
        (result.value, json.dumps(list(result.coverage)), json.dumps(result.groups, sort_keys=True), time.time(), image_id),
    )


def mark_deleted(db: Any, paths: Iterable[Path | str]) -> int:
    """Mark rows whose file is gone as deleted (their scores stay, for the record). Returns how many changed."""
    now = time.time()
    keys = [(now, path_key(p)) for p in paths]
    # the rows this statement changed (total_changes would count the status-count triggers' updates too)
    return db.conn.executemany("UPDATE images SET status = 'deleted', updated_at = ? WHERE path = ? AND status != 'deleted'",
                               keys).rowcount


def record_telemetry(db: Any, stages: Mapping[str, tuple[int, float, float]], at: float | None = None) -> None:
    """Append per-stage timings: stage -> (count, total seconds, max seconds)."""
    now = at or time.time()
    db.conn.executemany(
        "INSERT INTO telemetry (at, stage, count, total_seconds, max_seconds) VALUES (?, ?, ?, ?, ?)",
        [(now, stage, c, total, peak) for stage, (c, total, peak) in stages.items() if c],
    )
