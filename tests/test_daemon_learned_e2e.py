"""The daemon with a learned model: TF Hub down, Kaggle up (and slow). It is READY
before the model has loaded; photos get the model's score; the model's row says kaggle."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from fakehubs.builders import expected_musiq_score
from fixtures_daemon import Daemon, NotifySocket, query, wait_for, write_config

pytestmark = [pytest.mark.tf, pytest.mark.slow]

HANDLE = "google/musiq/tensorFlow2/spaq/1"


def flat_jpeg(path: Path, grey: int) -> Path:
    Image.new("RGB", (96, 64), (grey, grey, grey)).save(path, "JPEG", quality=95)
    return path


def model_score(db: Path, photo: Path) -> float | None:
    rows = query(db, "SELECT s.raw FROM scores s JOIN images i ON i.id = s.image_id WHERE i.path = ? AND s.model = 'musiq-spaq'",
                 (str(photo),))
    return rows[0][0] if rows else None


def model_row(db: Path) -> dict[str, Any] | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM models WHERE name = 'musiq-spaq'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return dict(row) if row else None


def test_daemon_is_ready_before_the_model_and_scores_with_it_from_kaggle(
        tmp_path: Path, tfhub_fake: Any, kaggle_fake: Any, musiq_savedmodel: Path) -> None:
    url = tfhub_fake.add_model("/google/musiq/spaq/1", musiq_savedmodel)
    tfhub_fake.down()
    kaggle_fake.add_model(HANDLE, musiq_savedmodel)
    kaggle_fake.slow_body(4.0, times=None)  # the model arrives well after the watchers are up
    catalog = tmp_path / "models.yaml"
    catalog.write_text(yaml.safe_dump({"models": {"musiq-spaq": {
        "task": "technical", "framework": "tf-savedmodel", "adapter": "musiq", "output_range": [0, 100],
        "input": {"max_side": 64},
        "sources": [{"kind": "tfhub", "url": url}, {"kind": "kaggle", "handle": HANDLE}]}}}))
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1, extra=(
        f"models:\n  catalog: {catalog}\n  enabled: [musiq-spaq]\n  threads: 1\n  retry_minutes: [60]\n"
        "  retry:\n    attempts: 1\n    initial_seconds: 0.05\n    timeout_seconds: 30\n"))
    photos = tmp_path / "photos"
    photos.mkdir()
    early = flat_jpeg(photos / "early.jpg", 60)  # there before start: scored before the model, then backfilled
    notify = NotifySocket(tmp_path)
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config, env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        daemon.start(wait_ready=False)
        assert wait_for(lambda: notify.seen("READY=1"), 60), daemon.log_text()
        state_at_ready = (model_row(daemon.db) or {}).get("state")
        assert state_at_ready != "ready", "READY waited for the model"
        assert wait_for(lambda: (model_row(daemon.db) or {}).get("state") == "ready", 120), daemon.log_text()
        late = flat_jpeg(photos / "late.jpg", 200)  # arrives after the model: scored with it directly
        for photo, grey in ((early, 60), (late, 200)):
            score = wait_for(lambda p=photo: model_score(daemon.db, p), 60)
            assert score is not None, f"{photo.name} never got a musiq-spaq score:\n{daemon.log_text()}"
            assert score == pytest.approx(expected_musiq_score([[[grey] * 3]]), abs=2.0)
        row = model_row(daemon.db)
        assert row and row["source"] == "kaggle", row
        assert tfhub_fake.count >= 1  # TF Hub was tried first
    finally:
        code = daemon.terminate(timeout=30)
        notify.close()
    assert code == 0, daemon.log_text()


def test_daemon_exits_non_zero_when_a_strict_model_cannot_be_had(tmp_path: Path) -> None:
    catalog = tmp_path / "models.yaml"
    catalog.write_text(yaml.safe_dump({"models": {"musiq-spaq": {
        "task": "technical", "framework": "tf-savedmodel", "adapter": "musiq", "output_range": [0, 100],
        "sources": []}}}))
    config = write_config(tmp_path / "keepers.yaml", extra=(
        f"models:\n  catalog: {catalog}\n  enabled: [musiq-spaq]\n  strict: true\n  offline: true\n"))
    photos = tmp_path / "photos"
    photos.mkdir()
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config).start(wait_ready=False)
    try:
        assert daemon.proc is not None
        code = daemon.proc.wait(60)
    finally:
        daemon.kill()
    assert code == 3, daemon.log_text()
    assert "models.strict is set" in daemon.log_text()
