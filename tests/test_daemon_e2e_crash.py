"""Crash safety: kill -9 at random moments while photos arrive; every restart picks up where it stopped."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from fixtures_daemon import Daemon, query, rows_by_path, small_photo, wait_for, write_config

pytestmark = pytest.mark.slow

PHOTOS = 200
TRIALS = 20
SCORERS = 5  # write_config's scorers list


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    db = tmp_path / "state" / "keepers.db"
    config = write_config(tmp_path / "keepers.yaml", settle=0.3, workers=1)
    rng = random.Random(20261122)
    stop = threading.Event()
    written: list[Path] = []

    def arrive() -> None:  # 200 photos over the trials, written the plain way (open, write, close)
        for i in range(PHOTOS):
            if stop.is_set():
                return
            written.append(small_photo(photos / f"sub{i % 4}" / f"IMG_{i:04d}.jpg", 1000 + i))
            time.sleep(rng.uniform(0.05, 0.2))

    writer = threading.Thread(target=arrive, name="arrivals")
    writer.start()
    kills = 0
    try:
        for _ in range(TRIALS):
            daemon = Daemon(photos, db, config).start(wait_ready=False)
            time.sleep(rng.uniform(0.3, 2.5))
            assert daemon.proc is not None and daemon.proc.poll() is None, daemon.log_text()
            daemon.kill()
            kills += 1
        writer.join(120)
        assert not writer.is_alive()
        final = Daemon(photos, db, config).start()
        try:
            assert wait_for(lambda: sum(1 for r in rows_by_path(db).values() if r[1] == "scored") >= PHOTOS, 90), (
                f"only {len(rows_by_path(db))} rows after the last restart:\n{final.log_text()}")
            time.sleep(0.5)
        finally:
            assert final.terminate() == 0
    finally:
        stop.set()
        writer.join(30)
    assert kills == TRIALS and len(written) == PHOTOS
    rows = rows_by_path(db)
    assert sorted(rows) == sorted(str(p) for p in written), "a photo was lost or an extra row appeared"
    assert all(r[1] == "scored" for r in rows.values()), {p: r for p, r in rows.items() if r[1] != "scored"}
    assert all(r[4] == SCORERS for r in rows.values()), "a photo was committed without all its scores"
    assert all(r[3] == Path(p).stat().st_size for p, r in rows.items()), "a row was scored from a half-written file"
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT content_hash) FROM images")[0] == (PHOTOS, PHOTOS)
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
