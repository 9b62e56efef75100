"""Constants and helpers the query modules share."""

from __future__ import annotations

import json
from typing import Any

#: a daemon whose heartbeat is older than this is shown as not running
HEARTBEAT_STALE_SECONDS = 30.0
#: rows fetched per page of the Photos and Album tables
PAGE_SIZE = 200
#: how far back (from the newest telemetry row) the Activity timings reach
TELEMETRY_WINDOW_SECONDS = 3600.0
GROUPS = ("aesthetic", "technical", "portrait")

PHOTO_SORTS: dict[str, str] = {
    # each ORDER BY is served by an index on images (composite, path, images_when, status), so a
    # page reads its rows in order instead of sorting the library; "taken" is the album's time
    # (the file's time for a photo without a capture time), the expression images_when indexes
    "composite": "composite DESC, id",
    "path": "path",
    "taken": "coalesce(taken_at, mtime_ns / 1e9) DESC, id",
    "status": "status, composite DESC",
}
PHOTO_STATUS_FILTERS = ("all", "scored", "pending", "error", "deleted")


def parse_json(text: str | None, default: Any) -> Any:
    """The JSON value in ``text``, or ``default`` when it is empty or not JSON."""
    if not text:
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default
