"""Read-only access for the CLI and the dashboard.

A reader never writes and never blocks the daemon: it opens the database with
``mode=ro`` and WAL lets it read while the writer commits. The only writes
readers may ask for go through :func:`enqueue_command`, which inserts a row in
``commands`` for the daemon to act on (a tiny transaction, never a lock held).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from .db import BUSY_TIMEOUT_MS, connect_readonly
from .schema import CHANGES_SCHEMA_VERSION, COMMAND_KINDS, COUNTS_SCHEMA_VERSION, IMAGE_STATUSES


class StoreReader:
    """Read-only queries the CLI and dashboard need. Methods return plain dicts."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.conn = connect_readonly(self.path)
        self.conn.row_factory = sqlite3.Row
        self.schema_version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    def scalar(self, sql: str, params: tuple | dict = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    # -- images and scores ------------------------------------------------------------------

    def status_counts(self) -> dict[str, int]:
        """How many images have each status ({status: n}, every status present).

        Read from ``image_counts``, which the schema's triggers keep exact; a database the
        daemon has not migrated yet (schema before version 3) is counted row by row.
        """
        counts = {s: 0 for s in IMAGE_STATUSES}
        sql = ("SELECT status, n FROM image_counts" if self.schema_version >= COUNTS_SCHEMA_VERSION
               else "SELECT status, count(*) FROM images GROUP BY status")
        for row in self.conn.execute(sql):
            counts[row[0]] = row[1]
        return counts

    def image_changes(self) -> int | None:
        """A number that moves whenever a photo is added or removed or its path, status,
        composite or time changes (``image_changes``, kept by triggers); None for a
        database the daemon has not migrated to it yet."""
        if self.schema_version < CHANGES_SCHEMA_VERSION:
            return None
        return int(self.conn.execute("SELECT n FROM image_changes WHERE id = 1").fetchone()[0])

    def images_with_scores(self, *, include_deleted: bool = True) -> list[dict[str, Any]]:
        """Every image with its scores as {name: normalised} and its composite."""
        where = "" if include_deleted else "WHERE i.status != 'deleted'"
        images = self.query(
            f"SELECT i.id, i.path, i.status, i.error, i.composite, i.coverage, i.groups_json, i.taken_at,"
            f" i.width, i.height, i.phash, i.moment, i.cluster FROM images i {where} ORDER BY i.path"
        )
        scores: dict[int, dict[str, float]] = {}
        raws: dict[int, dict[str, float]] = {}
        for row in self.conn.execute("SELECT image_id, model, normalised, raw FROM scores"):
            scores.setdefault(row[0], {})[row[1]] = row[2]
            raws.setdefault(row[0], {})[row[1]] = row[3]
        for img in images:
            img["scores"] = scores.get(img["id"], {})
            img["raw"] = raws.get(img["id"], {})
            img["coverage"] = json.loads(img["coverage"]) if img["coverage"] else []
            img["groups"] = json.loads(img.pop("groups_json")) if img.get("groups_json") else {}
        return images

    # -- daemon, models, commands ----------------------------------------------------------

    def daemon_row(self) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM daemon WHERE id = 1")
        return rows[0] if rows else None

    def models(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM models ORDER BY name")

    def model_events(self, model: str, limit: int = 200) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM model_events WHERE model = ? ORDER BY at DESC, id DESC LIMIT ?", (model, limit))


def enqueue_command(db_path: Path | str, kind: str, arg: str | None = None) -> int:
    """Ask the daemon to do something (rescan, reselect, retry-model, pin, unpin, reject).

    Returns the command's id. Raises ValueError for an unknown kind.
    """
    if kind not in COMMAND_KINDS:
        raise ValueError(f"unknown command {kind!r}; expected one of {', '.join(COMMAND_KINDS)}")
    conn = sqlite3.connect(str(db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur = conn.execute("INSERT INTO commands (kind, arg, created) VALUES (?, ?, ?)", (kind, arg, time.time()))
        return int(cur.lastrowid)
    finally:
        conn.close()
