"""Large libraries at a size CI affords: the full reselection and the --json
listings hold a batch, not the library, and a full reselection lets scoring
commit between its batches (bench/scale.py measures the same at 1 000 000)."""

from __future__ import annotations

import json
import contextlib
import sqlite3
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from daemon.album import apply as album_apply
from daemon.album import plan as album_plan
from daemon.album import run_selection
from daemon.album.synthetic import SyntheticPhoto, insert_photo, library_photos
from daemon.cli import main
from daemon.config import Config
from daemon.store.writer import StoreWriter


def build(db_path: Path, count: int) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with StoreWriter(db_path) as writer:
        photos = library_photos(count, seed=3, folders=20)
        writer.call(lambda db: [insert_photo(db, p) for p in photos], timeout=None)


def peak_bytes(work) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_full_reselection_holds_a_batch_not_the_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(album_plan, "BATCH_PHOTOS", 150)
    peaks = {}
    for count in (600, 2400):
        db = tmp_path / str(count) / "keepers.db"
        build(db, count)
        with StoreWriter(db) as writer:
            peaks[count] = peak_bytes(lambda: run_selection(writer, Config(), full=True, export=False))
            picked = writer.db.conn.execute("SELECT count(*) FROM picks").fetchone()[0]
            assert picked > count // 10  # it did pick the whole library
    # four times the photos, a peak a few bytes a photo higher: the id/folder/time arrays and the
    # run's pick changes, about 100 bytes a photo; a photo's row held whole would be a kilobyte or more
    assert (peaks[2400] - peaks[600]) / 1800 < 300, peaks


def test_a_full_reselection_lets_a_photos_scoring_commit_between_its_batches(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(album_plan, "BATCH_PHOTOS", 100)
    build(db_path, 800)
    order: list[str] = []
    real_apply = album_apply.apply_batch
    late = SyntheticPhoto("/photos/late/IMG_9999.jpg", 1_900_000_000.0, {"aesthetic": 0.9}, "00000000000000ff")

    with StoreWriter(db_path) as writer:
        writer.start()

        def apply_batch(db, plan, album, run_id, changes):  # type: ignore[no-untyped-def]
            order.append("batch")
            if order.count("batch") == 2:  # a photo finishes scoring while the run is under way
                writer.submit(lambda db: order.append("scored") or insert_photo(db, late))
            return real_apply(db, plan, album, run_id, changes)

        monkeypatch.setattr("daemon.album.selection.apply_batch", apply_batch)
        done = threading.Event()
        result = {}

        def reselect() -> None:
            result["run"] = run_selection(writer, Config(), full=True, export=False)
            done.set()

        thread = threading.Thread(target=reselect)
        thread.start()
        thread.join(120)
        assert done.is_set()
    batches = order.count("batch")
    assert batches >= 8
    # the photo's commit went in while batches were still to come, not after the whole run
    assert order.index("scored") < len(order) - 1 and order[order.index("scored") + 1] == "batch", order
    assert result["run"].photos == 801  # the run counts the photo that committed during it


class Sink:
    """stdout that keeps only a count, so the traced peak is the command's own."""

    chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def flush(self) -> None:
        pass


def listing_peak(db: Path, command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, int]:
    capsys.readouterr()
    assert main([command, "--json", "--db", str(db)]) == 0
    rows = len(json.loads(capsys.readouterr().out))
    with contextlib.redirect_stdout(Sink()):  # type: ignore[type-var]
        peak = peak_bytes(lambda: main([command, "--json", "--db", str(db)]))
    return peak, rows


@pytest.mark.parametrize("command", ["scores", "picks"])
def test_json_listings_stream_memory_does_not_grow_with_rows(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    peaks = {}
    for count in (500, 4000):
        db = tmp_path / str(count) / "keepers.db"
        build(db, count)
        if command == "picks":
            with StoreWriter(db) as writer:
                run_selection(writer, Config(), full=True, export=False)
        peak, rows = listing_peak(db, command, capsys)
        expected = sqlite3.connect(db).execute(f"SELECT count(*) FROM {'images' if command == 'scores' else 'picks'}").fetchone()[0]
        assert rows == expected
        peaks[count] = peak
    # eight times the rows, about the same peak: a few records at a time
    assert peaks[4000] < 1.5 * peaks[500], peaks


def test_streamed_json_is_the_list_one_item_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli.common import print_json_list

    for value in ([], [{"a": 1, "b": ["x\ny", None]}], [{"a": 1}, {"b": {"c": 2.5}}, "é"]):
        assert print_json_list(iter(value)) == len(value)
        out = capsys.readouterr().out
        assert json.loads(out) == value
        assert len(out.splitlines()) == (len(value) + 2 if value else 1)



def test_a_full_reselection_of_an_unchanged_library_writes_only_its_run(tmp_path: Path) -> None:
    """Only the rows that differ are written: a second full run of the same library reads every
    batch and changes nothing but its own selection_runs row, and the picks keep the run that made them."""
    db = tmp_path / "keepers.db"
    build(db, 1200)
    with StoreWriter(db) as writer:
        first = run_selection(writer, Config(), full=True, export=False)
        conn = writer.db.conn
        album = conn.execute("SELECT * FROM picks ORDER BY image_id").fetchall()
        candidates = conn.execute("SELECT * FROM album_candidates ORDER BY image_id").fetchall()
        assert len(album) > 100 and {r[1] for r in album} == {first.run_id}
        before = conn.total_changes
        again = run_selection(writer, Config(), full=True, export=False)
        assert (again.mode, again.moments_recomputed) == ("full", first.moments)
        assert conn.total_changes - before == 2  # the run's row: inserted when it began, updated when it finished
        assert conn.execute("SELECT * FROM picks ORDER BY image_id").fetchall() == album
        assert conn.execute("SELECT * FROM album_candidates ORDER BY image_id").fetchall() == candidates
        # a photo rescored: the next full run rewrites its moment's rows, not the library's
        photo = conn.execute("SELECT image_id, moment FROM picks ORDER BY image_id LIMIT 1").fetchone()
        writer.call(lambda db: db.conn.execute("UPDATE images SET groups_json = ? WHERE id = ?", (json.dumps({"aesthetic": 0.0}), photo[0])))
        before = conn.total_changes
        third = run_selection(writer, Config(), full=True, export=False)
        changed = conn.execute("SELECT image_id FROM picks WHERE run_id = ?", (third.run_id,)).fetchall()
        moment_size = conn.execute("SELECT count(*) FROM images WHERE moment = ?", (photo[1],)).fetchone()[0]
        assert 0 < len(changed) <= moment_size
        assert 2 < conn.total_changes - before <= 2 + 4 * moment_size


def test_a_large_full_run_planned_in_a_child_process_picks_the_same_album(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full run of PLAN_PROCESS_PHOTOS or more plans in a child process while this one writes:
    the album, moments and clusters are those of a run planned here; a child that fails makes a failed run."""
    from daemon.album import selection

    albums = {}
    for where, limit in (("here", 10**9), ("child", 1)):
        db = tmp_path / where / "keepers.db"
        build(db, 900)
        monkeypatch.setattr(selection, "PLAN_PROCESS_PHOTOS", limit)
        with StoreWriter(db) as writer:
            result = run_selection(writer, Config(), full=True, export=False)
            albums[where] = (result.picks, result.added,
                             writer.db.conn.execute("SELECT image_id, moment, cluster, rank, composite, reason FROM picks ORDER BY image_id").fetchall(),
                             writer.db.conn.execute("SELECT id, moment, cluster FROM images ORDER BY id").fetchall())
    assert albums["child"] == albums["here"] and albums["here"][0] > 100
    # no process to plan in: the run plans here, and picks the same album
    db = tmp_path / "fallback" / "keepers.db"
    build(db, 900)

    def no_process(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(selection.subprocess, "Popen", no_process)
    with StoreWriter(db) as writer, caplog.at_level("WARNING", logger="daemon.album.selection"):
        result = run_selection(writer, Config(), full=True, export=False)
        assert "cannot plan the selection in a process of its own" in caplog.text and "Resource temporarily unavailable" in caplog.text
        assert (result.picks, result.added) == albums["here"][:2]
        assert writer.db.conn.execute("SELECT image_id, moment, cluster, rank, composite, reason FROM picks ORDER BY image_id").fetchall() == albums["here"][2]
    monkeypatch.undo()
    # the child's failure reaches the run, with the child's reason
    split = album_plan.FullSplit(np.array([1], dtype=np.int64), np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), [], None, 10)
    with pytest.raises(RuntimeError, match="planning the selection failed in its process: StoreError: database .*missing.db does not exist"):
        list(selection.planned_in_child(tmp_path / "missing.db", Config(), split) or ())
