"""Writing a planned selection: moments and clusters, candidates, picks and
what changed, all in one writer transaction."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from ..config import AlbumConfig
from .plan import Plan


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


def apply_plan(db: sqlite_utils.Database, plan: Plan, album: AlbumConfig, trigger: str) -> SelectionResult:
    """Write ``plan`` (inside the writer's transaction) and return what changed."""
    conn = db.conn
    run_id = int(
        conn.execute(
            "INSERT INTO selection_runs (trigger, mode, settings, started) VALUES (?, ?, ?, ?)",
            (trigger, plan.mode, plan.settings, plan.started),
        ).lastrowid
    )
    conn.executemany("UPDATE images SET moment = ?, cluster = ? WHERE id = ?", plan.image_updates)
    full = plan.mode == "full"
    if full:
        conn.execute("DELETE FROM album_candidates")
    else:
        conn.execute("DELETE FROM album_candidates WHERE moment IN (SELECT value FROM json_each(?))", (_in(plan.stale_moments),))
    rows = []
    for pick in plan.clusters:
        moment = plan.cluster_moment[pick.cluster]
        for choice in pick.choices:
            rows.append(
                (choice.image_id, moment, pick.cluster, choice.rank, choice.composite, pick.unit_score, int(choice.forced),
                 json.dumps(choice.reason, sort_keys=True))
            )
    conn.executemany(
        "INSERT OR REPLACE INTO album_candidates (image_id, moment, cluster, rank, composite, unit_score, forced, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    new_rows = {r[0]: r for r in rows}
    if album.policy == "best_per_cluster" and not full:
        scope_sql = "SELECT image_id FROM picks WHERE moment IN (SELECT value FROM json_each(?))"
        old = {r[0] for r in conn.execute(scope_sql, (_in(plan.stale_moments | plan.touched_moments),))}
        desired = set(new_rows)
    else:
        old = {r[0] for r in conn.execute("SELECT image_id FROM picks")}
        everything = conn.execute("SELECT cluster, image_id, unit_score, forced FROM album_candidates").fetchall()
        keep = album_units(everything, album)
        desired = {image for cluster, image, _, _ in everything if cluster in keep}
    added = desired - old
    removed = old - desired
    conn.executemany("DELETE FROM picks WHERE image_id = ?", [(i,) for i in sorted(removed)])
    refresh = sorted(i for i in desired if i in added or i in new_rows)
    missing = [i for i in refresh if i not in new_rows]
    if missing:  # picks kept from untouched moments that the policy newly admits
        for r in conn.execute(
            "SELECT image_id, moment, cluster, rank, composite, unit_score, forced, reason FROM album_candidates"
            " WHERE image_id IN (SELECT value FROM json_each(?))",
            (_in(missing),),
        ):
            new_rows[r[0]] = tuple(r)
    conn.executemany(
        "INSERT OR REPLACE INTO picks (image_id, run_id, moment, cluster, rank, composite, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, run_id, new_rows[i][1], new_rows[i][2], new_rows[i][3], new_rows[i][4], new_rows[i][7]) for i in refresh],
    )
    conn.executemany(
        "INSERT INTO pick_changes (run_id, image_id, change) VALUES (?, ?, ?)",
        [(run_id, i, "added") for i in sorted(added)] + [(run_id, i, "removed") for i in sorted(removed)],
    )
    total_picks = int(conn.execute("SELECT count(*) FROM picks").fetchone()[0])
    plan.photos = int(conn.execute("SELECT count(*) FROM images WHERE status = 'scored'").fetchone()[0])
    plan.moments = int(conn.execute("SELECT count(DISTINCT moment) FROM images").fetchone()[0])
    clusters = int(conn.execute("SELECT count(DISTINCT cluster) FROM album_candidates").fetchone()[0])
    finished = time.time()
    conn.execute(
        "UPDATE selection_runs SET finished = ?, photos = ?, moments = ?, moments_recomputed = ?, clusters = ?, picks = ?,"
        " added = ?, removed = ? WHERE id = ?",
        (finished, plan.photos, plan.moments, len(plan.touched_moments), clusters, total_picks, len(added), len(removed), run_id),
    )
    return SelectionResult(
        run_id=run_id,
        trigger=trigger,
        mode=plan.mode,
        photos=plan.photos,
        moments=plan.moments,
        moments_recomputed=len(plan.touched_moments),
        clusters=clusters,
        picks=total_picks,
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        seconds=finished - plan.started,
    )
