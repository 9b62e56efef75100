"""A burst dropped at once through a small bounded queue: every photo scored, each exactly once.
(bench/burst.py does 10 000 and prints memory growth and drain time.)"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from fixtures_daemon import Daemon, query, rows_by_path, small_photo, wait_for, write_config

pytestmark = pytest.mark.slow

COUNT = 400


def test_a_burst_through_a_small_queue_is_scored_completely_and_once(tmp_path: Path) -> None:
    staging, photos = tmp_path / "staging", tmp_path / "photos"
    photos.mkdir()
    files = [small_photo(staging / f"B_{i:04d}.jpg", 5000 + i, (64, 48)) for i in range(COUNT)]
    config = write_config(tmp_path / "keepers.yaml", settle=0.3, workers=2, extra="queue_size: 8\n")
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config).start()
    try:
        for f in files:
            os.rename(f, photos / f.name)
        assert wait_for(lambda: sum(r[1] == "scored" for r in rows_by_path(daemon.db).values()) == COUNT, 120), (
            daemon.log_text())

        def passes() -> int | None:
            text = query(daemon.db, "SELECT status_text FROM daemon")[0][0] or ""
            match = re.search(r"(\d+) scored since start, 0 queued, 0 settling", text)
            return int(match.group(1)) if match else None

        assert wait_for(passes, 10) == COUNT
    finally:
        assert daemon.terminate() == 0
    assert len(rows_by_path(daemon.db)) == COUNT
