"""Preload, retry and backfill of learned models, against the real hub (local
sources) and a real store: models that fail at start are retried, and once
ready every photo scored without them gets their score."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

pytest.importorskip("torch")

from daemon.config import load_config  # noqa: E402
from daemon.hub import ModelHub  # noqa: E402
from daemon.scoring.backfill import Backfiller, missing_images, missing_models, read_embedding  # noqa: E402
from daemon.scoring.preload import ModelManager, ModelOutcome  # noqa: E402
from daemon.store.writer import StoreWriter  # noqa: E402
from fixtures_models import (decode_file, flat_image, save_malicious_checkpoint, save_state_dict,  # noqa: E402
                             save_torchscript)

pytestmark = pytest.mark.torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
LEVELS = (40, 120, 200)


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_setup(tmp_path: Path, *, enabled: list[str], strict: bool = False, retry_minutes: float = 0.005) -> Any:
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    catalog = {"models": {
        "tiny-ts": {"task": "aesthetic", "framework": "torchscript", "adapter": "torchscript", "output_range": [0, 10],
                    "input": {"size": 32}, "sources": [{"kind": "local", "path": str(models / "tiny.ts")}]},
        "tiny-embed": {"task": "embedding", "framework": "torch-state-dict", "adapter": "embedding", "output_range": [-1, 1],
                       "input": {"size": 32, "arch": "fixtures_models.torch_nets:TinyEmbedder"},
                       "sources": [{"kind": "local", "path": str(models / "embed.pt")}]},
        "tiny-unsafe": {"task": "aesthetic", "framework": "torch-state-dict", "adapter": "ava-resnet50", "output_range": [1, 10],
                        "sources": [{"kind": "local", "path": str(models / "unsafe.pt")}]},
        "tiny-siamese": {"task": "comparator", "framework": "torch-state-dict", "adapter": "siamese-comparator",
                         "output_range": [0, 1], "input": {"size": 32, "arch": "fixtures_models.torch_nets:TinySiamese"},
                         "sources": [{"kind": "local", "path": str(models / "siamese.pt")}]},
    }}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(catalog))
    cfg = {"database": str(tmp_path / "keepers.db"), "photos": [],
           "models": {"catalog": str(tmp_path / "models.yaml"), "enabled": enabled, "strict": strict,
                      "retry_minutes": [retry_minutes], "threads": 1, "batch_size": 2,
                      "retry": {"attempts": 1, "initial_seconds": 0.01, "max_seconds": 0.01}}}
    (tmp_path / "keepers.yaml").write_text(yaml.safe_dump(cfg))
    return load_config(tmp_path / "keepers.yaml", check_folders=False), models


def add_scored_photos(writer: StoreWriter, folder: Path) -> list[int]:
    """Photos the pipeline already scored with a built-in scorer only."""
    folder.mkdir(exist_ok=True)
    ids = []
    for level in LEVELS:
        path = folder / f"p{level}.png"
        Image.fromarray(flat_image(level, (32, 32))).save(path)

        def work(db: Any, path: Path = path, level: int = level) -> int:
            now = time.time()
            cur = db.conn.execute("INSERT INTO images (path, root, status, first_seen, updated_at, composite, coverage) "
                                  "VALUES (?, ?, 'scored', ?, ?, ?, ?)", (str(path), str(folder), now, now, level / 255, '["technical"]'))
            db.conn.execute("INSERT INTO scores (image_id, model, task, raw, normalised, scored_at) VALUES (?, 'sharpness', 'technical', ?, ?, ?)",
                            (cur.lastrowid, level, level / 255, now))
            return int(cur.lastrowid)

        ids.append(writer.call(work))
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Any:
    writer = StoreWriter(tmp_path / "keepers.db").start()
    yield writer
    writer.close()


@pytest.fixture
def scheduler() -> Any:
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler()
    sched.start()
    yield sched
    sched.shutdown(wait=False)


def manager_for(config: Any, writer: StoreWriter, scheduler: Any = None, **kwargs: Any) -> tuple[ModelManager, list[Any]]:
    added: list[Any] = []
    hub = ModelHub(config, writer)
    backfiller = Backfiller(writer, config.weights.as_dict(), decode=decode_file, batch_size=2)
    manager = ModelManager(config, hub, writer, add_scorer=added.append, scheduler=scheduler, backfiller=backfiller, **kwargs)
    return manager, added


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def expected_tiny_raw(level: int) -> float:
    rgb = flat_image(level, (32, 32)).astype(np.float64) / 255.0
    return float(2.0 * ((rgb - IMAGENET_MEAN) / IMAGENET_STD).mean() + 5.0)


def test_failed_model_is_retried_by_the_job_and_backfills_every_photo(tmp_path: Path, store: StoreWriter, scheduler: Any,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    config, models = write_setup(tmp_path, enabled=["tiny-ts"], retry_minutes=0.01)
    ids = add_scored_photos(store, tmp_path / "photos")
    manager, added = manager_for(config, store, scheduler)
    caplog.set_level("INFO", logger="daemon.scoring.preload")
    try:
        summary = manager.start().result(30)
        by_name = {o.name: o for o in summary}
        assert by_name["tiny-ts"].state == "failed"
        assert "tiny.ts does not exist" in by_name["tiny-ts"].error
        assert by_name["tiny-embed"].state == "disabled"
        assert added == []
        store.flush()
        (state, last_error), = query(config.database_path, "SELECT state, last_error FROM models WHERE name = 'tiny-ts'")
        assert state == "failed" and "tiny.ts: NotFound" in last_error
        assert query(config.database_path, "SELECT state FROM models WHERE name = 'tiny-embed'") == [("disabled",)]
        assert "tiny-ts: failed" in caplog.text and "tiny-embed: disabled" in caplog.text

        save_torchscript(models / "tiny.ts", "TinyRegressor", scale=2.0, offset=5.0)  # the source comes back
        wait_for(lambda: manager.outcomes()["tiny-ts"].state == "ready", what="the retry job to load tiny-ts")
        manager.wait_idle()
        store.flush()
    finally:
        manager.stop()
    assert [m.name for m in added] == ["tiny-ts"]
    rows = dict(((r[0], (r[1], r[2]))) for r in query(config.database_path, "SELECT image_id, raw, normalised FROM scores WHERE model = 'tiny-ts'"))
    assert sorted(rows) == sorted(ids)
    for image_id, level in zip(ids, LEVELS):
        raw, normalised = rows[image_id]
        assert raw == pytest.approx(expected_tiny_raw(level), abs=1e-3)
        assert normalised == pytest.approx(raw / 10.0, abs=1e-6)
    # the composite now covers the aesthetic group too
    for (coverage, composite) in query(config.database_path, "SELECT coverage, composite FROM images"):
        assert "aesthetic" in json.loads(coverage) and composite is not None
    assert query(config.database_path, "SELECT state, source FROM models WHERE name = 'tiny-ts'") == [("ready", "local")]
    assert manager.outcomes()["tiny-ts"].attempt >= 2


def test_retry_command_loads_a_model_that_came_back(tmp_path: Path, store: StoreWriter) -> None:
    config, models = write_setup(tmp_path, enabled=["tiny-ts", "tiny-embed"])
    ids = add_scored_photos(store, tmp_path / "photos")
    manager, added = manager_for(config, store, scheduler=None)
    try:
        summary = manager.start().result(30)
        assert [o.state for o in summary[:2]] == ["failed", "failed"]
        save_torchscript(models / "tiny.ts", "TinyRegressor")
        save_state_dict(models / "embed.pt", "TinyEmbedder", dim=8)
        futures = manager.retry()  # every failed model, as the retry-model command with no name does
        assert sorted(f.result(30).state for f in futures) == ["ready", "ready"]
        manager.wait_idle()
        ids += add_scored_photos(store, tmp_path / "later")  # scored by the pipeline after the embedder was ready
        (embed_pass,) = manager.embed_new_photos()  # what the periodic job does
        assert embed_pass.result(30).scored == len(LEVELS)
        store.flush()
    finally:
        manager.stop()
    assert [m.name for m in added] == ["tiny-ts"]  # the embedder is not a scorer
    conn = sqlite3.connect(config.database_path)
    try:
        assert [i for i, _ in missing_images(conn, "tiny-ts")] == ids[len(LEVELS):]  # scorers are the pipeline's job
        assert missing_images(conn, "tiny-embed", embedding=True) == []
        vectors = [read_embedding(r[0]) for r in conn.execute("SELECT vector FROM embeddings WHERE model = 'tiny-embed' ORDER BY image_id")]
        assert len(vectors) == len(ids) and all(v.shape == (8,) and abs(np.linalg.norm(v) - 1) < 1e-4 for v in vectors)
        expected = {i: ([] if i in ids[:len(LEVELS)] else ["tiny-ts"]) for i in ids}
        assert missing_models(conn, {"tiny-ts": "aesthetic", "tiny-embed": "embedding", "tiny-siamese": "comparator"}) == expected
    finally:
        conn.close()


def test_retry_of_unknown_or_disabled_model_is_refused(tmp_path: Path, store: StoreWriter) -> None:
    config, _ = write_setup(tmp_path, enabled=["tiny-ts"])
    manager, _ = manager_for(config, store)
    try:
        manager.start().result(30)
        with pytest.raises(ValueError, match="not enabled"):
            manager.retry("tiny-embed")
        with pytest.raises(Exception, match="no model 'nope'"):
            manager.retry("nope")
    finally:
        manager.stop()


def test_unsafe_checkpoint_fails_with_the_reason_and_runs_nothing(tmp_path: Path, store: StoreWriter) -> None:
    config, models = write_setup(tmp_path, enabled=["tiny-unsafe"])
    marker = tmp_path / "pwned"
    save_malicious_checkpoint(models / "unsafe.pt", marker)
    manager, added = manager_for(config, store)
    try:
        (outcome, *_) = manager.start().result(30)
    finally:
        manager.stop()
    store.flush()
    assert outcome.state == "failed" and "weights_only" in outcome.error
    (last_error,), = query(config.database_path, "SELECT last_error FROM models WHERE name = 'tiny-unsafe'")
    assert "arbitrary Python objects" in last_error
    assert not marker.exists() and added == []


def test_strict_mode_reports_an_unavailable_model(tmp_path: Path, store: StoreWriter) -> None:
    config, _ = write_setup(tmp_path, enabled=["tiny-ts"], strict=True)
    reported: list[list[ModelOutcome]] = []
    manager, _ = manager_for(config, store, on_strict_failure=reported.append)
    try:
        manager.start().result(30)
    finally:
        manager.stop()
    assert len(reported) == 1 and reported[0][0].name == "tiny-ts" and reported[0][0].state == "failed"


def test_comparator_is_kept_for_the_album(tmp_path: Path, store: StoreWriter) -> None:
    config, models = write_setup(tmp_path, enabled=["tiny-siamese"])
    save_state_dict(models / "siamese.pt", "TinySiamese")
    manager, added = manager_for(config, store)
    try:
        (outcome, *_) = manager.start().result(30)
        comparator = manager.comparator()
    finally:
        manager.stop()
    assert outcome.state == "ready" and outcome.source == "local" and added == []
    assert comparator is not None
    bright, dark = tmp_path / "bright.png", tmp_path / "dark.png"
    Image.fromarray(flat_image(220, (32, 32))).save(bright)
    Image.fromarray(flat_image(30, (32, 32))).save(dark)
    assert comparator.compare_decoded(decode_file(dark), decode_file(bright))[0] == 1


def test_retry_intervals_grow_and_the_last_repeats(tmp_path: Path, store: StoreWriter) -> None:
    config, _ = write_setup(tmp_path, enabled=[])
    config = config.with_overrides(models=config.models.__class__(**{**config.models.__dict__, "retry_minutes": (1.0, 5.0, 15.0)}))
    manager, _ = manager_for(config, store)
    assert [manager.retry_delay_minutes(n) for n in (1, 2, 3, 4, 9)] == [1.0, 5.0, 15.0, 15.0, 15.0]
    manager.stop()


@pytest.mark.slow
def test_a_trickling_model_holds_up_no_other_model(tmp_path: Path, store: StoreWriter, https_fake: Any) -> None:
    """The slow model comes first in models.enabled; the quick one is ready long before the slow one gives up."""
    import dataclasses
    import hashlib

    config, models = write_setup(tmp_path, enabled=["slow-ts", "tiny-ts"])
    save_torchscript(models / "tiny.ts", "TinyRegressor")
    blob = (models / "tiny.ts").read_bytes()
    catalog = yaml.safe_load((tmp_path / "models.yaml").read_text())
    catalog["models"]["slow-ts"] = dict(catalog["models"]["tiny-ts"], sources=[
        {"kind": "https", "url": https_fake.add("/slow.ts", blob), "sha256": hashlib.sha256(blob).hexdigest()}])
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(catalog))
    https_fake.trickle(0.5)  # a byte every half second
    retry = dataclasses.replace(config.models.retry, min_bytes_per_second=100.0, slow_window_seconds=8.0, timeout_seconds=5.0)
    config = dataclasses.replace(config, models=dataclasses.replace(config.models, retry=retry))
    manager, added = manager_for(config, store)
    started = time.monotonic()
    try:
        startup = manager.start()
        wait_for(lambda: manager.outcomes()["tiny-ts"].state == "ready", timeout=60, what="tiny-ts to load beside slow-ts")
        assert manager.outcomes()["slow-ts"].state == "pending" and not startup.done()  # the slow one is still trickling
        summary = {o.name: o for o in startup.result(60)}
    finally:
        manager.stop()
    assert summary["slow-ts"].state == "failed" and "TooSlow" in summary["slow-ts"].error
    assert [m.name for m in added] == ["tiny-ts"]
    assert time.monotonic() - started < 60  # bounded by the 8 s window, not by the trickle (hours for this file)
