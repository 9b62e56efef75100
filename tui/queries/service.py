"""Queries about the service: the daemon's heartbeat, the models, the last
selection run and the per-stage timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.store import StoreReader
from daemon.store.db import disk_problem

from .common import HEARTBEAT_STALE_SECONDS, TELEMETRY_WINDOW_SECONDS, parse_json


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    mode: str
    over_limit: bool = False  # polled because inotify had no watches left for it


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
    #: why the database's disk cannot take writes now (full, read-only), seen from here
    disk: str | None = None

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.heartbeat is None else max(0.0, now - self.heartbeat)

    def is_running(self, now: float) -> bool:
        """True when the daemon says it runs and its heartbeat is fresh."""
        age = self.heartbeat_age(now)
        return self.state not in (None, "stopped", "failed") and age is not None and age <= HEARTBEAT_STALE_SECONDS


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
        WatchedFolder(str(f.get("path", "?")), str(f.get("mode", "?")), bool(f.get("over_limit")))
        if isinstance(f, dict) else WatchedFolder(str(f), "?")
        for f in parse_json(row.get("watched_folders"), [])
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
        disk=disk_problem(reader.path),
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
