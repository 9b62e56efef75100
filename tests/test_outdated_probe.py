"""Whether anything was scored or hashed by an older version is asked at every start:
with nothing outdated that is a few index probes whose cost does not grow with the
library (at 1 000 000 photos the full query read every score: 10 s of CPU), and
whatever is outdated is still found, in either direction of the version."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.album.synthetic import insert_photo, library_photos
from daemon.imaging.hashing import PHASH_VERSION
from daemon.scoring.scan import outdated_photos
from daemon.store import StoreWriter

STEP = 50  # VM instructions between two calls of the progress handler


@dataclass
class Scorer:
    name: str
    version: str
    task: str = "technical"


CURRENT = [Scorer("sharpness", "4")]


def build(db_path: Path, count: int) -> Path:
    photos = library_photos(count, seed=7, folders=10)
    with StoreWriter(db_path) as writer:
        writer.call(lambda db: [insert_photo(db, p) for p in photos], timeout=None)
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE scores SET model_version = '4'")
        conn.execute("UPDATE images SET phash_version = ?", (PHASH_VERSION,))
    conn.close()
    return db_path


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    return {n: build(tmp_path_factory.mktemp(f"lib{n}") / "keepers.db", n) for n in (1000, 4000)}


def steps(db: Path) -> tuple[int, list[tuple[str, str]]]:
    conn = sqlite3.connect(db)
    calls = [0]

    def tick() -> int:
        calls[0] += 1
        return 0

    conn.set_progress_handler(tick, STEP)
    try:
        out = outdated_photos(conn, CURRENT)
        return calls[0] * STEP, out
    finally:
        conn.close()


def test_a_library_with_nothing_outdated_is_told_so_in_steps_that_do_not_grow_with_it(libraries: dict[int, Path]) -> None:
    small, small_out = steps(libraries[1000])
    large, large_out = steps(libraries[4000])
    assert small_out == [] and large_out == []
    assert large <= small + 2 * STEP, (small, large)
    # the full query, as it ran before, walks every score: it grows with the library
    conn = sqlite3.connect(libraries[4000])
    walked = [0]
    conn.set_progress_handler(lambda: walked.__setitem__(0, walked[0] + 1), STEP)
    conn.execute("SELECT count(*) FROM scores WHERE model = 'sharpness' AND model_version IS NOT '4'").fetchone()
    conn.close()
    assert walked[0] * STEP > 10 * large


#: what makes one photo outdated: an older, a newer or no version of a score, or of its hash
OUTDATING = {
    "score": ("UPDATE scores SET model_version = ? WHERE image_id = ?", ["3", "10", None]),
    "hash": ("UPDATE images SET phash_version = ? WHERE id = ?", ["1", "99", None]),
}


@pytest.mark.parametrize(("what", "stored"), [(what, v) for what, (_, values) in OUTDATING.items() for v in values])
def test_one_photo_with_an_older_newer_or_missing_version_among_thousands_is_found(
        tmp_path: Path, what: str, stored: str | None) -> None:
    db = build(tmp_path / "keepers.db", 1000)
    conn = sqlite3.connect(db)
    with conn:  # the last photo for a score, the first for a hash: either end of the indexes
        order = "DESC" if what == "score" else "ASC"
        path, image_id = conn.execute(f"SELECT path, id FROM images WHERE status = 'scored' ORDER BY id {order} LIMIT 1").fetchone()
        conn.execute(OUTDATING[what][0], (stored, image_id))
    assert [p for p, _ in outdated_photos(conn, CURRENT)] == [path]
    conn.close()
