"""The dashboard's read queries.

Every function takes a :class:`~daemon.store.StoreReader` (opened read-only in
the worker thread that calls it) and returns frozen dataclasses the screens
render. Queries that touch ``images`` are paged and use its indexes, so a
library of 100 000 photos refreshes in a few milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.store import StoreReader

#: a daemon whose heartbeat is older than this is shown as not running
HEARTBEAT_STALE_SECONDS = 30.0
#: rows fetched per page of the Photos and Album tables
PAGE_SIZE = 200
#: how far back (from the newest telemetry row) the Activity timings reach
TELEMETRY_WINDOW_SECONDS = 3600.0
GROUPS = ("aesthetic", "technical", "portrait")

PhotoSort = Literal["composite", "path", "taken", "status"]
PHOTO_SORTS: dict[str, str] = {
    # each ORDER BY is served by an index on images (composite, path, status)
    "composite": "composite DESC, id",
    "path": "path",
    "taken": "taken_at DESC, id",
    "status": "status, composite DESC",
}
PHOTO_STATUS_FILTERS = ("all", "scored", "pending", "error", "deleted")


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    mode: str


@dataclass(frozen=True)
class DaemonStatus:
    pid: int | None
    version: str | None
    state: str | None
    started: float | None
    heartbeat: float | None
    queue_depth: int | None
    photos_per_min: float | None
    watched_folders: tuple[WatchedFolder, ...]
    inotify_watches: int | None
    inotify_limit: int | None
    status_text: str | None

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.heartbeat is None else max(0.0, now - self.heartbeat)

    def is_running(self, now: float) -> bool:
        """True when the daemon says it runs and its heartbeat is fresh."""
        age = self.heartbeat_age(now)
        return self.state not in (None, "stopped") and age is not None and age <= HEARTBEAT_STALE_SECONDS


@dataclass(frozen=True)
class SelectionRun:
    id: int
    trigger: str
    started: float
    finished: float | None
    photos: int | None
    moments: int | None
    clusters: int | None
    picks: int | None
    added: int | None
    removed: int | None
    error: str | None


@dataclass(frozen=True)
class ModelRow:
    name: str
    task: str | None
    framework: str | None
    enabled: bool
    state: str
    source: str | None
    source_ref: str | None
    cache_path: str | None
    version: str | None
    sha256: str | None
    bytes: int | None
    load_seconds: float | None
    attempts: int
    last_error: str | None
    updated_at: float


@dataclass(frozen=True)
class Overview:
    daemon: DaemonStatus | None
    counts: dict[str, int]
    last_run: SelectionRun | None
    unready_models: tuple[ModelRow, ...]
    ready_models: int
    album_size: int
    open_commands: int

    @property
    def total_photos(self) -> int:
        return sum(v for k, v in self.counts.items() if k != "deleted")


def daemon_status(reader: StoreReader) -> DaemonStatus | None:
    row = reader.daemon_row()
    if row is None:
        return None
    folders = tuple(
        WatchedFolder(str(f.get("path", "?")), str(f.get("mode", "?"))) if isinstance(f, dict) else WatchedFolder(str(f), "?")
        for f in _json(row.get("watched_folders"), [])
    )
    return DaemonStatus(
        pid=row.get("pid"),
        version=row.get("version"),
        state=row.get("state"),
        started=row.get("started"),
        heartbeat=row.get("heartbeat"),
        queue_depth=row.get("queue_depth"),
        photos_per_min=row.get("photos_per_min"),
        watched_folders=folders,
        inotify_watches=row.get("inotify_watches"),
        inotify_limit=row.get("inotify_limit"),
        status_text=row.get("status_text"),
    )


def last_selection_run(reader: StoreReader) -> SelectionRun | None:
    rows = reader.query(
        "SELECT id, trigger, started, finished, photos, moments, clusters, picks, added, removed, error"
        " FROM selection_runs ORDER BY id DESC LIMIT 1"
    )
    return SelectionRun(**rows[0]) if rows else None


def _model(row: dict[str, Any]) -> ModelRow:
    return ModelRow(
        name=row["name"],
        task=row["task"],
        framework=row["framework"],
        enabled=bool(row["enabled"]),
        state=row["state"],
        source=row["source"],
        source_ref=row["source_ref"],
        cache_path=row["cache_path"],
        version=row["version"],
        sha256=row["sha256"],
        bytes=row["bytes"],
        load_seconds=row["load_seconds"],
        attempts=int(row["attempts"] or 0),
        last_error=row["last_error"],
        updated_at=row["updated_at"],
    )


def overview(reader: StoreReader) -> Overview:
    """Everything the Overview screen shows, in a handful of indexed queries."""
    enabled = [_model(r) for r in reader.query("SELECT * FROM models WHERE enabled = 1 ORDER BY name")]
    return Overview(
        daemon=daemon_status(reader),
        counts=reader.status_counts(),
        last_run=last_selection_run(reader),
        unready_models=tuple(m for m in enabled if m.state != "ready"),
        ready_models=sum(1 for m in enabled if m.state == "ready"),
        album_size=int(reader.scalar("SELECT count(*) FROM picks") or 0),
        open_commands=int(reader.scalar("SELECT count(*) FROM commands WHERE done IS NULL") or 0),
    )


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelEvent:
    id: int
    at: float
    kind: str
    source: str | None
    seconds: float | None
    error_class: str | None
    message: str | None


@dataclass(frozen=True)
class ModelsView:
    models: tuple[ModelRow, ...]
    disabled: tuple[str, ...]
    selected: str | None
    events: tuple[ModelEvent, ...]

    def model(self, name: str | None) -> ModelRow | None:
        return next((m for m in self.models if m.name == name), None)


def models_view(reader: StoreReader, selected: str | None, event_limit: int = 100) -> ModelsView:
    """Enabled models (one row each) and the event history of ``selected``
    (the first enabled model when ``selected`` is not one of them)."""
    rows = [_model(r) for r in reader.models()]
    enabled = tuple(m for m in rows if m.enabled)
    disabled = tuple(m.name for m in rows if not m.enabled)
    if selected not in {m.name for m in enabled}:
        selected = enabled[0].name if enabled else None
    events: tuple[ModelEvent, ...] = ()
    if selected is not None:
        events = tuple(
            ModelEvent(**r)
            for r in reader.query(
                "SELECT id, at, kind, source, seconds, error_class, message FROM model_events"
                " WHERE model = ? ORDER BY at DESC, id DESC LIMIT ?",
                (selected, event_limit),
            )
        )
    return ModelsView(models=enabled, disabled=disabled, selected=selected, events=events)


# --------------------------------------------------------------------------- photos


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path: str
    status: str
    composite: float | None
    groups: dict[str, float]
    coverage: tuple[str, ...]
    error: str | None
    taken_at: float | None
    manual: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PhotoQuery:
    sort: str = "composite"
    status: str = "all"  # one of PHOTO_STATUS_FILTERS; "all" leaves out deleted photos
    text: str = ""  # substring of the path
    offset: int = 0
    limit: int = PAGE_SIZE


@dataclass(frozen=True)
class PhotoPage:
    query: PhotoQuery
    total: int
    rows: tuple[PhotoRow, ...]


def _photo_where(q: PhotoQuery) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if q.status == "all":
        clauses.append("status IN ('pending', 'scored', 'error')")
    else:
        clauses.append("status = ?")
        params.append(q.status)
    if q.text:
        clauses.append("instr(lower(path), ?) > 0")
        params.append(q.text.lower())
    return " AND ".join(clauses), params


def photo_page(reader: StoreReader, q: PhotoQuery) -> PhotoPage:
    """One page of images in the order and filter of ``q``, and how many match."""
    where, params = _photo_where(q)
    order = PHOTO_SORTS.get(q.sort, PHOTO_SORTS["composite"])
    total = int(reader.scalar(f"SELECT count(*) FROM images WHERE {where}", tuple(params)) or 0)
    rows = reader.query(
        f"SELECT i.id, i.path, i.status, i.composite, i.groups_json, i.coverage, i.error, i.taken_at,"
        f" (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual"
        f" FROM images i WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, q.limit, q.offset),
    )
    return PhotoPage(
        query=q,
        total=total,
        rows=tuple(
            PhotoRow(
                id=r["id"],
                path=r["path"],
                status=r["status"],
                composite=r["composite"],
                groups=_json(r["groups_json"], {}),
                coverage=tuple(_json(r["coverage"], [])),
                error=r["error"],
                taken_at=r["taken_at"],
                manual=r["manual"],
            )
            for r in rows
        ),
    )


@dataclass(frozen=True)
class ScoreRow:
    model: str
    task: str
    raw: float | None
    normalised: float | None
    model_version: str | None


@dataclass(frozen=True)
class PhotoDetail:
    photo: PhotoRow
    width: int | None
    height: int | None
    size: int | None
    camera: str | None
    taken_source: str | None
    moment: int | None
    cluster: int | None
    picked: bool
    scores: tuple[ScoreRow, ...]


def photo_detail(reader: StoreReader, image_id: int) -> PhotoDetail | None:
    """Every stored fact about one image, with all its scores; None when it is gone."""
    rows = reader.query(
        "SELECT i.*, (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual,"
        " EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id) AS picked FROM images i WHERE i.id = ?",
        (image_id,),
    )
    if not rows:
        return None
    r = rows[0]
    scores = tuple(
        ScoreRow(**s)
        for s in reader.query(
            "SELECT model, task, raw, normalised, model_version FROM scores WHERE image_id = ? ORDER BY task, model",
            (image_id,),
        )
    )
    photo = PhotoRow(
        id=r["id"],
        path=r["path"],
        status=r["status"],
        composite=r["composite"],
        groups=_json(r["groups_json"], {}),
        coverage=tuple(_json(r["coverage"], [])),
        error=r["error"],
        taken_at=r["taken_at"],
        manual=r["manual"],
    )
    return PhotoDetail(
        photo=photo,
        width=r["width"],
        height=r["height"],
        size=r["size"],
        camera=r["camera"],
        taken_source=r["taken_source"],
        moment=r["moment"],
        cluster=r["cluster"],
        picked=bool(r["picked"]),
        scores=scores,
    )


# --------------------------------------------------------------------------- album


@dataclass(frozen=True)
class PickRow:
    image_id: int
    path: str
    moment: int | None
    cluster: int | None
    rank: int | None
    composite: float | None
    reason: dict[str, Any]
    manual: str | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def decided_by(self) -> str:
        value = self.reason.get("decided_by")
        return str(value) if value is not None else ""


@dataclass(frozen=True)
class Sibling:
    image_id: int
    path: str
    composite: float | None
    status: str
    manual: str | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AlbumView:
    run: SelectionRun | None
    total_picks: int
    picks: tuple[PickRow, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    offset: int = 0


def album_view(reader: StoreReader, offset: int = 0, limit: int = PAGE_SIZE, changes_limit: int = 50) -> AlbumView:
    """A page of the album ordered by moment, cluster and rank, and what the last run changed."""
    run = last_selection_run(reader)
    rows = reader.query(
        "SELECT p.image_id, i.path, p.moment, p.cluster, p.rank, p.composite, p.reason,"
        " (SELECT choice FROM manual_choices m WHERE m.image_id = p.image_id) AS manual"
        " FROM picks p JOIN images i ON i.id = p.image_id"
        " ORDER BY p.moment, p.cluster, p.rank, p.image_id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    picks = tuple(
        PickRow(
            image_id=r["image_id"],
            path=r["path"],
            moment=r["moment"],
            cluster=r["cluster"],
            rank=r["rank"],
            composite=r["composite"],
            reason=_json(r["reason"], {}) if isinstance(_json(r["reason"], {}), dict) else {"reason": r["reason"]},
            manual=r["manual"],
        )
        for r in rows
    )
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if run is not None:
        changes = reader.query(
            "SELECT c.change, coalesce(i.path, '#' || c.image_id) AS path FROM pick_changes c"
            " LEFT JOIN images i ON i.id = c.image_id WHERE c.run_id = ? ORDER BY c.change, path LIMIT ?",
            (run.id, changes_limit * 2),
        )
        added = tuple(c["path"] for c in changes if c["change"] == "added")[:changes_limit]
        removed = tuple(c["path"] for c in changes if c["change"] == "removed")[:changes_limit]
    return AlbumView(
        run=run,
        total_picks=int(reader.scalar("SELECT count(*) FROM picks") or 0),
        picks=picks,
        added=added,
        removed=removed,
        offset=offset,
    )


def cluster_siblings(reader: StoreReader, image_id: int, limit: int = 50) -> tuple[Sibling, ...]:
    """The photos of the pick's moment and cluster that were not picked, best first."""
    rows = reader.query(
        "SELECT i.id AS image_id, i.path, i.composite, i.status,"
        " (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual"
        " FROM images i JOIN images me ON me.id = ?"
        " WHERE i.moment IS me.moment AND i.cluster IS me.cluster AND i.id != me.id AND i.status != 'deleted'"
        " AND NOT EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id)"
        " ORDER BY i.composite DESC, i.id LIMIT ?",
        (image_id, limit),
    )
    return tuple(Sibling(**r) for r in rows)


# --------------------------------------------------------------------------- activity


@dataclass(frozen=True)
class StageTiming:
    stage: str
    count: int
    total_seconds: float
    max_seconds: float

    @property
    def mean_seconds(self) -> float:
        return self.total_seconds / self.count if self.count else 0.0


@dataclass(frozen=True)
class LogEntry:
    id: int
    at: float
    level: str
    logger: str
    message: str


@dataclass(frozen=True)
class ActivityView:
    window_end: float | None
    window_seconds: float
    stages: tuple[StageTiming, ...]
    log: tuple[LogEntry, ...] = field(default=())


def activity_view(reader: StoreReader, window_seconds: float = TELEMETRY_WINDOW_SECONDS, log_limit: int = 100) -> ActivityView:
    """Per-stage timings over the last ``window_seconds`` of telemetry, slowest total first,
    and the newest warnings and errors from the daemon's log table."""
    end = reader.scalar("SELECT at FROM telemetry ORDER BY id DESC LIMIT 1")
    stages: tuple[StageTiming, ...] = ()
    if end is not None:
        stages = tuple(
            StageTiming(**r)
            for r in reader.query(
                "SELECT stage, sum(count) AS count, sum(total_seconds) AS total_seconds, max(max_seconds) AS max_seconds"
                " FROM telemetry WHERE at >= ? GROUP BY stage ORDER BY total_seconds DESC, stage",
                (end - window_seconds,),
            )
        )
    log = tuple(
        LogEntry(**r)
        for r in reader.query(
            "SELECT id, at, level, logger, message FROM log WHERE upper(level) IN ('WARNING', 'ERROR', 'CRITICAL')"
            " ORDER BY id DESC LIMIT ?",
            (log_limit,),
        )
    )
    return ActivityView(window_end=end, window_seconds=window_seconds, stages=stages, log=log)
