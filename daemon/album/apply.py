"""Writing a planned selection: moments and clusters, candidates, picks and
what changed, a batch of moments per writer transaction (so scoring's commits
get in between), then the run's summary."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from ..config import AlbumConfig
from .plan import Plan, RunScope


@dataclass(frozen=True)
class SelectionResult:
    """What a selection run did."""

    run_id: int
    trigger: str
    mode: str
    photos: int
    moments: int
    moments_recomputed: int
    clusters: int
    picks: int
    added: tuple[int, ...]
    removed: tuple[int, ...]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "trigger": self.trigger,
            "mode": self.mode,
            "photos": self.photos,
            "moments": self.moments,
            "moments_recomputed": self.moments_recomputed,
            "clusters": self.clusters,
            "picks": self.picks,
            "added": len(self.added),
            "removed": len(self.removed),
            "seconds": round(self.seconds, 3),
        }


def _in(values: set[int] | list[int]) -> str:
    return json.dumps(sorted(int(v) for v in values))


def album_units(candidates: list[tuple[int, int, float | None, int]], album: AlbumConfig) -> set[int]:
    """Which clusters the size policy keeps, from (cluster, image id, unit score, forced) rows.

    ``best_per_cluster`` keeps every cluster; ``top_n`` the N best clusters
    (by their best composite; pinned ones always stay and count toward N);
    ``top_fraction`` that fraction of the clusters, rounded up.
    """
    units: dict[int, tuple[float, bool]] = {}
    for cluster, _image, score, forced in candidates:
        best, was_forced = units.get(cluster, (-1.0, False))
        units[cluster] = (max(best, score if score is not None else -1.0), was_forced or bool(forced))
    if album.policy == "best_per_cluster":
        return set(units)
    if album.policy == "top_n":
        limit = album.top_n if album.top_n is not None else len(units)
    else:
        fraction = album.top_fraction if album.top_fraction is not None else 1.0
        limit = math.ceil(min(1.0, fraction) * len(units))
    keep = {c for c, (_, forced) in units.items() if forced}
    for cluster, _ in sorted(((c, s) for c, (s, f) in units.items() if not f), key=lambda cs: (-cs[1], cs[0])):
        if len(keep) >= limit:
            break
        keep.add(cluster)
    return keep


@dataclass
class Changes:
    """The album's net changes over a run's batches: a pick a batch removes and a
    later one gives back (its moment split across batches) is no change."""

    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)

    def note(self, added: set[int], removed: set[int]) -> None:
        for i in removed:
            if i in self.added:
                self.added.discard(i)
            else:
                self.removed.add(i)
        for i in added:
            if i in self.removed:
                self.removed.discard(i)
            else:
                self.added.add(i)


def begin_run(db: sqlite_utils.Database, scope: RunScope, trigger: str) -> int:
    """Record the run as begun (finished stays empty until :func:`finish_run`)."""
    return int(
        db.conn.execute(
            "INSERT INTO selection_runs (trigger, mode, settings, started) VALUES (?, ?, ?, ?)",
            (trigger, scope.mode, scope.settings, scope.started),
        ).lastrowid
    )


#: a reason as stored: JSON with sorted keys (one encoder for the run, not one a call)
_encode_reason = json.JSONEncoder(sort_keys=True).encode

CANDIDATE_COLUMNS = "image_id, moment, cluster, rank, composite, unit_score, forced, reason"
PICK_COLUMNS = "image_id, moment, cluster, rank, composite, reason"


def apply_batch(db: sqlite_utils.Database, plan: Plan, album: AlbumConfig, run_id: int, changes: Changes) -> None:
    """Write one batch (inside the writer's transaction): its images' moments and
    clusters, their candidates, and (best_per_cluster) their picks.

    Only rows that differ from the stored ones are written: a full reselection of a
    library that did not change reads its batches and writes nothing, and a pick
    keeps the ``run_id`` of the run that last changed it."""
    conn = db.conn
    conn.executemany("UPDATE images SET moment = ?, cluster = ? WHERE id = ?", plan.image_updates)
    scope = (_in(plan.image_ids),)
    rows: dict[int, tuple] = {}
    for pick in plan.clusters:
        moment = plan.cluster_moment[pick.cluster]
        for choice in pick.choices:
            rows[choice.image_id] = (choice.image_id, moment, pick.cluster, choice.rank, choice.composite, pick.unit_score,
                                     int(choice.forced), _encode_reason(choice.reason))
    stored = _stored(conn, "album_candidates", CANDIDATE_COLUMNS, scope)
    conn.executemany("DELETE FROM album_candidates WHERE image_id = ?", [(i,) for i in sorted(stored.keys() - rows.keys())])
    conn.executemany(
        f"INSERT OR REPLACE INTO album_candidates ({CANDIDATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [r for i, r in rows.items() if stored.get(i) != r],
    )
    if album.policy != "best_per_cluster":
        return  # the size policy needs every candidate: finish_run picks
    old = _stored(conn, "picks", PICK_COLUMNS, scope)
    desired = {i: (i, r[1], r[2], r[3], r[4], r[7]) for i, r in rows.items()}
    removed = old.keys() - desired.keys()
    conn.executemany("DELETE FROM picks WHERE image_id = ?", [(i,) for i in sorted(removed)])
    conn.executemany(
        f"INSERT OR REPLACE INTO picks (run_id, {PICK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(run_id, *r) for i, r in desired.items() if old.get(i) != r],
    )
    changes.note(desired.keys() - old.keys(), removed)


def _stored(conn: sqlite3.Connection, table: str, columns: str, scope: tuple[str]) -> dict[int, tuple]:
    """The stored rows of ``table`` for the images in ``scope`` (a JSON list), by image id."""
    return {r[0]: r for r in conn.execute(f"SELECT {columns} FROM {table} WHERE image_id IN (SELECT value FROM json_each(?))", scope)}


def stray_rows(conn: sqlite3.Connection) -> tuple[list[int], list[int]]:
    """After a full run's batches (on the read connection): candidates and picks of
    images no batch saw (deleted from the table, or no longer scored meanwhile)."""
    def strays(table: str) -> list[int]:
        return [r[0] for r in conn.execute(
            f"SELECT t.image_id FROM {table} t LEFT JOIN images i ON i.id = t.image_id WHERE i.id IS NULL OR i.status != 'scored'")]
    return strays("album_candidates"), strays("picks")


def settle_run(db: sqlite_utils.Database, album: AlbumConfig, run_id: int, changes: Changes,
               strays: tuple[list[int], list[int]]) -> None:
    """After the last batch: clear the strays and apply the size policy."""
    conn = db.conn
    candidates, picks = strays
    conn.execute("DELETE FROM album_candidates WHERE image_id IN (SELECT value FROM json_each(?))", (_in(candidates),))
    gone = {r[0] for r in conn.execute("SELECT image_id FROM picks WHERE image_id IN (SELECT value FROM json_each(?))", (_in(picks),))}
    conn.executemany("DELETE FROM picks WHERE image_id = ?", [(i,) for i in sorted(gone)])
    changes.note(set(), gone)
    if album.policy != "best_per_cluster":
        old = {r[0] for r in conn.execute("SELECT image_id FROM picks")}
        everything = conn.execute("SELECT cluster, image_id, unit_score, forced FROM album_candidates").fetchall()
        keep = album_units(everything, album)
        desired = {image for cluster, image, _, _ in everything if cluster in keep}
        del everything
        removed = old - desired
        conn.executemany("DELETE FROM picks WHERE image_id = ?", [(i,) for i in sorted(removed)])
        conn.execute(  # the picks that are new or whose candidate row changed
            "INSERT OR REPLACE INTO picks (image_id, run_id, moment, cluster, rank, composite, reason)"
            " SELECT c.image_id, ?, c.moment, c.cluster, c.rank, c.composite, c.reason FROM album_candidates c"
            " LEFT JOIN picks p ON p.image_id = c.image_id WHERE c.image_id IN (SELECT value FROM json_each(?))"
            " AND (p.image_id IS NULL OR p.moment IS NOT c.moment OR p.cluster IS NOT c.cluster OR p.rank IS NOT c.rank"
            " OR p.composite IS NOT c.composite OR p.reason IS NOT c.reason)",
            (run_id, _in(desired)),
        )
        changes.note(desired - old, removed)


def record_changes(db: sqlite_utils.Database, rows: list[tuple[int, int, str]]) -> None:
    """Some of a run's (run id, image id, added|removed) rows; a first run adds every pick,
    so the caller writes them a slice per transaction."""
    db.conn.executemany("INSERT INTO pick_changes (run_id, image_id, change) VALUES (?, ?, ?)", rows)


def run_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """The album's totals, counted on the read connection (not inside a write transaction)."""
    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {
        "photos": one("SELECT count(*) FROM images WHERE status = 'scored'"),
        "moments": one("SELECT count(DISTINCT moment) FROM images"),
        "clusters": one("SELECT count(DISTINCT cluster) FROM album_candidates"),
        "picks": one("SELECT count(*) FROM picks"),
    }


def close_run(db: sqlite_utils.Database, scope: RunScope, run_id: int, trigger: str, changes: Changes,
              counts: dict[str, int]) -> SelectionResult:
    """Record the run as finished, with its totals; returns what it did."""
    finished = time.time()
    db.conn.execute(
        "UPDATE selection_runs SET finished = ?, photos = ?, moments = ?, moments_recomputed = ?, clusters = ?, picks = ?,"
        " added = ?, removed = ? WHERE id = ?",
        (finished, counts["photos"], counts["moments"], scope.moments_recomputed, counts["clusters"], counts["picks"],
         len(changes.added), len(changes.removed), run_id),
    )
    return SelectionResult(
        run_id=run_id,
        trigger=trigger,
        mode=scope.mode,
        photos=counts["photos"],
        moments=counts["moments"],
        moments_recomputed=scope.moments_recomputed,
        clusters=counts["clusters"],
        picks=counts["picks"],
        added=tuple(sorted(changes.added)),
        removed=tuple(sorted(changes.removed)),
        seconds=finished - scope.started,
    )
