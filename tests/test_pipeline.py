"""The pipeline and the catch-up scan: hostile files, incremental re-scans,
deletions, files that vanish mid-scan, unmounted folders, telemetry."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Config, load_config
from daemon.scoring.base import Score
from daemon.scoring.pipeline import Pipeline
from daemon.scoring.record import path_key
from daemon.scoring.scan import Found, ScanSummary, scan_folders
from daemon.store.writer import StoreWriter
from fixtures_photos import HOSTILE_EXPECTED, save_jpeg, scene


class MeanLuma:
    """A real (if simple) measurement: mean luma, 1 = bright. Counts its calls."""

    name, task, version = "mean_luma", "technical", "1"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def score(self, image: Any) -> list[Score]:
        self.calls.append(image.path.name)
        value = float(image.grey().mean())
        return [Score(self.name, self.task, value, value / 255.0)]


class Broken:
    name, task, version = "broken", "aesthetic", "1"

    def score(self, image: Any) -> list[Score]:
        raise RuntimeError("this scorer always fails")


def config_for(folder: Path, db: Path, tmp_path: Path, extra: str = "") -> Config:
    file = tmp_path / "keepers.yaml"
    file.write_text(f"photos: [{str(folder)!r}]\ndatabase: {str(db)!r}\nworkers: 2\n{extra}")
    return load_config(file)


def run_scan(config: Config, scorers: list[Any], **kw: Any) -> ScanSummary:
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, scorers).start()
        try:
            summary = scan_folders(config, writer, pipeline, **kw)
            assert pipeline.drain(60)
        finally:
            pipeline.stop()
    return summary


def rows(db: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {Path(r["path"]).name: dict(r) for r in conn.execute("SELECT * FROM images")}
    finally:
        conn.close()


def test_hostile_files_become_error_rows_and_never_stop_the_run(hostile_dir: Path, db_path: Path, tmp_path: Path) -> None:
    config = config_for(hostile_dir, db_path, tmp_path, "include_extensions: [.jpg, .png, .gif]\n")
    scorer = MeanLuma()
    summary = run_scan(config, [scorer])
    got = rows(db_path)
    for name, expected in HOSTILE_EXPECTED.items():
        key = Path(path_key(os.fsdecode(name) if isinstance(name, bytes) else name)).name
        assert key in got, f"{key!r}: no row"
        row = got[key]
        assert row["status"] == expected, (key, row["status"], row["error"])
        if expected == "error":
            assert row["error"] and len(row["error"]) > 8, (key, row["error"])
            assert row["composite"] is None
    # the reasons say what happened, in words
    assert "empty" in got["empty.jpg"]["error"]
    assert "truncated" in got["truncated.jpg"]["error"]
    assert "text" in got["text.jpg"]["error"]
    assert "decompression bomb" in got["bomb.png"]["error"]
    assert "too small" in got["one_pixel.png"]["error"]
    assert "animation" in got["animated.gif"]["error"]
    assert "not a regular file" in got["fifo.jpg"]["error"]
    assert "broken symbolic link" in got["broken_link.jpg"]["error"]
    assert "loop" in got["loop_link.jpg"]["error"]
    assert "folder" in got["folder.jpg"]["error"]
    assert "UTF-8" in got["caf\\xe9.jpg"]["error"]
    # the good photos (and the valid unusual ones) were scored despite all that
    assert got["good_1.jpg"]["status"] == got["good_2.jpg"]["status"] == "scored"
    assert got["deep16.png"]["width"] == 256 and got["cmyk.jpg"]["composite"] is not None
    assert summary.errors == 3  # what the walker itself finds (two links, a folder); the workers find the rest


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway; the FIFO case stands in for it")
def test_an_unreadable_file_becomes_an_error_row(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    path = save_jpeg(scene("coffee", (200, 150)), photo_dir / "locked.jpg")
    path.chmod(0)
    try:
        run_scan(config_for(photo_dir, db_path, tmp_path), [MeanLuma()])
    finally:
        path.chmod(0o644)
    row = rows(db_path)["locked.jpg"]
    assert row["status"] == "error" and "permission denied" in row["error"]


def test_rescan_scores_only_what_changed_and_marks_deletions(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    for i, name in enumerate(("a", "b", "c")):
        save_jpeg(scene(("coffee", "chelsea", "rocket")[i], (240, 160)), photo_dir / f"{name}.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    first = MeanLuma()
    assert run_scan(config, [first]).new == 3
    assert sorted(first.calls) == ["a.jpg", "b.jpg", "c.jpg"]
    ids_before = {n: r["id"] for n, r in rows(db_path).items()}

    second = MeanLuma()
    summary = run_scan(config, [second])
    assert (summary.unchanged, summary.new, summary.changed, second.calls) == (3, 0, 0, [])

    later = time.time() + 5
    os.utime(photo_dir / "b.jpg", (later, later))  # touched
    (photo_dir / "c.jpg").unlink()
    third = MeanLuma()
    summary = run_scan(config, [third])
    assert third.calls == ["b.jpg"]
    assert (summary.changed, summary.deleted, summary.unchanged) == (1, 1, 1)
    after = rows(db_path)
    assert after["c.jpg"]["status"] == "deleted"
    assert {n: r["id"] for n, r in after.items()} == ids_before  # same rows: nothing dropped, nothing duplicated


def test_a_file_that_vanishes_mid_scan_is_not_scored_and_its_row_is_marked_deleted(
        photo_dir: Path, db_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("keep", "gone_new", "gone_old"):
        save_jpeg(scene("coffee", (200, 150)), photo_dir / f"{name}.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    # gone_old is scored once, then changes, then vanishes while the scan is running
    (photo_dir / "gone_new.jpg").rename(tmp_path / "gone_new.jpg")
    run_scan(config, [MeanLuma()])
    (tmp_path / "gone_new.jpg").rename(photo_dir / "gone_new.jpg")
    later = time.time() + 5
    os.utime(photo_dir / "gone_old.jpg", (later, later))

    def vanish(found: Found) -> None:
        if found.path.name.startswith("gone_"):
            found.path.unlink()  # between the walk seeing it and a worker reading it

    caplog.set_level(logging.INFO, logger="daemon.scoring.pipeline")
    scorer = MeanLuma()
    run_scan(config, [scorer], on_found=vanish)
    got = rows(db_path)
    assert "gone_new.jpg" not in got  # never recorded
    assert got["gone_old.jpg"]["status"] == "deleted"
    assert got["keep.jpg"]["status"] == "scored"
    assert not any(c.startswith("gone_") for c in scorer.calls)
    assert "disappeared before it was scored" in caplog.text


def test_an_unmounted_or_emptied_folder_marks_nothing_deleted(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        save_jpeg(scene("coffee", (200, 150)), photo_dir / f"{name}.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    run_scan(config, [MeanLuma()])
    for p in photo_dir.iterdir():
        p.rename(tmp_path / p.name)  # the folder now looks like an empty mount point
    summary = run_scan(config, [MeanLuma()])
    assert summary.deleted == 0 and summary.skipped_roots == (str(photo_dir),)
    photo_dir.rmdir()
    summary = run_scan(config, [MeanLuma()], roots=[photo_dir])
    assert summary.skipped_roots == (str(photo_dir),)
    assert {r["status"] for r in rows(db_path).values()} == {"scored"}


def test_a_failing_scorer_loses_nothing_of_the_others(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    save_jpeg(scene("chelsea", (200, 150)), photo_dir / "cat.jpg")
    run_scan(config_for(photo_dir, db_path, tmp_path), [Broken(), MeanLuma()])
    row = rows(db_path)["cat.jpg"]
    assert row["status"] == "scored" and row["composite"] is not None
    assert "broken: RuntimeError: this scorer always fails" in row["error"]
    assert row["coverage"] == '["technical"]'


def test_ignored_names_and_the_album_folder_are_never_scanned(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    img = scene("coffee", (200, 150))
    for rel in ("ok.jpg", ".hidden.jpg", "dl.jpg.part", "~lock.jpg", "@eaDir/thumb.jpg", ".thumbnails/t.jpg", "album/pick.jpg"):
        save_jpeg(img, photo_dir / rel) if rel.endswith(".jpg") else (photo_dir / rel).write_bytes(b"partial")
    config = config_for(photo_dir, db_path, tmp_path, f"export:\n  folder: {str(photo_dir / 'album')!r}\n")
    scorer = MeanLuma()
    run_scan(config, [scorer])
    assert scorer.calls == ["ok.jpg"]
    assert set(rows(db_path)) == {"ok.jpg"}


def test_each_photo_commits_with_its_scores_and_stage_timings_are_recorded(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    for i in range(6):
        save_jpeg(scene("rocket", (300, 200)), photo_dir / f"r{i}.jpg", quality=60 + i * 5)
    config = config_for(photo_dir, db_path, tmp_path)
    committed: list[int] = []
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [MeanLuma()])
        pipeline.on_committed(committed.extend)
        pipeline.start()
        scan_folders(config, writer, pipeline)
        assert pipeline.drain(60)
        assert pipeline.scored_total == 6 and pipeline.queue_depth() == 0
        pipeline.stop()
    conn = sqlite3.connect(db_path)
    try:
        scored = {r[0] for r in conn.execute("SELECT id FROM images WHERE status = 'scored'")}
        with_scores = {r[0] for r in conn.execute("SELECT DISTINCT image_id FROM scores")}
        stages = {r[0]: r[1] for r in conn.execute("SELECT stage, sum(count) FROM telemetry GROUP BY stage")}
        hashes = [r[0] for r in conn.execute("SELECT phash FROM images")]
    finally:
        conn.close()
    assert sorted(committed) == sorted(scored) and scored == with_scores
    assert stages["decode"] == 6 and stages["mean_luma"] == 6 and stages["write"] == 6
    assert all(h and len(h) == 16 for h in hashes)


def test_submit_coalesces_a_path_already_waiting(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    path = save_jpeg(scene("coffee", (200, 150)), photo_dir / "one.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    scorer = MeanLuma()
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [scorer])  # not started: the queue holds still
        assert pipeline.submit(path, photo_dir) is True
        assert pipeline.submit(path, photo_dir) is False
        pipeline.start()
        assert pipeline.drain(30)
        pipeline.stop()
    assert scorer.calls == ["one.jpg"]


class PerThread(MeanLuma):
    """Keeps per-thread state, as the face scorer keeps its cascades; records where it was prepared."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []
        self.failing_once = True

    def prepare_thread(self) -> None:
        import threading

        self.prepared.append(threading.current_thread().name)
        if self.failing_once:
            self.failing_once = False
            raise RuntimeError("a preparation that fails must not stop the worker")


def test_every_worker_prepares_its_scorers_before_its_first_photo(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    for i in range(4):
        save_jpeg(scene("rocket", (200, 150)), photo_dir / f"r{i}.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    scorer = PerThread()
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [scorer]).start()
        assert pipeline.wait_ready(30)
        assert sorted(scorer.prepared) == ["score-0", "score-1"] and scorer.calls == []
        assert pipeline.wait_ready(0)  # a second wait returns at once
        assert all(t.is_alive() for t in pipeline._workers)  # the failed preparation did not end its worker
        scan_folders(config, writer, pipeline)
        assert pipeline.drain(60)
        pipeline.stop()
    assert sorted(scorer.calls) == [f"r{i}.jpg" for i in range(4)]


class RenamesWhileScoring(MeanLuma):
    """Renames the photo while it is being scored, as a user renaming a fresh photo would."""

    def score(self, image: Any) -> list[Score]:
        scores = super().score(image)
        image.path.rename(image.path.with_name("renamed-" + image.path.name))
        return scores


def test_a_photo_renamed_while_it_is_scored_leaves_no_row_under_its_old_name(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    save_jpeg(scene("rocket", (200, 150)), photo_dir / "fresh.jpg")
    config = config_for(photo_dir, db_path, tmp_path)
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [RenamesWhileScoring()]).start()
        scan_folders(config, writer, pipeline)
        assert pipeline.drain(60)
        assert pipeline.scored_total == 0
        pipeline.stop()
    assert "fresh.jpg" not in {name for name, row in rows(db_path).items() if row["status"] != "deleted"}
    # the new name is an ordinary new file: the next scan scores it once
    summary = run_scan(config, [MeanLuma()])
    assert summary.new == 1 and rows(db_path)["renamed-fresh.jpg"]["status"] == "scored"


class MeanLumaV2(MeanLuma):
    """The same measure after an upgrade changed its formula."""

    version = "2"

    def score(self, image: Any) -> list[Score]:
        self.calls.append(image.path.name)
        value = float(image.grey().mean())
        return [Score(self.name, self.task, value, 1.0 - value / 255.0, self.version)]


def test_photos_scored_by_an_older_scorer_version_are_scored_again_keeping_other_scores(
        photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    from daemon.scoring.scan import outdated_photos, rescore_outdated

    for i in range(3):
        save_jpeg(scene("rocket", (200, 150)), photo_dir / f"r{i}.jpg", quality=60 + i * 10)
    config = config_for(photo_dir, db_path, tmp_path)
    run_scan(config, [MeanLuma()])
    conn = sqlite3.connect(db_path)
    with conn:  # a learned model's score, which the refresh must keep
        conn.execute("INSERT INTO scores (image_id, model, task, raw, normalised, model_version, scored_at) "
                     "SELECT id, 'musiq-spaq', 'aesthetic', 70.0, 0.7, '1', 0 FROM images")
    assert outdated_photos(conn, [MeanLuma()]) == []
    assert len(outdated_photos(conn, [MeanLumaV2()])) == 3
    conn.close()

    upgraded = MeanLumaV2()
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [upgraded]).start()
        summary = scan_folders(config, writer, pipeline)
        assert summary.unchanged == 3 and summary.queued == 0
        assert rescore_outdated(writer, pipeline) == 3
        assert pipeline.drain(60)
        assert rescore_outdated(writer, pipeline) == 0  # nothing left to refresh
        pipeline.stop()
    assert sorted(upgraded.calls) == ["r0.jpg", "r1.jpg", "r2.jpg"]
    conn = sqlite3.connect(db_path)
    try:
        got = conn.execute("SELECT model, model_version, normalised FROM scores ORDER BY image_id, model").fetchall()
        composites = conn.execute("SELECT composite, groups_json FROM images").fetchall()
    finally:
        conn.close()
    assert {(m, v) for m, v, _ in got} == {("mean_luma", "2"), ("musiq-spaq", "1")} and len(got) == 6
    assert all(json.loads(g).keys() == {"aesthetic", "technical"} for _, g in composites)


def test_photos_hashed_by_an_older_perceptual_hash_are_hashed_again(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    from daemon.imaging.hashing import PHASH_VERSION
    from daemon.scoring.scan import outdated_photos, rescore_outdated

    for i in range(2):
        save_jpeg(scene("coffee", (300, 200)), photo_dir / f"c{i}.jpg", quality=70 + i * 10)
    config = config_for(photo_dir, db_path, tmp_path)
    run_scan(config, [MeanLuma()])
    assert {r["phash_version"] for r in rows(db_path).values()} == {PHASH_VERSION}
    hashes = {name: r["phash"] for name, r in rows(db_path).items()}
    conn = sqlite3.connect(db_path)
    with conn:  # as a database from before the hash was versioned holds them
        conn.execute("UPDATE images SET phash = '0000000000000000', phash_version = NULL WHERE path LIKE '%c0.jpg'")
    assert outdated_photos(conn, [MeanLuma()]) == [(str(photo_dir / "c0.jpg"), str(photo_dir))]
    assert outdated_photos(conn, []) == [(str(photo_dir / "c0.jpg"), str(photo_dir))]
    conn.close()

    scorer = MeanLuma()
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [scorer]).start()
        assert rescore_outdated(writer, pipeline) == 1
        assert pipeline.drain(60)
        pipeline.stop()
    assert scorer.calls == ["c0.jpg"]
    assert {name: r["phash"] for name, r in rows(db_path).items()} == hashes
    assert {r["phash_version"] for r in rows(db_path).values()} == {PHASH_VERSION}


class SlowMeanLumaV2(MeanLumaV2):
    def score(self, image: Any) -> list[Score]:
        time.sleep(0.05)
        return super().score(image)


def test_stopping_while_a_library_is_queued_again_ends_quietly_and_leaves_the_rest_for_next_start(
        photo_dir: Path, db_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import threading

    from daemon.scoring.scan import outdated_photos, rescore_outdated

    for i in range(12):
        save_jpeg(scene("rocket", (120, 90)), photo_dir / f"r{i:02d}.jpg", quality=50 + i)
    config = config_for(photo_dir, db_path, tmp_path, "queue_size: 2\n")
    run_scan(config, [MeanLuma()])
    stop = threading.Event()
    result: list[int] = []
    caplog.set_level(logging.INFO)
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [SlowMeanLumaV2()]).start()
        feeder = threading.Thread(target=lambda: result.append(rescore_outdated(writer, pipeline, stop)))
        feeder.start()
        for _ in range(200):  # the bounded queue fills and the feeder waits on it
            if pipeline.queue_depth() >= 2:
                break
            time.sleep(0.01)
        stop.set()
        pipeline.stop(drain=False)
        feeder.join(10)
        assert not feeder.is_alive()
    assert result and result[0] < 12
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("left to score again at the next start" in r.getMessage() for r in caplog.records)
    conn = sqlite3.connect(db_path)
    try:  # what was not scored again is still outdated: the next start queues it
        assert 12 - result[0] <= len(outdated_photos(conn, [SlowMeanLumaV2()])) <= 12
    finally:
        conn.close()


def test_a_file_rewritten_after_it_settled_goes_back_to_settling_not_to_an_error_row(
        photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    path = save_jpeg(scene("rocket", (320, 240)), photo_dir / "saved-again.jpg")
    whole = path.read_bytes()
    st = path.stat()
    settled = (st.st_size, st.st_mtime_ns)  # what the settler saw: the whole file
    path.write_bytes(whole[: len(whole) // 2])  # an editor starts saving over it before a worker reads it
    config = config_for(photo_dir, db_path, tmp_path)
    resettled: list[Path] = []
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer, [MeanLuma()]).start()
        pipeline.on_changed_while_read(lambda p, root: resettled.append(p))
        pipeline.submit(path, photo_dir, settled=settled)
        assert pipeline.drain(60)
        assert resettled == [path] and pipeline.errors_total == 0
        assert "saved-again.jpg" not in rows(db_path)
        # the same half-written file, settled as it is (the settler gave up waiting): now it is refused
        half = path.stat()
        pipeline.submit(path, photo_dir, settled=(half.st_size, half.st_mtime_ns))
        assert pipeline.drain(60)
        pipeline.stop()
    assert resettled == [path] and rows(db_path)["saved-again.jpg"]["status"] == "error"


def test_the_last_photo_in_flight_commits_at_once_while_the_others_share_batches(
        photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    """With a batch window far longer than the wait, the queue still drains: the last
    photo in flight does not wait for company that is not coming, and the photos
    before it were batched (fewer commits than photos)."""
    for i in range(6):
        save_jpeg(scene("coffee", (160, 120)), photo_dir / f"b{i}.jpg", quality=70 + i)
    import threading

    config = config_for(photo_dir, db_path, tmp_path)
    everything_queued = threading.Event()

    class Gated(MeanLuma):  # scores nothing until all six are queued, so they are in flight together
        def score(self, image: Any) -> list[Score]:
            assert everything_queued.wait(30)
            return super().score(image)

    with StoreWriter(config.database_path, batch_seconds=120.0) as writer:
        pipeline = Pipeline(config, writer, [Gated()]).start()
        try:
            scan_folders(config, writer, pipeline)
            everything_queued.set()
            assert pipeline.drain(30), "the last photo waited for the writer's batch window"
            commits = writer.commits
        finally:
            pipeline.stop()
    assert pipeline.scored_total == 6
    assert commits < 6
    assert {r["status"] for r in rows(db_path).values()} == {"scored"}
