"""Settle, ignore, mounts, moves seen by content hash, polling folders, overflow and dead observers."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from daemon.config import PhotoFolder, load_config
from daemon.scoring.scan import Matcher
from daemon.store.writer import StoreWriter
from daemon.watch.mounts import Mount, choose_mode, count_directories, mount_of, read_mounts
from daemon.watch.settle import Settler, file_looks_complete
from daemon.watch.watcher import EventRouter, FolderWatcher, attach_overflow_listener, detach_overflow_listener
from fixtures_daemon import photo_bytes, query, small_photo, wait_for


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Path, Path, float]] = []
        self.lock = threading.Lock()

    def __call__(self, path: Path, root: Path) -> bool:
        with self.lock:
            self.calls.append((path, root, time.monotonic()))
        return True


def test_a_growing_file_is_handed_over_once_only_after_it_stops_growing(tmp_path: Path) -> None:
    got = Recorder()
    settler = Settler(got, settle_seconds=0.3, tick_seconds=0.05).start()
    path = tmp_path / "growing.jpg"
    content = photo_bytes(1, (400, 300))
    try:
        with open(path, "wb") as fh:
            for i in range(0, len(content), len(content) // 10 + 1):
                fh.write(content[i:i + len(content) // 10 + 1])
                fh.flush()
                last_write = time.monotonic()
                settler.touch(path, tmp_path)
                time.sleep(0.1)
                assert not got.calls, "handed over while still growing"
        assert wait_for(lambda: got.calls, 3)
        time.sleep(0.4)
    finally:
        settler.stop()
    assert len(got.calls) == 1 and got.calls[0][0] == path
    # The settler sees the last change at or after the last write and waits the whole window from
    # there. (Measured from after the 0.1 s sleep, as it was, the sleep's overshoot could make
    # 'most of the window' fail by microseconds: 0.19999 s once under load.)
    assert got.calls[0][2] - last_write >= 0.3


def test_close_after_write_hands_over_without_waiting_the_window(tmp_path: Path) -> None:
    got = Recorder()
    settler = Settler(got, settle_seconds=30, tick_seconds=0.05).start()
    try:
        path = small_photo(tmp_path / "a.jpg", 2)
        for _ in range(5):
            settler.touch(path, tmp_path)  # created, modified, modified ... coalesce
        settler.touch(path, tmp_path, closed=True)
        assert wait_for(lambda: got.calls, 2)
        time.sleep(0.2)
    finally:
        settler.stop()
    assert [c[0] for c in got.calls] == [path]


def test_a_truncated_jpeg_waits_then_goes_to_the_pipeline_to_be_reported(tmp_path: Path) -> None:
    got = Recorder()
    path = tmp_path / "cut.jpg"
    path.write_bytes(photo_bytes(3)[:-200])
    assert not file_looks_complete(path)
    settler = Settler(got, settle_seconds=0.1, tick_seconds=0.02, give_up_factor=15).start()
    try:
        settler.touch(path, tmp_path, closed=True)
        time.sleep(0.3)
        assert not got.calls, "an incomplete JPEG was handed over inside the give-up window"
        assert wait_for(lambda: got.calls, 6)
    finally:
        settler.stop()


def test_completeness_check_knows_whole_and_cut_images(tmp_path: Path) -> None:
    from PIL import Image

    whole = small_photo(tmp_path / "whole.jpg", 4)
    assert file_looks_complete(whole)
    png = tmp_path / "p.png"
    Image.new("RGB", (20, 20), "red").save(png)
    assert file_looks_complete(png)
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:-20])
    assert not file_looks_complete(tmp_path / "cut.png")
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "blue").save(buf, "TIFF")
    (tmp_path / "t.tif").write_bytes(buf.getvalue())
    assert file_looks_complete(tmp_path / "t.tif")
    assert not file_looks_complete(tmp_path / "missing.jpg")


def test_network_shares_are_polled_and_local_disks_get_events(tmp_path: Path) -> None:
    mounts_file = tmp_path / "mounts"
    mounts_file.write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "server:/export /mnt/nas nfs4 rw 0 0\n"
        "//box/photos /mnt/smb\\040share cifs rw 0 0\n"
        "me@host:/pics /home/me/remote fuse.sshfs rw 0 0\n"
    )
    mounts = read_mounts(mounts_file)
    assert mount_of(Path("/mnt/smb share/2024"), mounts) == Mount("/mnt/smb share", "cifs", "//box/photos")
    assert choose_mode(Path("/mnt/nas/2024"), "auto", mounts)[0] == "polling"
    assert choose_mode(Path("/mnt/smb share/x"), "auto", mounts)[0] == "polling"
    assert choose_mode(Path("/home/me/remote/a"), "auto", mounts)[0] == "polling"
    assert choose_mode(Path("/home/me/Pictures"), "auto", mounts)[0] == "events"
    assert choose_mode(Path("/mnt/nas/2024"), "events", mounts) == ("events", "set in the config")
    assert choose_mode(Path("/home/me/Pictures"), "polling", mounts)[0] == "polling"


def test_directory_count_for_inotify_skips_ignored_folders(tmp_path: Path) -> None:
    for sub in ("a/b", "a/c", "@eaDir/x", ".thumbnails/y"):
        (tmp_path / sub).mkdir(parents=True)
    matcher = Matcher(load_config(check_folders=False))
    assert count_directories(tmp_path, matcher.ignored) == 4  # root, a, a/b, a/c


def test_temp_and_hidden_names_and_the_album_folder_are_ignored(tmp_path: Path) -> None:
    album = tmp_path / "album"
    config = load_config(check_folders=False)
    config = config.with_overrides(export=dataclasses.replace(config.export, folder=album))
    matcher = Matcher(config)
    wanted = lambda name: matcher.wanted(tmp_path / name, tmp_path)  # noqa: E731
    assert wanted("IMG_1.jpg") and wanted("2024/trip/IMG_2.JPG")
    for name in (".IMG_1.jpg.Ab12Cd", "IMG_1.jpg.part", "x.tmp", "~IMG.jpg", "._IMG.jpg", ".hidden/IMG.jpg",
                 "@eaDir/IMG.jpg", ".thumbnails/IMG.jpg", "album/IMG.jpg", "IMG.jpg.crdownload", ".IMG.jpg.swp"):
        assert not wanted(name), name


def _score_folder(config, writer):  # type: ignore[no-untyped-def]
    from daemon.scoring.pipeline import Pipeline
    from daemon.scoring.scan import scan_folders

    pipeline = Pipeline(config, writer).start()
    scan_folders(config, writer, pipeline)
    pipeline.drain(60)
    pipeline.stop()
    writer.flush()


@pytest.mark.parametrize("stored", ["current", "legacy"])
def test_a_photo_moved_while_keepers_was_away_keeps_its_row_and_scores(photo_dir: Path, db_path: Path, stored: str) -> None:
    """Also when its row was stored by a keepers that hashed content with blake2b."""
    from daemon.imaging.hashing import legacy_content_hash

    config = load_config(photos=[photo_dir], database=db_path).with_overrides(
        scorers=("sharpness", "exposure"), workers=1)
    small_photo(photo_dir / "a.jpg", 5)
    small_photo(photo_dir / "b.jpg", 6)
    db_path.parent.mkdir(parents=True)
    with StoreWriter(db_path) as writer:
        writer.start()
        _score_folder(config, writer)
        if stored == "legacy":
            for name in ("a.jpg", "b.jpg"):
                writer.call(lambda db, p=photo_dir / name: db.execute(
                    "UPDATE images SET content_hash = ? WHERE path = ?", (legacy_content_hash(p), str(p))))
            assert not any(h.startswith("b3:") for (h,) in query(db_path, "SELECT content_hash FROM images"))
        before = dict(query(db_path, "SELECT path, id FROM images"))
        (photo_dir / "2024").mkdir()
        os.rename(photo_dir / "a.jpg", photo_dir / "2024" / "renamed.jpg")
        scored_at = dict(query(db_path, "SELECT id, scored_at FROM images"))
        _score_folder(config, writer)  # the restart's catch-up scan
        rows = dict(query(db_path, "SELECT path, id FROM images"))
        assert dict(query(db_path, "SELECT id, scored_at FROM images")) == scored_at  # nothing scored again
    assert rows == {str(photo_dir / "2024" / "renamed.jpg"): before[str(photo_dir / "a.jpg")],
                    str(photo_dir / "b.jpg"): before[str(photo_dir / "b.jpg")]}
    assert query(db_path, "SELECT COUNT(*) FROM scores WHERE image_id = ?", (rows[str(photo_dir / "2024" / "renamed.jpg")],))[0][0] == 2


def test_a_removed_folder_named_like_a_photo_loses_its_error_row_at_once(photo_dir: Path, db_path: Path) -> None:
    config = load_config(photos=[photo_dir], database=db_path).with_overrides(scorers=("sharpness",), workers=1)
    (photo_dir / "x.jpg").mkdir()
    (photo_dir / "trip.jpg").mkdir()
    small_photo(photo_dir / "trip.jpg" / "a.jpg", 8)
    db_path.parent.mkdir(parents=True)
    settler = Settler(Recorder(), settle_seconds=0.1, tick_seconds=0.05).start()
    with StoreWriter(db_path) as writer:
        writer.start()
        _score_folder(config, writer)
        rows = dict(query(db_path, "SELECT path, status FROM images"))
        assert rows[str(photo_dir / "x.jpg")] == "error" and rows[str(photo_dir / "trip.jpg")] == "error"
        router = EventRouter([photo_dir], Matcher(config), settler, writer, lambda f, r: None)
        watcher = FolderWatcher([PhotoFolder(photo_dir, "events")], "auto", router, lambda root, why: None)
        try:
            watcher.start()
            (photo_dir / "x.jpg").rmdir()
            os.rename(photo_dir / "trip.jpg", photo_dir / "trip")

            def statuses() -> dict[str, str]:
                writer.flush()
                return dict(query(db_path, "SELECT path, status FROM images"))

            assert wait_for(lambda: statuses()[str(photo_dir / "x.jpg")] == "deleted", 5)
            assert wait_for(lambda: statuses()[str(photo_dir / "trip.jpg")] == "deleted", 5)
            assert statuses()[str(photo_dir / "trip" / "a.jpg")] == "scored"  # the photo inside followed the move
        finally:
            watcher.stop()
            settler.stop()


def test_a_file_rewritten_many_times_quickly_never_gets_a_transient_error_row(photo_dir: Path, db_path: Path) -> None:
    """The README promises a photo is never scored half-written: a file saved over and over
    (an editor's autosave, a sync tool) may be read while a rewrite is under way; that read
    fails ('image file is truncated') and must send it back to settle, not store an error."""
    from daemon.scoring.pipeline import Pipeline
    from daemon.watch.intake import Intake

    config = load_config(photos=[photo_dir], database=db_path).with_overrides(scorers=("sharpness",), workers=2)
    path = photo_dir / "autosaved.jpg"
    versions = [photo_bytes(seed, (480, 360)) for seed in range(6)]
    path.write_bytes(versions[0])
    db_path.parent.mkdir(parents=True)
    seen: set[str] = set()
    with StoreWriter(db_path) as writer:
        writer.start()
        pipeline = Pipeline(config, writer).start()
        intake = Intake(writer, pipeline)
        settler = Settler(intake.submit, settle_seconds=0.2, tick_seconds=0.01).start()
        pipeline.on_changed_while_read(settler.touch)
        router = EventRouter([photo_dir], Matcher(config), settler, writer, lambda f, r: None)
        watcher = FolderWatcher([PhotoFolder(photo_dir, "events")], "auto", router, lambda root, why: None)
        try:
            watcher.start()
            for i in range(80):
                data = versions[i % len(versions)]
                with open(path, "wb") as fh:  # truncate, then write in pieces, as a slow saver does
                    for at in range(0, len(data), len(data) // 4 + 1):
                        fh.write(data[at:at + len(data) // 4 + 1])
                        fh.flush()
                        time.sleep(0.003)
                time.sleep(0.002 * (i % 5))
                seen.update(status for (status,) in query(db_path, "SELECT status FROM images"))
            final = path.stat()
            assert wait_for(lambda: query(db_path, "SELECT status, size FROM images WHERE path = ?", (str(path),))
                            == [("scored", final.st_size)], 10)
        finally:
            watcher.stop()
            settler.stop()
            pipeline.stop()
    assert "error" not in seen
    assert pipeline.errors_total == 0


def test_a_polling_folder_sees_new_photos_and_a_folder_that_appears_later_is_watched(tmp_path: Path, db_path: Path) -> None:
    polled, late = tmp_path / "nas", tmp_path / "late"
    polled.mkdir()
    got = Recorder()
    settler = Settler(got, settle_seconds=0.1, tick_seconds=0.05).start()
    rescans: list[tuple[Path, str]] = []
    config = load_config(check_folders=False)
    db_path.parent.mkdir(parents=True)
    with StoreWriter(db_path) as writer:
        writer.start()
        router = EventRouter([polled, late], Matcher(config), settler, writer, lambda f, r: None)
        watcher = FolderWatcher([PhotoFolder(polled, "polling"), PhotoFolder(late, "events")], "auto", router,
                                lambda root, why: rescans.append((root, why)), polling_seconds=0.2)
        try:
            watched = watcher.start()
            assert [(w.path, w.mode) for w in watched] == [(polled, "polling")]
            small_photo(polled / "a.jpg", 7)
            assert wait_for(lambda: [c for c in got.calls if c[0] == polled / "a.jpg"], 5)
            late.mkdir()
            assert watcher.check() == [late]
            assert rescans == [(late, "watcher restarted")] and watcher.watched[late].mode == "events"
            assert watcher.check() == []  # alive now: nothing to restart
        finally:
            watcher.stop()
            settler.stop()


def test_an_inotify_queue_overflow_asks_for_a_rescan() -> None:
    reasons: list[str] = []
    listener = attach_overflow_listener(reasons.append)
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem events were lost")
        logging.getLogger("watchdog.observers.inotify_c").warning("something else")
    finally:
        detach_overflow_listener(listener)
    assert reasons == ["the kernel's event queue overflowed"]


def test_a_folder_over_the_inotify_limit_is_polled_not_ignored(tmp_path: Path, db_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    for i in range(4):
        (big / f"2024-0{i + 1}").mkdir(parents=True)
    limit = tmp_path / "max_user_watches"
    limit.write_text("3\n")  # room for small (1 folder), not for big (5)
    monkeypatch.setattr("daemon.watch.mounts.WATCH_LIMIT_FILE", limit)
    got = Recorder()
    settler = Settler(got, settle_seconds=0.1, tick_seconds=0.05).start()
    config = load_config(check_folders=False)
    db_path.parent.mkdir(parents=True)
    with StoreWriter(db_path) as writer:
        writer.start()
        router = EventRouter([small, big], Matcher(config), settler, writer, lambda f, r: None)
        watcher = FolderWatcher([PhotoFolder(small, "events"), PhotoFolder(big, "auto")], "auto", router,
                                lambda root, why: None, over_limit_polling_seconds=0.2)
        try:
            watched = {w.path: w for w in watcher.start()}
            assert (watched[small].mode, watched[small].over_limit, watched[small].directories) == ("events", False, 1)
            assert (watched[big].mode, watched[big].over_limit, watched[big].directories) == ("polling", True, 0)
            assert "needs 5 inotify watches but only 2" in watched[big].why
            small_photo(big / "2024-03" / "a.jpg", 7)
            assert wait_for(lambda: [c for c in got.calls if c[0] == big / "2024-03" / "a.jpg"], 10)
        finally:
            watcher.stop()
            settler.stop()


def test_a_photo_that_turns_up_where_a_vanished_row_stored_a_blake2b_hash_takes_that_row(photo_dir: Path, db_path: Path) -> None:
    """The daemon's intake (no move event, a new file whose bytes are a vanished row's):
    the row was stored by a keepers that hashed content with blake2b; it still moves."""
    from daemon.imaging.hashing import legacy_content_hash
    from daemon.watch.intake import Intake

    config = load_config(photos=[photo_dir], database=db_path).with_overrides(scorers=("sharpness",), workers=1)
    small_photo(photo_dir / "a.jpg", 5)
    db_path.parent.mkdir(parents=True)
    handed: list[Path] = []
    with StoreWriter(db_path) as writer:
        writer.start()
        _score_folder(config, writer)
        (image_id,) = query(db_path, "SELECT id FROM images")[0]
        old, new = photo_dir / "a.jpg", photo_dir / "elsewhere.jpg"
        writer.call(lambda db: db.execute("UPDATE images SET status = 'deleted', content_hash = ? WHERE id = ?",
                                          (legacy_content_hash(old), image_id)))
        os.rename(old, new)
        intake = Intake(writer, type("Pipeline", (), {"submit": lambda self, p, r, settled=None: handed.append(p) or True})())
        assert intake.submit(new, photo_dir) is False  # not scored again: the row followed its bytes
        writer.flush()
    assert intake.relinked == 1 and handed == []
    assert query(db_path, "SELECT id, path, status FROM images") == [(image_id, str(new), "scored")]
