"""The catch-up scan at a size CI affords: it merges the walk with the rows in
path order, so its memory does not grow with the library, and a changed, a
new, a deleted and a moved file among unchanged ones are each still found
(bench/scale.py measures the same at 1 000 000 files)."""

from __future__ import annotations

import os
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest

from daemon.config import Config, load_config
from daemon.scoring import scan as scan_module
from daemon.scoring.record import path_key
from daemon.scoring.scan import Matcher, ScanSummary, scan_folders, walk_in_path_order
from daemon.store.writer import StoreWriter

FILE_BYTES = b"\xff\xd8\xff\xe0 small \xff\xd9"


class Recorder:
    """Stands where the settler stands in the daemon: records what the scan hands over."""

    def __init__(self) -> None:
        self.submitted: list[Path] = []

    def submit(self, path: Path, root: Path) -> bool:
        self.submitted.append(path)
        return True


def library(root: Path, db: Path, count: int, per_folder: int = 20) -> list[Path]:
    """``count`` small files in folders of ``per_folder`` under ``root``, each with a scored row
    (size and mtime as on disk): a library the scan finds unchanged."""
    paths = []
    for n in range(count):
        path = root / f"{2000 + n // 400}" / f"event {n // per_folder:04d}" / f"IMG_{n:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(FILE_BYTES)
        paths.append(path)
    db.parent.mkdir(parents=True, exist_ok=True)
    StoreWriter(db).close()
    conn = sqlite3.connect(db)
    now = time.time()
    rows = []
    for p in paths:
        st = p.stat()
        rows.append((path_key(p), str(root), st.st_size, st.st_mtime_ns, now, now))
    conn.executemany("INSERT INTO images (path, root, size, mtime_ns, status, first_seen, updated_at)"
                     " VALUES (?, ?, ?, ?, 'scored', ?, ?)", rows)
    conn.commit()
    conn.close()
    return paths


def config_for(root: Path, db: Path, tmp_path: Path, extra: str = "") -> Config:
    file = tmp_path / "keepers.yaml"
    file.write_text(f"photos: [{str(root)!r}]\ndatabase: {str(db)!r}\n{extra}")
    return load_config(file)


def scan(config: Config, target: Recorder) -> ScanSummary:
    with StoreWriter(config.database_path) as writer:
        writer.start()
        return scan_folders(config, writer, target)  # type: ignore[arg-type]


def test_the_walk_comes_in_the_order_sqlite_keeps_the_paths_in(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    # names around '/' in byte order: ' ' and '-' and '.' sort before it, letters after;
    # a folder named like a photo; a name that is not UTF-8; a name beyond ASCII
    names = ["a/x.jpg", "a b/x.jpg", "a-1.jpg", "a.jpg/x.jpg", "a.jpg-2.jpg", "ab.jpg", "A/x.jpg", "a/b/c/d.jpg",
             "a/b.jpg", "a/b c.jpg", "é/x.jpg", "z.jpg", "~y/x.jpg"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(FILE_BYTES)
    raw = os.path.join(os.fsencode(root), b"caf\xe9.jpg")
    with open(raw, "wb") as fh:
        fh.write(FILE_BYTES)
    config = config_for(root, tmp_path / "keepers.db", tmp_path, "ignore_patterns: []\n")
    keys = [item[0] for item in walk_in_path_order(root, Matcher(config))]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (path TEXT NOT NULL UNIQUE)")
    conn.executemany("INSERT INTO t VALUES (?)", [(k,) for k in keys])
    in_sqlite = [r[0] for r in conn.execute("SELECT path FROM t ORDER BY path")]
    assert keys == in_sqlite
    assert len(keys) == len(names) + 2  # every file, the non-UTF-8 one, and the folder named a.jpg (an error)
    assert path_key(os.fsdecode(raw)) in keys and str(root / "~y" / "x.jpg") in keys


def test_the_scans_memory_does_not_grow_with_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "ROWS_PAGE", 100)
    peaks = {}
    for count in (500, 2000):
        root, db = tmp_path / f"photos{count}", tmp_path / f"state{count}" / "keepers.db"
        library(root, db, count)
        config = config_for(root, db, tmp_path)
        target = Recorder()
        tracemalloc.start()
        try:
            summary = scan(config, target)
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (summary.found, summary.unchanged, summary.queued, summary.deleted) == (count, count, 0, 0)
        assert target.submitted == []
    # four times the files, about the same peak: a page of rows and a folder's listing, not a row per photo
    assert peaks[2000] < 1.3 * peaks[500], peaks


def test_a_changed_a_new_a_deleted_and_a_moved_photo_are_found_among_unchanged_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "ROWS_PAGE", 50)  # the merge crosses many pages
    monkeypatch.setattr(scan_module, "DELETE_BATCH", 2)  # and marks the vanished in more than one batch
    root, db = tmp_path / "photos", tmp_path / "state" / "keepers.db"
    paths = library(root, db, 400)
    changed = paths[123]
    later = time.time() + 60
    os.utime(changed, (later, later))
    deleted = [paths[0], paths[250], paths[399]]  # the first row, one in the middle, the last
    for p in deleted:
        p.unlink()
    moved_from = paths[77]
    moved_to = root / "2000" / "event 0003 b" / moved_from.name  # sorts between its old folder's neighbours
    moved_to.parent.mkdir()
    moved_from.rename(moved_to)
    new = root / "2000" / "event 0010" / "IMG_new.jpg"
    new.write_bytes(FILE_BYTES + b"new")
    emptied = paths[380:400]  # a whole folder gone
    for p in emptied[:-1]:
        p.unlink()
    emptied[0].parent.rmdir()

    target = Recorder()
    summary = scan(config_for(root, db, tmp_path), target)

    assert sorted(target.submitted) == sorted([changed, moved_to, new])
    assert (summary.changed, summary.new) == (1, 2)
    conn = sqlite3.connect(db)
    gone = {r[0] for r in conn.execute("SELECT path FROM images WHERE status = 'deleted'")}
    conn.close()
    assert gone == {str(p) for p in [*deleted, moved_from, *emptied]}
    assert summary.deleted == len(gone) == 3 + 1 + 19
    assert summary.unchanged == 400 - 1 - len(gone)

    again = Recorder()
    summary = scan(config_for(root, db, tmp_path), again)  # the rows not yet rewritten are found the same way
    assert summary.deleted == 0 and sorted(again.submitted) == sorted([changed, moved_to, new])
