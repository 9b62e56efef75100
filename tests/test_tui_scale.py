"""The dashboard's refresh at a size CI affords: what each screen reads on a tick
does not grow with the library (bench/tui.py times the same at 1 000 000).

SQLite's progress handler counts the virtual-machine steps of every query a
screen's load makes: a query that walks or sorts the library takes steps in
proportion to its rows, one that reads a page through an index does not."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest

from daemon.album import run_selection
from daemon.album.synthetic import SyntheticPhoto, insert_photo, library_photos
from daemon.config import Config
from daemon.scoring.record import mark_deleted, record_error
from daemon.store import StoreReader, StoreWriter
from tui.queries import PHOTO_SORTS, PHOTO_STATUS_FILTERS, PhotoQuery, album_view, cluster_siblings, overview, photo_page

SIZES = (3000, 12000)  # both with albums dense enough to be read by walking the capture-time index
STEP = 50  # VM instructions between two calls of the progress handler


def build(db_path: Path, count: int) -> None:
    """``count`` scored photos in bursts, then the same few errors, deletions and a
    waiting photo whatever the size, and a full selection run (the album)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    photos = library_photos(count, seed=5, folders=20)
    with StoreWriter(db_path) as writer:
        writer.call(lambda db: [insert_photo(db, p) for p in photos], timeout=None)

        def troubles(db: Any) -> None:
            for i in range(5):
                record_error(db, path=f"/photos/broken/BAD_{i}.jpg", root="/photos", stat=None, reason="truncated")
            mark_deleted(db, [p.path for p in photos[:3]])
            db.conn.execute("INSERT INTO images (path, root, first_seen, updated_at) VALUES ('/photos/new/IMG.jpg', '/photos', 0, 0)")

        writer.call(troubles)
        run_selection(writer, Config(), full=True, export=False)


@pytest.fixture(scope="module")
def libraries(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for count in SIZES:
        db = tmp_path_factory.mktemp(f"lib{count}") / "keepers.db"
        build(db, count)
        out[count] = db
    return out


def steps(db: Path, load: Callable[[StoreReader], Any]) -> int:
    with StoreReader(db) as reader:
        calls = [0]

        def tick() -> int:
            calls[0] += 1
            return 0

        reader.conn.set_progress_handler(tick, STEP)
        load(reader)
        return calls[0] * STEP


def first_pick(reader: StoreReader) -> int:
    view = album_view(reader)
    assert view.picks
    return view.picks[0].image_id


VIEWS: dict[str, Callable[[StoreReader], Any]] = {
    "overview": overview,
    "album": album_view,
    "album's not-picked photos": lambda r: cluster_siblings(r, first_pick(r)),
    **{f"photos {status} by {sort}": (lambda r, q=PhotoQuery(sort=sort, status=status): photo_page(r, q))
       for status in PHOTO_STATUS_FILTERS for sort in PHOTO_SORTS},
    "photos, second page": lambda r: photo_page(r, PhotoQuery(offset=200)),
}


@pytest.mark.parametrize("view", VIEWS)
def test_a_refresh_reads_a_page_not_the_library(libraries: dict[int, Path], view: str) -> None:
    small, large = (steps(libraries[n], VIEWS[view]) for n in SIZES)
    # four times the photos: the same page, a few more steps for a deeper index at most
    # (a count or a sort of every photo takes thousands more: 7 350 -> 28 350 for the Overview that counted)
    assert large <= 1.05 * small + 500, (view, small, large)


def test_the_counts_a_refresh_shows_are_exact(libraries: dict[int, Path]) -> None:
    db = libraries[SIZES[0]]
    conn = sqlite3.connect(db)
    real = dict(conn.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
    conn.close()
    with StoreReader(db) as reader:
        assert overview(reader).counts == {"pending": 1, "scored": SIZES[0] - 3, "error": 5, "deleted": 3} == real
        for status in PHOTO_STATUS_FILTERS:
            page = photo_page(reader, PhotoQuery(status=status, sort="status"))
            listed = ("pending", "scored", "error") if status == "all" else (status,)
            assert page.total == sum(real.get(s, 0) for s in listed)
            assert len(page.rows) == min(page.total, 200)
            assert {r.status for r in page.rows} <= set(listed)


def test_the_status_order_pages_through_every_status_in_turn(libraries: dict[int, Path]) -> None:
    """The "status" sort, cut a status at a time from the kept counts, lists what one
    query ordering every row by status, composite would, page after page."""
    db = libraries[SIZES[0]]
    conn = sqlite3.connect(db)
    expected = [r[0] for r in conn.execute(
        f"SELECT id FROM images WHERE status != 'deleted' ORDER BY {PHOTO_SORTS['status']}, id")]
    conn.close()
    listed: list[int] = []
    with StoreReader(db) as reader:
        for offset in range(0, len(expected), 200):
            listed += [r.id for r in photo_page(reader, PhotoQuery(sort="status", offset=offset)).rows]
    assert listed == expected


def test_the_album_in_capture_order_is_read_in_order_not_sorted(libraries: dict[int, Path]) -> None:
    """`keepers picks` reads the picks in the order of the capture-time index (SQLite sorts
    only photos taken in the same instant, never the whole album), oldest first."""
    from daemon.cli.album import _picks

    conn = sqlite3.connect(f"file:{libraries[SIZES[0]]}?mode=ro", uri=True)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    picks = list(_picks(conn))
    conn.set_trace_callback(None)
    plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + statements[-1]))
    taken = dict(conn.execute("SELECT id, coalesce(taken_at, mtime_ns / 1e9) FROM images").fetchall())
    conn.close()
    assert "images_when" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    times = [taken[p["image_id"]] for p in picks]
    assert len(times) > 100 and times == sorted(times)


def test_a_search_is_read_again_only_when_a_photo_changed(libraries: dict[int, Path]) -> None:
    """A path search reads every path once; its refreshes re-read the page by id while the
    store's change number stands, and search again as soon as a photo changes."""
    query = PhotoQuery(text="img_0001")  # IMG_000100 to IMG_000199 at either size
    refreshes = []
    for n in SIZES:
        with StoreReader(libraries[n]) as reader:
            first = photo_page(reader, query)
            assert first.search is not None and first.total == len(first.rows) > 0
        refreshes.append(steps(libraries[n], lambda r, memo=first.search: photo_page(r, query, memo)))
        searches = steps(libraries[n], lambda r: photo_page(r, query))
        assert refreshes[-1] < searches / 5, (n, refreshes[-1], searches)
    assert refreshes[1] <= 1.05 * refreshes[0] + 500, refreshes

    db = libraries[SIZES[0]]
    with StoreReader(db) as reader:
        page = photo_page(reader, query)
    with StoreWriter(db) as writer:
        writer.call(lambda d: insert_photo(d, SyntheticPhoto("/photos/new/IMG_0001_late.jpg", 1_900_000_000.0, {"aesthetic": 0.99})))
    with StoreReader(db) as reader:
        again = photo_page(reader, query, page.search)
    assert again.total == page.total + 1 and again.rows[0].path == "/photos/new/IMG_0001_late.jpg"


@pytest.mark.parametrize("kept", [20, 0])
def test_an_album_small_beside_its_library_is_sorted_not_looked_for(libraries: dict[int, Path], tmp_path: Path, kept: int) -> None:
    """An album of a few picks (or none yet) among many photos: its page is read from the
    picks and sorted, not found by walking every photo's capture time."""
    counted = []
    for n in SIZES:
        copy = tmp_path / f"{n}.db"
        source, target = sqlite3.connect(libraries[n]), sqlite3.connect(copy)
        source.backup(target)
        source.close()
        target.execute("DELETE FROM picks WHERE image_id NOT IN (SELECT image_id FROM picks ORDER BY image_id LIMIT ?)", (kept,))
        target.commit()
        target.close()
        with StoreReader(copy) as reader:
            view = album_view(reader)
            assert view.total_picks == len(view.picks) == kept
            times = [p.taken_at for p in view.picks]
            assert times == sorted(times)
        counted.append(steps(copy, album_view))
    assert counted[1] <= 1.05 * counted[0] + 500, counted
