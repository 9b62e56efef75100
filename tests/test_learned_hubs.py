"""Learned models through the fake hubs: fallback to Kaggle when TF Hub is
down, and a model whose every source is down at start is retried and
backfilled once a source comes back."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from daemon.hub import ModelHub
from daemon.scoring.backfill import Backfiller
from daemon.scoring.preload import ModelManager
from daemon.store.writer import StoreWriter
from fakehubs.builders import expected_musiq_score
from fakehubs.fixtures import fast_config
from fixtures_models import decode_file, decoded, flat_image

pytestmark = [pytest.mark.tf, pytest.mark.slow]

HANDLE = "google/musiq/tensorFlow2/spaq/1"


def musiq_config(tmp_path: Path, tfhub_url: str, *, enabled: bool = True) -> Any:
    """musiq-spaq with only the fakes as sources (TF Hub first, then Kaggle)."""
    catalog = {"models": {"musiq-spaq": {
        "task": "technical", "framework": "tf-savedmodel", "adapter": "musiq", "output_range": [0, 100],
        "input": {"max_side": 64},
        "sources": [{"kind": "tfhub", "url": tfhub_url}, {"kind": "kaggle", "handle": HANDLE}]}}}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(catalog))
    config = fast_config(enabled=("musiq-spaq",) if enabled else (), attempts=1, database=tmp_path / "keepers.db")
    models = dataclasses.replace(config.models, catalog=tmp_path / "models.yaml", threads=1, retry_minutes=(60.0,))
    return dataclasses.replace(config, models=models)


def models_row(db: Path, name: str) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone())
    finally:
        conn.close()


def test_falls_back_to_kaggle_when_tfhub_is_down(tmp_path: Path, tfhub_fake: Any, kaggle_fake: Any, musiq_savedmodel: Path) -> None:
    url = tfhub_fake.add_model("/google/musiq/spaq/1", musiq_savedmodel)
    tfhub_fake.down()
    kaggle_fake.add_model(HANDLE, musiq_savedmodel)
    config = musiq_config(tmp_path, url)
    added: list[Any] = []
    with StoreWriter(config.database_path) as writer:
        manager = ModelManager(config, ModelHub(config, writer), writer, add_scorer=added.append)
        try:
            (outcome,) = manager.start().result(120)
        finally:
            manager.stop()
        writer.flush()
        row = models_row(config.database_path, "musiq-spaq")
    assert outcome.state == "ready" and outcome.source == "kaggle", outcome.describe()
    assert tfhub_fake.count >= 1  # TF Hub was asked first
    assert row["state"] == "ready" and row["source"] == "kaggle" and row["load_seconds"] is not None
    (scorer,) = added
    rgb = flat_image(170, (48, 64))
    (score,) = scorer.score(decoded(rgb))
    assert score.raw == pytest.approx(expected_musiq_score(rgb), abs=1.0)


def test_every_source_down_then_back_backfills_each_photo(tmp_path: Path, tfhub_fake: Any, kaggle_fake: Any,
                                                         musiq_savedmodel: Path) -> None:
    url = tfhub_fake.add_model("/google/musiq/spaq/1", musiq_savedmodel)
    kaggle_fake.add_model(HANDLE, musiq_savedmodel)
    tfhub_fake.down()
    kaggle_fake.down()
    config = musiq_config(tmp_path, url)
    photos = tmp_path / "photos"
    photos.mkdir()
    levels = (30, 128, 225)
    with StoreWriter(config.database_path) as writer:
        ids = []
        for level in levels:  # photos the pipeline scored with the built-ins while the model was missing
            path = photos / f"p{level}.png"
            Image.fromarray(flat_image(level, (40, 40))).save(path)
            now = time.time()
            ids.append(writer.call(lambda db, p=path, now=now: db.conn.execute(
                "INSERT INTO images (path, root, status, first_seen, updated_at) VALUES (?, ?, 'scored', ?, ?)",
                (str(p), str(photos), now, now)).lastrowid))
        added: list[Any] = []
        backfiller = Backfiller(writer, config.weights.as_dict(), decode=decode_file)
        manager = ModelManager(config, ModelHub(config, writer), writer, add_scorer=added.append, backfiller=backfiller)
        try:
            (outcome,) = manager.start().result(120)
            assert outcome.state == "failed"
            assert "tfhub" in outcome.error and "kaggle" in outcome.error and "503" in outcome.error
            writer.flush()
            row = models_row(config.database_path, "musiq-spaq")
            assert row["state"] == "failed" and "503" in row["last_error"]

            kaggle_fake.clear()  # the source comes back; the retry-model command asks again
            (future,) = manager.retry("musiq-spaq")
            assert future.result(120).state == "ready"
            manager.wait_idle(120)
            writer.flush()
        finally:
            manager.stop()
        conn = sqlite3.connect(config.database_path)
        try:
            got = dict(conn.execute("SELECT image_id, raw FROM scores WHERE model = 'musiq-spaq'").fetchall())
            composites = [r[0] for r in conn.execute("SELECT composite FROM images ORDER BY id")]
        finally:
            conn.close()
    assert sorted(got) == sorted(ids)
    for image_id, level in zip(ids, levels):
        assert got[image_id] == pytest.approx(expected_musiq_score(flat_image(level, (40, 40))), abs=1.5)
    assert all(c is not None for c in composites)
    assert models_row(config.database_path, "musiq-spaq")["source"] == "kaggle"
