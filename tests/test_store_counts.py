"""The per-status photo counts the store keeps (``image_counts``, held exact by
triggers) so the dashboard reads four rows instead of counting the library:
they equal a real count after every kind of write the daemon makes, and after
the migration of a database that already holds photos."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.album.synthetic import SyntheticPhoto, insert_photo
from daemon.imaging.decode import PhotoMeta
from daemon.scoring.base import Score
from daemon.scoring.record import FileStat, mark_deleted, record_error, record_result
from daemon.store import StoreReader, StoreWriter
from daemon.store.schema import COUNTS_SCHEMA_VERSION, IMAGE_STATUSES, MIGRATIONS, SCHEMA_VERSION
from daemon.watch.moves import mark_folder_deleted, move_path, relink

WEIGHTS = {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}
META = PhotoMeta(width=640, height=480, taken_at=1_700_000_000.0, camera=None)


def real_counts(db_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(db_path)
    try:
        counts = {s: 0 for s in IMAGE_STATUSES}
        counts.update(dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall()))
        return counts
    finally:
        conn.close()


def kept_counts(db_path: Path) -> dict[str, int]:
    with StoreReader(db_path) as reader:
        assert reader.schema_version >= COUNTS_SCHEMA_VERSION
        return reader.status_counts()


def change_number(db_path: Path) -> int:
    with StoreReader(db_path) as reader:
        number = reader.image_changes()
        assert number is not None
        return number


def scored(db, path: str, sharpness: float = 0.5) -> int:  # type: ignore[no-untyped-def]
    return record_result(db, path=path, root="/photos", stat=FileStat(100, 1), meta=META, phash=None, content_hash=None,
                         scores=[Score("sharpness", "technical", sharpness, sharpness, "1")], weights=WEIGHTS)


def test_the_kept_counts_equal_a_real_count_after_every_kind_of_write(db_path: Path) -> None:
    steps = {
        "new photos scored": lambda db: [scored(db, f"/photos/a/IMG_{i}.jpg") for i in range(6)],
        "files that cannot be read": lambda db: [record_error(db, path=f"/photos/b/BAD_{i}.jpg", root="/photos",
                                                              stat=FileStat(5, 1), reason="truncated") for i in range(3)],
        "a photo rescored (status stays)": lambda db: scored(db, "/photos/a/IMG_0.jpg", 0.9),
        "an error fixed, a scored photo broken": lambda db: (scored(db, "/photos/b/BAD_0.jpg"),
                                                             record_error(db, path="/photos/a/IMG_1.jpg", root="/photos",
                                                                          stat=FileStat(7, 2), reason="truncated")),
        "a row waiting to be scored": lambda db: db.conn.execute(
            "INSERT INTO images (path, root, first_seen, updated_at) VALUES ('/photos/c/NEW.jpg', '/photos', 0, 0)"),
        "files deleted": lambda db: mark_deleted(db, ["/photos/a/IMG_2.jpg", "/photos/a/IMG_3.jpg", "/photos/nowhere.jpg"]),
        "deleted again (no change)": lambda db: mark_deleted(db, ["/photos/a/IMG_2.jpg"]),
        "a folder deleted": lambda db: mark_folder_deleted(db, "/photos/b"),
        "a rename over another photo (its row goes)": lambda db: move_path(db, "/photos/a/IMG_4.jpg", "/photos/a/IMG_5.jpg", "/photos"),
        "a deleted photo found again": lambda db: relink(db, db.conn.execute(
            "SELECT id FROM images WHERE path = '/photos/a/IMG_2.jpg'").fetchone()[0], "/photos/d/IMG_2.jpg", "/photos", 100, 1),
        "an upsert that changes the status": lambda db: insert_photo(
            db, SyntheticPhoto("/photos/c/NEW.jpg", 1_700_000_000.0, {"aesthetic": 0.4})),
        "a row removed outright": lambda db: db.conn.execute("DELETE FROM images WHERE path = '/photos/a/IMG_0.jpg'"),
    }
    # what the deletions say they changed: the photos' rows, not the counts' rows the triggers change too
    changed = {"files deleted": 2, "deleted again (no change)": 0, "a folder deleted": 3}
    seen: set[str] = set()
    with StoreWriter(db_path) as writer:
        for name, step in steps.items():
            before = change_number(db_path)
            result = writer.call(step)
            counts = real_counts(db_path)
            assert kept_counts(db_path) == counts, name
            seen |= {s for s, n in counts.items() if n}
            if name in changed:
                assert result == changed[name], name
            # the change number moves with every write that touched a photo, and only then
            assert (change_number(db_path) > before) == (name != "deleted again (no change)"), name
        before = change_number(db_path)
        writer.call(lambda db: db.conn.execute("UPDATE images SET moment = 7, cluster = 3"))  # what a selection run writes
        assert change_number(db_path) == before
    assert seen == set(IMAGE_STATUSES)  # every status was counted at some point


def test_the_migration_counts_the_photos_a_database_already_holds(db_path: Path) -> None:
    # a database as keepers made it before the counts existed, with photos of every status
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:COUNTS_SCHEMA_VERSION - 1], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {version}")
    rows = [(f"/photos/IMG_{i}.jpg", status) for i, status in enumerate(["scored"] * 7 + ["error"] * 2 + ["pending", "deleted"])]
    conn.executemany("INSERT INTO images (path, root, status, first_seen, updated_at) VALUES (?, '/photos', ?, 0, 0)", rows)
    conn.close()
    expected = {"scored": 7, "error": 2, "pending": 1, "deleted": 1}

    with StoreReader(db_path) as reader:  # a dashboard that runs before the daemon has migrated counts the rows
        assert reader.schema_version == COUNTS_SCHEMA_VERSION - 1
        assert reader.status_counts() == expected
        assert reader.image_changes() is None

    with StoreWriter(db_path) as writer:
        assert writer.db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert kept_counts(db_path) == expected
        # the pending photo scored, a scored one deleted
        writer.call(lambda db: (scored(db, "/photos/IMG_9.jpg"), mark_deleted(db, ["/photos/IMG_0.jpg"])))
    assert kept_counts(db_path) == real_counts(db_path) == {"scored": 7, "error": 2, "pending": 0, "deleted": 2}
