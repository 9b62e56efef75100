"""End to end: `keepers run` as a subprocess, photos arriving the ways real programs write them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fixtures_daemon import Daemon, photo_bytes, query, rows_by_path, small_photo, wait_for, write_config
from fixtures_photos import twelve_megapixel_jpegs

pytestmark = pytest.mark.slow


def scored_total(daemon: Daemon) -> int | None:
    rows = query(daemon.db, "SELECT status_text FROM daemon WHERE id = 1")
    match = re.search(r"(\d+) scored", rows[0][0] or "") if rows else None
    return int(match.group(1)) if match else None


def wait_scored(db: Path, path: Path, *, after: float | None = None, timeout: float = 30.0) -> tuple:
    """Wait until ``path`` has a scored row (scored after ``after`` when given); returns the row."""
    def ready():  # type: ignore[no-untyped-def]
        row = rows_by_path(db).get(str(path))
        if row and row[1] == "scored" and (after is None or row[2] > after):
            return row
        return None

    row = wait_for(ready, timeout)
    assert row, f"{path} was not scored in {timeout} s; rows: {rows_by_path(db)}"
    return row


@pytest.fixture
def daemon(tmp_path: Path):  # type: ignore[no-untyped-def]
    photos = tmp_path / "photos"
    photos.mkdir()
    d = Daemon(photos, tmp_path / "state" / "keepers.db", write_config(tmp_path / "keepers.yaml", settle=0.5)).start()
    yield d
    code = d.terminate()
    assert code == 0, d.log_text()


def test_each_way_of_writing_a_photo_ends_as_one_correct_row(daemon: Daemon, tmp_path: Path) -> None:
    photos, db = daemon.photos, daemon.db
    outside = tmp_path / "outside"
    outside.mkdir()
    expected_passes = 0

    # cp from elsewhere
    small_photo(outside / "copied.jpg", 1)
    subprocess.run(["cp", str(outside / "copied.jpg"), str(photos / "copied.jpg")], check=True)
    wait_scored(db, photos / "copied.jpg")
    expected_passes += 1

    # mv from outside the tree
    small_photo(outside / "moved-in.jpg", 2)
    os.rename(outside / "moved-in.jpg", photos / "moved-in.jpg")
    wait_scored(db, photos / "moved-in.jpg")
    expected_passes += 1

    # a slow writer: a 12 MP JPEG in 20 chunks over 2 s; no row may appear before it is whole
    big = twelve_megapixel_jpegs(outside / "big", 1)[0].read_bytes()
    slow = photos / "slow.jpg"
    seen_early: list[tuple] = []
    done = threading.Event()

    def writer() -> None:
        step = len(big) // 20 + 1
        with open(slow, "wb") as fh:
            for i in range(0, len(big), step):
                fh.write(big[i:i + step])
                fh.flush()
                time.sleep(0.1)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    while not done.is_set():
        row = rows_by_path(db).get(str(slow))
        if row:
            seen_early.append(row)
        time.sleep(0.05)
    t.join()
    assert not seen_early, f"a half-written file got a row: {seen_early}"
    row = wait_scored(db, slow)
    assert row[3] == len(big)
    expected_passes += 1

    # write a temp file, then rename it over an existing photo (an editor's atomic save)
    saved = small_photo(photos / "saved.jpg", 3)
    first = wait_scored(db, saved)
    expected_passes += 1
    tmp = photos / ".saved.jpg.tmp"
    tmp.write_bytes(photo_bytes(33, (200, 150)))
    os.replace(tmp, saved)
    second = wait_scored(db, saved, after=first[2])
    assert second[0] == first[0] and second[3] == saved.stat().st_size
    expected_passes += 1

    # an in-place rewrite keeps the row and is scored again
    inplace = small_photo(photos / "inplace.jpg", 5)
    first = wait_scored(db, inplace)
    expected_passes += 1
    with open(inplace, "r+b") as fh:
        fh.truncate(0)
        fh.write(photo_bytes(55, (180, 120)))
    second = wait_scored(db, inplace, after=first[2])
    assert second[0] == first[0] and second[3] == inplace.stat().st_size
    expected_passes += 1

    # a folder moved in
    trip = outside / "trip"
    for i in range(3):
        small_photo(trip / f"t{i}.jpg", 10 + i)
    os.rename(trip, photos / "trip")
    for i in range(3):
        wait_scored(db, photos / "trip" / f"t{i}.jpg")
    expected_passes += 3

    # a delete marks the row deleted
    doomed = small_photo(photos / "doomed.jpg", 6)
    wait_scored(db, doomed)
    expected_passes += 1
    doomed.unlink()
    assert wait_for(lambda: rows_by_path(db)[str(doomed)][1] == "deleted", 10)

    # a rename keeps the row and its scores, without scoring again
    before = wait_scored(db, photos / "copied.jpg")
    os.rename(photos / "copied.jpg", photos / "renamed.jpg")
    assert wait_for(lambda: str(photos / "renamed.jpg") in rows_by_path(db), 10)
    after = rows_by_path(db)
    assert str(photos / "copied.jpg") not in after
    assert after[str(photos / "renamed.jpg")][:3] == before[:3]  # same id, status, scored_at
    assert after[str(photos / "renamed.jpg")][4] == before[4] > 0  # scores kept

    # a folder renamed inside the tree keeps its rows
    ids = {p: r[0] for p, r in rows_by_path(db).items() if "/trip/" in p}
    os.rename(photos / "trip", photos / "trip-2026")
    assert wait_for(lambda: all(str(photos / "trip-2026" / Path(p).name) in rows_by_path(db) for p in ids), 10)
    now = rows_by_path(db)
    assert {now[str(photos / "trip-2026" / Path(p).name)][0] for p in ids} == set(ids.values())

    time.sleep(1.5)  # anything wrongly queued by the renames would be scored by now
    rows = rows_by_path(db)
    live = {p: r for p, r in rows.items() if r[1] != "deleted"}
    on_disk = {str(p) for p in photos.rglob("*.jpg")}
    assert set(live) == on_disk, f"rows {sorted(live)} != files {sorted(on_disk)}"
    assert all(r[1] == "scored" and r[4] > 0 for r in live.values()), live
    assert all(r[3] == Path(p).stat().st_size for p, r in live.items()), "a row holds a size the file does not have"
    assert wait_for(lambda: scored_total(daemon) == expected_passes, 6), (
        f"expected {expected_passes} scoring passes, the daemon reports {scored_total(daemon)}")


@pytest.mark.skipif(shutil.which("rsync") is None,
                    reason="rsync is not installed (Debian package `rsync`; `make test` installs it when apt can)")
def test_rsync_into_the_folder_is_scored_once_at_its_final_name(daemon: Daemon, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    for i in range(3):
        small_photo(outside / f"synced{i}.jpg", 40 + i)
    # rsync writes each file as .synced0.jpg.XXXXXX, then renames it
    subprocess.run(["rsync", "-a", str(outside) + "/", str(daemon.photos) + "/"], check=True)
    for i in range(3):
        wait_scored(daemon.db, daemon.photos / f"synced{i}.jpg")
    time.sleep(1.0)
    rows = rows_by_path(daemon.db)
    assert sorted(rows) == [str(daemon.photos / f"synced{i}.jpg") for i in range(3)], rows
    assert all(r[1] == "scored" for r in rows.values())
    assert wait_for(lambda: scored_total(daemon) == 3, 6), f"the daemon reports {scored_total(daemon)} scoring passes"
