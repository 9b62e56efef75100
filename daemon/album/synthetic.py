"""Synthetic library rows for benchmarks and tests of the selection.

``insert_photo`` writes one scored image row the way the scoring pipeline
does (composite, coverage, groups, phash, scores), so the selection can be
exercised without decoding anything. ``build_library`` makes many of them:
moments of bursts of near-identical hashes.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import sqlite_utils

from ..scoring.composite import composite

DEFAULT_WEIGHTS = {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}


@dataclass(frozen=True)
class SyntheticPhoto:
    path: str
    taken_at: float
    groups: Mapping[str, float]
    phash: str | None = None
    scores: Mapping[str, tuple[str, float]] = field(default_factory=dict)  # name -> (task, normalised)
    exif: Mapping[str, Any] = field(default_factory=dict)
    width: int | None = 640
    height: int | None = 480
    status: str = "scored"


def insert_photo(db: sqlite_utils.Database, photo: SyntheticPhoto, *, now: float | None = None, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> int:
    """Insert (or replace, by path) one scored photo; returns its id."""
    now = time.time() if now is None else now
    comp = composite(photo.groups, weights)
    root = photo.path.rsplit("/", 2)[0] if photo.path.count("/") > 1 else "/"
    cur = db.conn.execute(
        "INSERT INTO images (path, root, size, mtime_ns, width, height, taken_at, taken_source, exif_json, phash, status,"
        " composite, coverage, groups_json, first_seen, scored_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, 'exif', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(path) DO UPDATE SET taken_at = excluded.taken_at, exif_json = excluded.exif_json, phash = excluded.phash,"
        " status = excluded.status, composite = excluded.composite, coverage = excluded.coverage,"
        " groups_json = excluded.groups_json, scored_at = excluded.scored_at, updated_at = excluded.updated_at",
        (
            photo.path, root, int(photo.taken_at * 1e9), photo.width, photo.height, photo.taken_at,
            json.dumps(dict(photo.exif)) if photo.exif else None, photo.phash, photo.status, comp.value,
            json.dumps(list(comp.coverage)), json.dumps(dict(photo.groups)), now, now, now,
        ),
    )
    del cur
    image_id = int(db.conn.execute("SELECT id FROM images WHERE path = ?", (photo.path,)).fetchone()[0])
    for name, (task, value) in photo.scores.items():
        db.conn.execute(
            "INSERT OR REPLACE INTO scores (image_id, model, task, raw, normalised, scored_at) VALUES (?, ?, ?, ?, ?, ?)",
            (image_id, name, task, value, value, now),
        )
    return image_id


def flip_bits(value: int, bits: int, rng: random.Random) -> int:
    for position in rng.sample(range(64), bits):
        value ^= 1 << position
    return value


def library_photos(count: int, *, seed: int = 1, start: float = 1_600_000_000.0, folders: int = 50) -> list[SyntheticPhoto]:
    """``count`` photos in bursts of 1-6 near-duplicates, 3-10 bursts per moment, spread over folders."""
    rng = random.Random(seed)
    photos: list[SyntheticPhoto] = []
    clock = start
    while len(photos) < count:
        folder = f"/photos/f{rng.randrange(folders):03d}"
        clock += rng.uniform(600, 7200)  # a new moment
        for _ in range(rng.randint(3, 10)):
            base = rng.getrandbits(64)
            clock += rng.uniform(5, 60)
            for _ in range(rng.randint(1, 6)):
                if len(photos) >= count:
                    break
                clock += rng.uniform(0.2, 1.5)
                n = len(photos)
                photos.append(
                    SyntheticPhoto(
                        path=f"{folder}/IMG_{n:06d}.jpg",
                        taken_at=clock,
                        groups={"aesthetic": rng.random(), "technical": rng.random()},
                        phash=f"{flip_bits(base, rng.randint(0, 6), rng):016x}",
                        scores={"sharpness": ("technical", rng.random())},
                    )
                )
    return photos


def build_library(db: sqlite_utils.Database, count: int, *, seed: int = 1, now: float | None = None) -> list[int]:
    """Insert ``count`` synthetic photos (see :func:`library_photos`); returns their ids."""
    return [insert_photo(db, p, now=now) for p in library_photos(count, seed=seed)]
