"""The dashboard's read queries.

Every function takes a :class:`~daemon.store.StoreReader` (opened read-only in
the worker thread that calls it) and returns frozen dataclasses the screens
render. Queries that touch ``images`` are paged and use its indexes, and the
counts by status come from the store's ``image_counts``, so a library of
1 000 000 photos refreshes in a few milliseconds (bench/tui.py).
"""

from .common import GROUPS, HEARTBEAT_STALE_SECONDS, PAGE_SIZE, PHOTO_SORTS, PHOTO_STATUS_FILTERS, TELEMETRY_WINDOW_SECONDS
from .library import (
    AlbumView,
    PhotoDetail,
    PhotoPage,
    PhotoQuery,
    PhotoRow,
    PickRow,
    ScoreRow,
    SearchMemo,
    Sibling,
    album_view,
    cluster_siblings,
    photo_detail,
    photo_page,
)
from .service import (
    ActivityView,
    DaemonStatus,
    LogEntry,
    ModelEvent,
    ModelRow,
    ModelsView,
    Overview,
    SelectionRun,
    StageTiming,
    WatchedFolder,
    activity_view,
    daemon_status,
    last_selection_run,
    models_view,
    overview,
)

__all__ = [name for name in dir() if not name.startswith("_")]
