"""Databases for the dashboard tests.

``sample_db`` fills a database through the real StoreWriter with a fixed,
deterministic library (fixed timestamps and paths, so SVG snapshots never
change): a daemon heartbeat, models in every interesting state with their
event history, scored/pending/error/deleted photos whose composites come from
the real composite function, a selection run with picks, telemetry and log.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from daemon.scoring.composite import composite, group_scores
from daemon.store import StoreWriter

#: the dashboard's clock in the tests; every stored time is relative to it
FIXED_NOW = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC
WEIGHTS = {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}
SCORERS = (("musiq-spaq", "aesthetic"), ("sharpness", "technical"), ("exposure", "technical"), ("brisque", "technical"), ("faces", "portrait"))

KONIQ_ERROR = (
    "model 'musiq-koniq' is unavailable: no source could provide it.\n"
    "Sources tried, in order:\n"
    "  - kaggle google/musiq/tensorFlow2/koniq-10k: failed (HTTP 503): Service Unavailable after 4 tries\n"
    "  - https https://mirror.example.org/musiq-koniq.tar.gz: failed (HashMismatch): sha256 3f2a… expected 9c1d…\n"
    "What to do:\n"
    "  * check your network, or put the model file at ~/.cache/keepers/models/musiq-koniq and set models.offline"
)

MODELS: tuple[dict[str, Any], ...] = (
    dict(name="musiq-spaq", task="aesthetic", framework="tf", enabled=1, state="ready", source="tfhub",
         source_ref="https://tfhub.dev/google/musiq/spaq/1", cache_path="/cache/tfhub/musiq-spaq", version="1",
         sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", bytes=205_520_896,
         load_seconds=6.4, attempts=1, last_error=None),
    dict(name="musiq-koniq", task="aesthetic", framework="tf", enabled=1, state="failed", source=None, source_ref=None,
         cache_path=None, version=None, sha256=None, bytes=None, load_seconds=None, attempts=8, last_error=KONIQ_ERROR),
    dict(name="ava-resnet50", task="aesthetic", framework="torch", enabled=1, state="offline-unavailable", source=None,
         source_ref=None, cache_path=None, version=None, sha256=None, bytes=None, load_seconds=None, attempts=1,
         last_error="offline mode: ava-resnet50 is not in the cache; run once online or set its local path"),
    dict(name="siamese", task="comparator", framework="torch", enabled=1, state="ready", source="local",
         source_ref="/models/siamese/best_model.pt", cache_path="/models/siamese/best_model.pt", version="2026-01-13",
         sha256="2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", bytes=98_566_144,
         load_seconds=1.2, attempts=1, last_error=None),
    dict(name="clip-vit-b32", task="embedding", framework="torch", enabled=0, state="disabled", source=None,
         source_ref=None, cache_path=None, version=None, sha256=None, bytes=None, load_seconds=None, attempts=0,
         last_error=None),
)

MODEL_EVENTS: tuple[tuple[str, float, str, str | None, float | None, str | None, str | None], ...] = (
    ("musiq-spaq", -3600, "attempt", "tfhub", None, None, "https://tfhub.dev/google/musiq/spaq/1"),
    ("musiq-spaq", -3594, "success", "tfhub", 5.1, None, "downloaded 196 MB"),
    ("musiq-spaq", -3590, "load", "tfhub", 1.3, None, "ready"),
    ("musiq-koniq", -3600, "attempt", "kaggle", None, None, "google/musiq/tensorFlow2/koniq-10k"),
    ("musiq-koniq", -3599, "retry", "kaggle", 0.4, "HTTP 503", "Service Unavailable; retrying in 1.0 s"),
    ("musiq-koniq", -3590, "fallback", "kaggle", 8.2, "HTTP 503", "gave up after 4 tries; trying https"),
    ("musiq-koniq", -3588, "failure", "https", 1.9, "HashMismatch", "sha256 3f2a… expected 9c1d…"),
    ("ava-resnet50", -3600, "offline", "local", None, "NotCached", "offline mode and no cached copy"),
    ("siamese", -3600, "load", "local", 1.2, None, "TorchScript, weights_only"),
)


def sample_rows(photo_root: str = "/photos/2025", n_moments: int = 4, per_moment: int = 6) -> dict[str, list[dict[str, Any]]]:
    """The rows of the sample library, deterministic for a given shape."""
    rng = random.Random(7)
    images: list[dict[str, Any]] = []
    scores: list[dict[str, Any]] = []
    image_id = 0
    for moment in range(1, n_moments + 1):
        for k in range(per_moment):
            image_id += 1
            taken = FIXED_NOW - 86_400 + moment * 3600 + k * 20
            status = "scored"
            error = None
            if image_id == 5:
                status, error = "error", "cannot identify image file: truncated JPEG (0 bytes after the header)"
            elif image_id in (11, 17):
                status = "pending"
            elif image_id == 23:
                status = "deleted"
            row: dict[str, Any] = dict(
                id=image_id, path=f"{photo_root}/IMG_{1000 + image_id:04d}.jpg", root=photo_root, size=2_000_000 + image_id * 7919,
                mtime_ns=int(taken * 1e9), content_hash=f"{image_id:064x}", width=4000, height=3000, taken_at=taken,
                taken_source="exif", camera="FUJIFILM X-T4", exif_json=None, phash=f"{rng.getrandbits(64):016x}",
                status=status, error=error, composite=None, coverage=None, groups_json=None,
                moment=moment, cluster=moment * 10 + k // 3, first_seen=FIXED_NOW - 7200, scored_at=None, updated_at=FIXED_NOW - 60,
            )
            if status in ("scored", "deleted"):
                pairs = []
                for model, task in SCORERS:
                    if task == "portrait" and k % 2:
                        continue  # no face found: not applicable
                    normalised = round(rng.uniform(0.2, 0.95), 4)
                    raw = round(normalised * (100 if model.startswith("musiq") else 1), 4)
                    scores.append(dict(image_id=image_id, model=model, task=task, raw=raw, normalised=normalised,
                                       model_version="1", scored_at=FIXED_NOW - 3000 + image_id))
                    pairs.append((task, normalised))
                comp = composite(group_scores(pairs), WEIGHTS)
                row.update(composite=comp.value, coverage=json.dumps(list(comp.coverage)), groups_json=json.dumps(comp.groups),
                           scored_at=FIXED_NOW - 3000 + image_id)
            images.append(row)
    return {"images": images, "scores": scores}


def fill_sample_db(db: sqlite_utils.Database, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Write the sample library: images and scores from ``rows``, and the rest of the state
    the daemon, the hub and the album would have written."""
    db["images"].insert_all(rows["images"])
    db["scores"].insert_all(rows["scores"])
    for m in MODELS:
        db["models"].insert({**m, "updated_at": FIXED_NOW - 3588})
    for model, at, kind, source, seconds, error_class, message in MODEL_EVENTS:
        db["model_events"].insert(dict(model=model, at=FIXED_NOW + at, kind=kind, source=source, seconds=seconds,
                                       error_class=error_class, message=message))
    db["daemon"].insert(dict(
        id=1, pid=4242, version="0.1.0", state="ready", started=FIXED_NOW - 3725, heartbeat=FIXED_NOW - 3, queue_depth=7,
        photos_per_min=42.5, watched_folders=json.dumps([{"path": "/photos", "mode": "events"}, {"path": "/mnt/nas/photos", "mode": "polling"}]),
        inotify_watches=1234, inotify_limit=65536, status_text="scoring 7 new photos",
    ))
    write_selection(db, run_id=1, started=FIXED_NOW - 1800)
    # a person rejects the first pick of moment 1; the next run replaces it
    first_pick = db.execute("SELECT image_id FROM picks ORDER BY moment, cluster LIMIT 1").fetchone()[0]
    db["manual_choices"].insert(dict(image_id=first_pick, choice="reject", origin="dashboard", at=FIXED_NOW - 700))
    write_selection(db, run_id=2, started=FIXED_NOW - 600, reject={first_pick})
    stages = (("decode", 0.031), ("sharpness", 0.004), ("brisque", 0.090), ("musiq-spaq", 0.410), ("faces", 0.022), ("write", 0.002), ("selection", 0.35))
    for batch in range(6):
        for stage, mean in stages:
            count = 1 if stage == "selection" else 8
            db["telemetry"].insert(dict(at=FIXED_NOW - 3000 + batch * 300, stage=stage, count=count,
                                        total_seconds=round(mean * count * (1 + batch / 10), 4), max_seconds=round(mean * 1.8, 4)))
    logs = (
        ("WARNING", "daemon.hub.sources", "kaggle google/musiq/tensorFlow2/koniq-10k: HTTP 503, retrying in 1.0 s"),
        ("ERROR", "daemon.hub.catalog", "model 'musiq-koniq' is unavailable: no source could provide it."),
        ("WARNING", "daemon.hub.catalog", "model 'ava-resnet50' is offline-unavailable: not in the cache"),
        ("INFO", "daemon.service", "watchers ready on 2 folders"),
        ("ERROR", "daemon.scoring.pipeline", "/photos/2025/IMG_1005.jpg: cannot identify image file: truncated JPEG"),
    )
    for i, (level, logger, message) in enumerate(logs):
        db["log"].insert(dict(at=FIXED_NOW - 3500 + i * 400, level=level, logger=logger, message=message))
    db["commands"].insert(dict(kind="rescan", arg=None, created=FIXED_NOW - 5, taken=None, done=None))


def write_selection(db: sqlite_utils.Database, *, run_id: int, started: float, reject: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """A selection run the way the album writes one: the best composite of each
    (moment, cluster) is picked, its reason stored as JSON, the change against the
    previous album recorded in pick_changes."""
    images = list(db.query("SELECT id, moment, cluster, composite, groups_json, coverage FROM images"
                           " WHERE status = 'scored' AND composite IS NOT NULL"))
    best: dict[tuple[int, int], dict[str, Any]] = {}
    for img in images:
        if img["id"] in reject:
            continue
        key = (img["moment"], img["cluster"])
        if key not in best or img["composite"] > best[key]["composite"]:
            best[key] = img
    before = {r["image_id"] for r in db.query("SELECT image_id FROM picks")}
    after = {img["id"] for img in best.values()}
    db["selection_runs"].insert(dict(id=run_id, trigger="schedule" if run_id > 1 else "new-photos", started=started,
                                     finished=started + 0.8, photos=len(images), moments=len({k[0] for k in best}),
                                     moments_recomputed=len({k[0] for k in best}), clusters=len(best), picks=len(best),
                                     added=len(after - before), removed=len(before - after), error=None))
    db.execute("DELETE FROM picks")
    for (moment, cluster), img in sorted(best.items()):
        siblings = sorted((i["composite"] for i in images if (i["moment"], i["cluster"]) == (moment, cluster) and i["id"] != img["id"]), reverse=True)
        margin = img["composite"] - siblings[0] if siblings else None
        reason = {
            "decided_by": "composite" if margin is None or margin > 0.05 else "siamese",
            "groups": json.loads(img["groups_json"]),
            "coverage": json.loads(img["coverage"]),
            "margin": round(margin, 4) if margin is not None else None,
            "floors": [],
            "manual": None,
        }
        db["picks"].insert(dict(image_id=img["id"], run_id=run_id, moment=moment, cluster=cluster, rank=1,
                                composite=img["composite"], reason=json.dumps(reason)))
    for image_id in sorted(after - before):
        db["pick_changes"].insert(dict(run_id=run_id, image_id=image_id, change="added"))
    for image_id in sorted(before - after):
        db["pick_changes"].insert(dict(run_id=run_id, image_id=image_id, change="removed"))


def build_sample_db(path: Path, **shape: Any) -> dict[str, list[dict[str, Any]]]:
    """Create the database at ``path`` through the real writer and fill it; returns the rows written."""
    rows = sample_rows(**shape)
    with StoreWriter(path) as writer:
        writer.call(lambda db: fill_sample_db(db, rows))
    return rows


@pytest.fixture
def sample_db(db_path: Path) -> Path:
    """A database holding the fixed sample library."""
    build_sample_db(db_path)
    return db_path


def screen_text(app: Any) -> str:
    """The characters the app's current screen shows, as plain text (what a user reads)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system=None, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def widget_text(app: Any, selector: str) -> str:
    """What one Static widget of the current screen shows, as plain text (unclipped by its pane)."""
    import io

    from rich.console import Console

    console = Console(width=200, file=io.StringIO(), color_system=None, record=True)
    console.print(app.screen.query_one(selector).content)
    return console.export_text().strip()


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Wait until the app's loading workers (and the ones they start) are done and painted."""
    for _ in range(rounds):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Local time is UTC for the test, so shown timestamps do not depend on the machine."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def record_models_through_the_hub(db_path: Path, https_fake: Any, kaggle_fake: Any) -> str:
    """Let the real ModelHub try to fetch musiq-koniq from a mirror that 404s and a Kaggle
    that does not have it (both fakes on 127.0.0.1), so the store holds the hub's own
    'failed' row and event history. Returns the last_error the hub recorded."""
    from daemon.errors import ModelUnavailable
    from daemon.hub.hub import ModelHub
    from fakehubs.fixtures import fast_config

    url = https_fake.url + "/mirror/musiq-koniq.tar.gz"  # nothing served there: 404
    config = fast_config(
        sources={"musiq-koniq": [{"kind": "https", "url": url, "sha256": "0" * 64, "extract": True}]},
        enabled=("musiq-koniq",),
        attempts=2,
        database=db_path,
    )
    with StoreWriter(db_path) as writer:
        hub = ModelHub(config, writer)
        hub.register()
        try:
            hub.fetch("musiq-koniq")
        except ModelUnavailable:
            pass
        else:  # pragma: no cover - the fakes serve nothing for it
            raise AssertionError("musiq-koniq should not be fetchable from empty fakes")
        hub.recorder.flush()
        row = writer.db.conn.execute("SELECT state, last_error FROM models WHERE name = 'musiq-koniq'").fetchone()
    assert row[0] == "failed", row
    return str(row[1])


def make_photos(folder: Path, scenes: tuple[str, ...] = ("astronaut", "chelsea", "coffee")) -> list[Path]:
    """A small burst per scene from scikit-image's bundled photos: sharp, blurred and noisy
    variants a few seconds apart, scenes ten minutes apart (file times stand in for EXIF)."""
    import os

    import numpy as np
    from PIL import Image, ImageFilter

    from daemon.imaging.demo import scene_image

    paths: list[Path] = []
    base = FIXED_NOW - 86_400
    for s, scene in enumerate(scenes):
        img = scene_image(scene)
        img.thumbnail((320, 320))
        noisy = np.clip(np.asarray(img, dtype=np.int16) + np.random.default_rng(s).normal(0, 40, (img.height, img.width, 3)), 0, 255)
        variants = {"sharp": img, "blurred": img.filter(ImageFilter.GaussianBlur(4)), "noisy": Image.fromarray(noisy.astype("uint8"))}
        for v, (name, variant) in enumerate(variants.items()):
            path = folder / f"{scene}_{name}.jpg"
            variant.save(path, quality=90)
            when = base + s * 600 + v * 3
            os.utime(path, (when, when))
            paths.append(path)
    return paths
