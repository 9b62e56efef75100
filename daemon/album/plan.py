"""Planning one selection: read the library, find the moments to recompute,
group and choose, and return, a batch of moments at a time, everything the
writer has to change.

Planning only reads (through its own read-only connection), so the comparator
and the panorama check never run inside a write transaction; batches are
planned as they are drawn, so a full run of a million photos holds one batch's
rows, not the library's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np
import orjson

from ..config import Config
from ..scoring.composite import composite_values
from .choose import ClusterPick, Comparator, Member, choose_cluster
from .grouping import RAW_EXTENSIONS, TimedPhoto, assign_moments, cluster_photos, companion_groups, hash_to_int, is_raw
from .sets import SetCandidate, find_brackets, find_panoramas, parse_exif

log = logging.getLogger(__name__)

#: moments larger than this are clustered in time-ordered chunks of this size
#: (a near-duplicate is taken seconds, not hours, from its twin)
CLUSTER_CHUNK = 1500
FLOOR_SCORERS = ("eyes_open", "sharpness")
#: an incremental run also re-examines rows changed this long before the last
#: run started (their ``updated_at`` is stamped before their commit lands)
CHANGE_MARGIN_SECONDS = 30.0
#: a run plans and writes this many photos' moments at a time (each batch its own
#: writer transaction), so memory stays flat and scoring's commits get in between
BATCH_PHOTOS = 4000


class Photo(NamedTuple):
    """One photo as a batch plans it (a tuple: a batch makes thousands). It has every field
    of a :class:`~daemon.album.sets.SetCandidate`, so set detection takes it as it is."""

    id: int
    path: str
    taken_at: float
    fingerprint: str | None  # the perceptual hash as stored
    width: int | None
    height: int | None
    exif: dict[str, Any]
    member: Member
    hash: int | None  # phash as an integer (None when missing or malformed)
    raw: bool  # a camera RAW file (it may have a JPEG companion)


@dataclass
class Plan:
    """One batch of a selection run: whole moments (or images leaving the album),
    applied by :func:`daemon.album.apply.apply_batch` in a writer transaction of its own."""

    #: every image whose candidates and picks this batch replaces
    image_ids: list[int] = field(default_factory=list)
    #: (moment, cluster, image id) for every image whose stored values change
    image_updates: list[tuple[int | None, int | None, int]] = field(default_factory=list)
    clusters: list[ClusterPick] = field(default_factory=list)
    cluster_moment: dict[int, int] = field(default_factory=dict)


@dataclass
class RunScope:
    """What a run covers: its mode, settings and how many moments it recomputes."""

    mode: str  # full or incremental
    settings: str
    started: float
    moments_recomputed: int = 0
    #: incremental runs: the moment ids recomputed (the export refreshes only these); None for a full run
    touched_moments: set[int] | None = None
    #: full runs: what their batches are planned from (another process can plan them from it)
    split: FullSplit | None = None


class FullSplit(NamedTuple):
    """What a full run's batches are planned from: the library split into moments (see
    :func:`_split_moments`), the images leaving the album, the embedding model and the
    batch size. A few bytes a photo: it pickles to another process."""

    ids: np.ndarray  # the scored photos in (folder, capture time, id) order
    starts: np.ndarray  # where each moment starts in ids
    moments: np.ndarray  # each moment's id
    gone: list[int]
    model: str | None
    batch_photos: int

    def groups(self) -> Iterator[tuple[int, list[int]]]:
        """(moment id, member ids) of each moment, in order."""
        ends = np.append(self.starts[1:], len(self.ids))
        return ((int(m), self.ids[a:b].tolist()) for m, a, b in zip(self.moments.tolist(), self.starts.tolist(), ends.tolist()))

    def batches(self, conn: sqlite3.Connection, config: Config, comparator: Comparator | None = None) -> Iterator[Plan]:
        """The run's batches, planned lazily on the read connection ``conn``."""
        return _batches(conn, config, comparator, self.model, self.groups(), self.gone, self.batch_photos)


def settings_fingerprint(config: Config, comparator: Comparator | None) -> str:
    """A short hash of every setting that changes what is picked; a change forces a full run."""
    album = config.album
    relevant = {
        "album": {k: v for k, v in _plain(album).items() if k not in ("reselect_minutes", "reselect_after_new")},
        "weights": config.weights.as_dict(),
        "comparator": getattr(comparator, "name", None),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _plain(value: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(value)


def _ids_param(ids: Iterable[int]) -> str:
    return json.dumps(sorted(int(i) for i in ids))


def plan_run(
    conn: sqlite3.Connection,
    config: Config,
    *,
    comparator: Comparator | None,
    started: float,
    full: bool = False,
    batch_photos: int | None = None,
) -> tuple[RunScope, Iterator[Plan]]:
    """Decide what this run covers and plan it lazily, a batch of whole moments at a
    time. ``conn`` is a read connection; the batches read it as they are drawn.

    A full run holds only a few numbers per photo (id, folder, capture time) to
    split the library into moments; each batch loads its own photos. The last
    run that began decides the mode: one that never finished (a crash, a stop)
    or failed makes this one full."""
    settings = settings_fingerprint(config, comparator)
    last = conn.execute(
        "SELECT started, settings, finished IS NOT NULL AND error IS NULL FROM selection_runs"
        " WHERE mode IS NOT NULL ORDER BY id DESC LIMIT 1"
    ).fetchone()
    gap = config.album.moment_gap_seconds
    model = _embedding_model(conn)
    if full or last is None or last[1] != settings or not last[2]:
        scope = RunScope("full", settings, started)
        ids, folders, times, gone = _library_moments(conn)
        scope.split = FullSplit(*_split_moments(ids, folders, times, gap), gone, model, batch_photos or BATCH_PHOTOS)
        scope.moments_recomputed = len(scope.split.starts)
        return scope, scope.split.batches(conn, config, comparator)
    # a row stamped just before the last run started may have committed after it read
    scope = RunScope("incremental", settings, started)
    changed, gone = _changed_moments(conn, float(last[0]) - CHANGE_MARGIN_SECONDS, gap)
    scope.touched_moments = {m for m, _ in changed}
    scope.moments_recomputed = len(changed)
    return scope, _batches(conn, config, comparator, model, iter(changed), gone, batch_photos or BATCH_PHOTOS)


def _batches(
    conn: sqlite3.Connection,
    config: Config,
    comparator: Comparator | None,
    model: str | None,
    groups: Iterable[tuple[int, list[int]]],
    gone: list[int],
    batch_photos: int,
) -> Iterator[Plan]:
    # images leaving the album first: a later batch may reuse their moment's id
    for start in range(0, len(gone), batch_photos):
        chunk = gone[start : start + batch_photos]
        yield Plan(image_ids=chunk, image_updates=[(None, None, i) for i in chunk])
    pending: list[tuple[int, list[int]]] = []
    size = 0
    for moment, ids in groups:
        pending.append((moment, ids))
        size += len(ids)
        if size >= batch_photos:
            yield _plan_moments(conn, config, comparator, model, pending)
            pending, size = [], 0
    if pending:
        yield _plan_moments(conn, config, comparator, model, pending)


def _plan_moments(
    conn: sqlite3.Connection,
    config: Config,
    comparator: Comparator | None,
    model: str | None,
    groups: list[tuple[int, list[int]]],
) -> Plan:
    ids = [i for _, members in groups for i in members]
    photos, stored = _load_photos(conn, ids, config)
    embeddings = _load_embeddings(conn, model, ids)
    plan = Plan(image_ids=ids)
    weights = config.weights.as_dict()
    for moment, members in groups:
        present = [i for i in members if i in photos]
        for pick, cluster_ids in _select_moment(present, photos, embeddings, config, comparator, weights):
            plan.clusters.append(pick)
            plan.cluster_moment[pick.cluster] = moment
            for pid in cluster_ids:
                if stored.get(pid) != (moment, pick.cluster):
                    plan.image_updates.append((moment, pick.cluster, pid))
    return plan


def _library_moments(conn: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """What every scored photo's moment is found from, (id, folder, capture time), as numpy
    arrays of a few bytes a photo, not rows (see :func:`_split_moments`); and the images
    that leave the album (no longer scored, still placed)."""
    ids, folders, times = array("q"), array("q"), array("d")
    folder_index: dict[str, int] = {}
    lonely = iter(range(-1, -(1 << 62), -1))  # no capture time: a moment of its own
    conn.execute("BEGIN")  # both reads see the same library
    try:
        gone = [r[0] for r in conn.execute(
            "SELECT id FROM images WHERE +status != 'scored' AND (moment IS NOT NULL OR cluster IS NOT NULL)")]
        cursor = conn.execute("SELECT id, path, taken_at FROM images WHERE +status = 'scored'")  # a scan, not the status index
        while rows := cursor.fetchmany(20_000):
            ids.extend([r[0] for r in rows])
            folders.extend([next(lonely) if r[2] is None else folder_index.setdefault(r[1].rpartition("/")[0], len(folder_index))
                            for r in rows])
            times.extend([0.0 if r[2] is None else r[2] for r in rows])
    finally:
        conn.commit()
    del folder_index
    return (np.frombuffer(ids, dtype=np.int64), np.frombuffer(folders, dtype=np.int64), np.frombuffer(times, dtype=np.float64),
            gone)


def _split_moments(ids: np.ndarray, folders: np.ndarray, times: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`assign_moments` over arrays: sorted by (folder, time, id), a new moment at
    each folder change or gap longer than ``gap``; a moment's id is its smallest photo id.
    Returns the ids in that order, where each moment starts among them, and the moments' ids."""
    if len(ids) == 0:
        return ids, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((ids, times, folders))
    ids, folders, times = ids[order], folders[order], times[order]
    cut = np.ones(len(ids), dtype=bool)
    cut[1:] = (folders[1:] != folders[:-1]) | (times[1:] - times[:-1] > gap)
    starts = np.flatnonzero(cut)
    return ids, starts, np.minimum.reduceat(ids, starts)


def _changed_moments(conn: sqlite3.Connection, since: float, gap: float) -> tuple[list[tuple[int, list[int]]], list[int]]:
    """The moments around what changed since ``since`` (see :func:`_neighbourhood`)."""
    rows = _neighbourhood(conn, "id, path, taken_at, status, moment, cluster, root", since, gap)
    new_moment = assign_moments([_timed(r) for r in rows if r[3] == "scored"], gap)
    # images that leave the album's world (deleted, failed, back to pending) lose their moment
    gone = [r[0] for r in rows if r[3] != "scored" and (r[4] is not None or r[5] is not None)]
    members: dict[int, list[int]] = {}
    for pid, moment in new_moment.items():
        members.setdefault(moment, []).append(pid)
    return sorted(members.items()), gone


def _timed(row: tuple) -> TimedPhoto:
    """A photo without a capture time is a moment of its own."""
    if row[2] is None:
        return TimedPhoto(row[0], f"\0{row[0]}", 0.0)
    return TimedPhoto(row[0], os.path.dirname(row[1]), float(row[2]))


def _neighbourhood(conn: sqlite3.Connection, columns: str, since: float, gap: float) -> list[tuple]:
    """Every image whose moment may have changed since ``since``: the changed
    images, the old members of their moments, and the whole time-chains (gaps
    up to ``gap``) around them in their folders. Uses the (updated_at),
    (moment) and (root, taken_at) indexes, so it reads a few rows, not the library."""
    found: dict[int, tuple] = {}
    changed = conn.execute(f"SELECT {columns} FROM images WHERE updated_at >= ?", (since,)).fetchall()
    for r in changed:
        found[r[0]] = r
    old_moments = sorted({r[4] for r in changed if r[4] is not None})
    if old_moments:
        for r in conn.execute(f"SELECT {columns} FROM images WHERE moment IN (SELECT value FROM json_each(?))", (json.dumps(old_moments),)):
            found[r[0]] = r
    seeds: dict[tuple[str, str], list[float]] = {}
    for r in list(found.values()):
        if r[2] is not None:
            seeds.setdefault((r[6], os.path.dirname(r[1])), []).append(float(r[2]))
    for (root, folder), times in seeds.items():
        times.sort()
        groups: list[list[float]] = [[times[0]]]
        for t in times[1:]:
            if t - groups[-1][-1] <= 2 * gap:
                groups[-1].append(t)
            else:
                groups.append([t])
        for group in groups:
            lo, hi = group[0], group[-1]
            while True:
                rows = conn.execute(
                    f"SELECT {columns} FROM images WHERE root = ? AND taken_at BETWEEN ? AND ?", (root, lo - gap, hi + gap)
                ).fetchall()
                mine = [r for r in rows if r[3] == "scored" and os.path.dirname(r[1]) == folder]
                new_lo, new_hi = _chain_bounds(sorted([float(r[2]) for r in mine] + group), group, gap)
                for r in rows:
                    if os.path.dirname(r[1]) == folder and new_lo - gap <= r[2] <= new_hi + gap:
                        found[r[0]] = r
                if new_lo >= lo and new_hi <= hi:
                    break
                lo, hi = min(lo, new_lo), max(hi, new_hi)
    return list(found.values())


def _chain_bounds(times: list[float], seeds: list[float], gap: float) -> tuple[float, float]:
    """The span of the gap-chains (steps of at most ``gap``) in sorted ``times`` that contain a seed."""
    lo, hi = seeds[0], seeds[-1]
    start = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > gap:
            chain = times[start:i]
            if any(chain[0] <= s <= chain[-1] for s in seeds):
                lo, hi = min(lo, chain[0]), max(hi, chain[-1])
            start = i
    return lo, hi


def _load_photos(conn: sqlite3.Connection, ids: list[int], config: Config) -> tuple[dict[int, Photo], dict[int, tuple[int | None, int | None]]]:
    """The photos ``ids`` as the chooser sees them, and each one's stored (moment, cluster).

    Floor scores are read only for the floors that are set (a floor left unset vetoes nothing)."""
    params = (_ids_param(ids),)
    manual = dict(conn.execute("SELECT image_id, choice FROM manual_choices WHERE image_id IN (SELECT value FROM json_each(?))",
                               params).fetchall())
    floors: dict[int, dict[str, float]] = {}
    wanted = [name for name in FLOOR_SCORERS if getattr(config.album.floors, name) is not None]
    if wanted:
        for image_id, model, value in conn.execute(
            "SELECT image_id, model, normalised FROM scores WHERE image_id IN (SELECT value FROM json_each(?))"
            f" AND model IN ({','.join('?' * len(wanted))})",
            (*params, *wanted),
        ):
            if value is not None:
                floors.setdefault(image_id, {})[model] = float(value)
    out: dict[int, Photo] = {}
    stored: dict[int, tuple[int | None, int | None]] = {}
    no_floors: dict[str, float] = {}
    rows = conn.execute(
        "SELECT i.id, i.path, coalesce(i.taken_at, i.mtime_ns / 1e9, i.first_seen), i.phash, i.width, i.height, i.exif_json,"
        " i.composite, i.coverage, i.groups_json, i.moment, i.cluster FROM images i WHERE i.id IN (SELECT value FROM json_each(?))",
        params,
    ).fetchall()
    groups_of = [_json_dict(r[9]) for r in rows]
    # every photo's composite under the current weights, the batch at once
    composites = composite_values(groups_of, config.weights.as_dict())
    for (pid, path, taken, phash, width, height, exif_json, stored_composite, coverage, _, moment, cluster), groups, (value, cov) in zip(
        rows, groups_of, composites
    ):
        stored[pid] = (moment, cluster)
        if not groups:
            value, cov = stored_composite, tuple(_json_list(coverage))
        taken = float(taken or 0.0)
        member = Member(pid, path, taken, value, groups, cov, floors.get(pid, no_floors), manual.get(pid))
        out[pid] = Photo(pid, path, taken, phash, width, height, parse_exif(exif_json), member, hash_to_int(phash),
                         _ends_raw(path) and is_raw(path))
    return out, stored


def _ends_raw(path: str) -> bool:
    """False for a path :func:`is_raw` says no to, checked without splitting it (most photos are not RAWs)."""
    return path[path.rfind("."):].lower() in RAW_EXTENSIONS


def _embedding_model(conn: sqlite3.Connection) -> str | None:
    """The embedding model that covers the most photos (the one clustering uses), once a run."""
    best = conn.execute("SELECT model FROM embeddings GROUP BY model ORDER BY count(*) DESC, model LIMIT 1").fetchone()
    return None if best is None else str(best[0])


def _load_embeddings(conn: sqlite3.Connection, model: str | None, ids: Iterable[int]) -> dict[int, np.ndarray]:
    if model is None:
        return {}
    cur = conn.execute(
        "SELECT image_id, vector FROM embeddings WHERE model = ? AND image_id IN (SELECT value FROM json_each(?))",
        (model, _ids_param(ids)),
    )
    return {pid: np.frombuffer(blob, dtype="<f4") for pid, blob in cur}


def _json_dict(text: str | None) -> dict[str, Any]:
    """A JSON object column as a dict ({} when empty or not an object). orjson reads a
    photo's groups several times faster than json; what it refuses and json reads
    (NaN, Infinity) goes to json. (An integer past 64 bits comes back a float, which is
    what the composite and the reasons make of a group score anyway.)"""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(text)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _json_list(text: str | None) -> list[Any]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _select_moment(
    ids: list[int],
    photos: dict[int, Photo],
    embeddings: dict[int, np.ndarray],
    config: Config,
    comparator: Comparator | None,
    weights: dict[str, float] | None = None,
) -> list[tuple[ClusterPick, list[int]]]:
    """Group one moment's photos and choose each group's pick; returns (pick, every photo id in the group)."""
    album = config.album
    weights = config.weights.as_dict() if weights is None else weights
    # RAW + JPEG of the same name: one photo, represented by the scored, non-RAW file
    followers: dict[int, list[int]] = {}
    hidden: set[int] = set()
    if any(photos[i].raw for i in ids):
        for group in companion_groups({i: photos[i].path for i in ids}):
            lead = min(group, key=lambda i: (photos[i].raw, -len(photos[i].member.coverage), i))
            manual = next((photos[i].member.manual for i in group if photos[i].member.manual == "reject"), None) or next(
                (photos[i].member.manual for i in group if photos[i].member.manual), None
            )
            rest = [i for i in group if i != lead]
            followers[lead] = rest
            hidden.update(rest)
            lead_photo = photos[lead]
            photos[lead] = _with_member(lead_photo, companions=tuple(photos[i].path for i in rest), manual=manual)
    units = [i for i in ids if i not in hidden] if hidden else ids

    def linked(a: int, b: int) -> bool:
        ha, hb = photos[a].hash, photos[b].hash
        return ha is not None and hb is not None and (ha ^ hb).bit_count() <= album.hash_distance

    candidates: list[SetCandidate] = [photos[i] for i in units]  # type: ignore[misc]  # a Photo has a SetCandidate's fields
    groups: list[tuple[str, list[int]]] = []
    if sum(1 for c in candidates if c.exif) >= 2:  # a bracket needs two frames that say their exposure
        groups += [("bracket", g) for g in find_brackets(candidates, album.bracket_seconds)]
    in_set = {i for _, g in groups for i in g}
    rest = [c for c in candidates if c.id not in in_set] if in_set else candidates
    groups += [("panorama", g) for g in find_panoramas(rest, album.panorama_seconds, linked=linked)]
    in_set = {i for _, g in groups for i in g}
    loose = sorted((i for i in units if i not in in_set), key=lambda i: (photos[i].taken_at, i))
    for start in range(0, len(loose), CLUSTER_CHUNK):
        chunk = loose[start : start + CLUSTER_CHUNK]
        clusters = cluster_photos(
            chunk,
            [photos[i].hash for i in chunk],
            max_distance=album.hash_distance,
            cap=album.cluster_cap,
            embeddings=[embeddings.get(i) for i in chunk] if embeddings else None,
            min_similarity=album.embedding_similarity,
        )
        groups += [("cluster", g) for g in clusters]
    out: list[tuple[ClusterPick, list[int]]] = []
    for kind, group in sorted(groups, key=lambda kg: min(kg[1])):
        pick = choose_cluster(
            min(group),
            [photos[i].member for i in group],
            kind=kind,  # type: ignore[arg-type]
            floors=album.floors,
            tiebreak_margin=album.tiebreak_margin,
            comparator=comparator,
            weights=weights,
        )
        everyone = [*group, *(f for i in group for f in followers.get(i, ()))] if followers else group
        out.append((pick, everyone))
    return out


def _with_member(photo: Photo, **changes: Any) -> Photo:
    return photo._replace(member=photo.member._replace(**changes))
