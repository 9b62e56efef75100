"""The config loader and the store, the contracts everything else builds on."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.errors import ConfigError
from daemon.store import SCHEMA_VERSION, StoreReader, StoreWriter, open_db


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_load_and_match_the_documented_weights(photo_dir: Path) -> None:
    cfg = load_config(photos=[photo_dir])
    assert cfg.weights.as_dict() == {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}
    assert cfg.photos[0].path == photo_dir.resolve()
    assert cfg.settle_seconds == 1.0 and cfg.album.tiebreak_margin == 0.05


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("wokers: 2\n", "wokers", "unknown key"),
        ("workers: two\n", "workers", "expected an integer"),
        ("album:\n  moment_gap_seconds: soon\n", "album.moment_gap_seconds", "expected a number"),
        ("watch_mode: sometimes\n", "watch_mode", "one of 'auto', 'events', 'polling'"),
        ("models:\n  offline: maybe\n", "models.offline", "true or false"),
        ("photos: [[1]]\n", "photos[0]", "expected"),
    ],
)
def test_bad_config_names_file_key_and_expectation(tmp_path: Path, text: str, key: str, expected: str) -> None:
    cfg_file = write(tmp_path / "keepers.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(cfg_file, check_folders=False)
    message = str(info.value)
    assert str(cfg_file) in message and key in message and expected in message


def test_missing_photo_folder_is_an_error(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "keepers.yaml", f"photos: [{tmp_path / 'nope'}]\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(cfg_file)


def test_a_verbatim_copy_of_the_shipped_config_watches_the_pictures_folder(tmp_path: Path, isolated_env: Path) -> None:
    """The shipped file says `photos: []` means the XDG pictures folder; a copy of it must not watch nothing."""
    pictures = isolated_env / "Pictures"
    pictures.mkdir()
    copy = write(tmp_path / "keepers.yaml", (Path(__file__).parents[1] / "configs" / "keepers.yaml").read_text())
    assert [f.path for f in load_config(copy).photos] == [pictures]
    assert [f.path for f in load_config(write(tmp_path / "empty.yaml", "photos:\n")).photos] == [pictures]


def test_photos_as_one_string_is_one_folder(tmp_path: Path, photo_dir: Path) -> None:
    assert [f.path for f in load_config(write(tmp_path / "k.yaml", f"photos: {photo_dir}\n")).photos] == [photo_dir]
    with pytest.raises(ConfigError, match=r"photos.*expected a list of"):
        load_config(write(tmp_path / "bad.yaml", "photos: 5\n"), check_folders=False)


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "keepers.yaml", "weights:\n  aesthetic: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg_file, check_folders=False)


def test_env_config_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = write(tmp_path / "mine.yaml", "workers: 3\n")
    monkeypatch.setenv("KEEPERS_CONFIG", str(cfg_file))
    assert load_config(check_folders=False).workers == 3


def test_database_is_private_wal_and_versioned(db_path: Path) -> None:
    db = open_db(db_path)
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.conn.close()
    # reopening migrates nothing and keeps the data
    assert open_db(db_path).conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_writer_commits_batches_and_isolates_a_failing_piece(db_path: Path) -> None:
    with StoreWriter(db_path) as writer:
        def insert(path: str):
            return lambda db: db.execute(
                "INSERT INTO images (path, root, first_seen, updated_at) VALUES (?, 'r', 0, 0)", [path]
            ).lastrowid

        futures = [writer.submit(insert(f"/p/{i}.jpg")) for i in range(50)]
        bad = writer.submit(insert("/p/3.jpg"))  # duplicate path: fails alone
        writer.flush()
        assert all(f.result() for f in futures)
        with pytest.raises(sqlite3.IntegrityError):
            bad.result()
    with StoreReader(db_path) as reader:
        assert reader.status_counts()["pending"] == 50


def test_writer_commits_work_someone_waits_on_without_waiting_for_a_batch(db_path: Path) -> None:
    """A long batch window holds back only fire-and-forget work: call() and flush()
    commit at once (the daemon's selection waited 2 x 0.25 s on the window before)."""
    with StoreWriter(db_path, batch_seconds=30.0) as writer:
        started = time.monotonic()
        queued = writer.submit(lambda db: db.execute("INSERT INTO images (path, root, first_seen, updated_at) VALUES ('/p/a.jpg', 'r', 0, 0)"))
        assert writer.call(lambda db: db.execute("SELECT count(*) FROM images").fetchone()[0]) == 1
        writer.flush()
        assert queued.done()  # it rode in the waited-on batch
        assert time.monotonic() - started < 15.0  # far below the 30 s window: nobody waited for it


def test_reader_refuses_a_missing_database(tmp_path: Path) -> None:
    from daemon.errors import StoreError

    with pytest.raises(StoreError, match="keepers run"):
        StoreReader(tmp_path / "none.db")
