"""Backfill: when a model becomes ready late, score the photos that were
scored without it — with that model alone — and recompute their composite.

Each photo is decoded again (the decode is the only shared work; the
built-in scorers are not run again). Work goes through the store's single
writer in small batches, so the daemon keeps scoring new photos meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..store.db import open_db
from ..store.writer import StoreWriter

if TYPE_CHECKING:
    from ..imaging.decode import Decoded
    from .base import Score

log = logging.getLogger(__name__)

#: tasks whose models write one ``scores`` row per photo
SCORE_TASKS = ("aesthetic", "technical", "portrait")


@dataclass(frozen=True)
class BackfillResult:
    model: str
    scored: int  # photos that got the model's score (or embedding)
    failed: int  # photos that could not be decoded or scored (left for a later pass)
    seconds: float


def missing_images(conn: sqlite3.Connection, model: str, *, embedding: bool = False, limit: int | None = None) -> list[tuple[int, str]]:
    """(id, path) of scored photos that have no row of ``model`` (in
    ``embeddings`` when ``embedding``, else in ``scores``), oldest first."""
    table = "embeddings" if embedding else "scores"
    sql = (f"SELECT i.id, i.path FROM images i WHERE i.status = 'scored' AND NOT EXISTS "
           f"(SELECT 1 FROM {table} t WHERE t.image_id = i.id AND t.model = ?) ORDER BY i.id")
    params: tuple[Any, ...] = (model,)
    if limit:
        sql += " LIMIT ?"
        params += (limit,)
    return [(int(r[0]), str(r[1])) for r in conn.execute(sql, params)]


def missing_models(conn: sqlite3.Connection, models: Mapping[str, str]) -> dict[int, list[str]]:
    """For every photo that is not deleted: the models of ``models`` (name ->
    task) it has no score (embedding models: no embedding) from yet.
    Comparators are not per-photo and are ignored."""
    out: dict[int, list[str]] = {}
    ids = [int(r[0]) for r in conn.execute("SELECT id FROM images WHERE status != 'deleted'")]
    for name, task in models.items():
        if task == "comparator":
            continue
        table = "embeddings" if task == "embedding" else "scores"
        have = {int(r[0]) for r in conn.execute(f"SELECT image_id FROM {table} WHERE model = ?", (name,))}
        for image_id in ids:
            if image_id not in have:
                out.setdefault(image_id, []).append(name)
    return {i: out.get(i, []) for i in ids}


def write_scores(db: Any, image_id: int, scores: Iterable["Score"], scored_at: float | None = None) -> None:
    """Insert or replace the ``scores`` rows of one photo (inside the writer)."""
    now = scored_at or time.time()
    db.conn.executemany(
        "INSERT OR REPLACE INTO scores (image_id, model, task, raw, normalised, model_version, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(image_id, s.name, s.task, s.raw, s.normalised, s.version, now) for s in scores],
    )


def write_embedding(db: Any, image_id: int, model: str, vector: np.ndarray) -> None:
    """Insert or replace one photo's embedding (float32 little-endian blob)."""
    data = np.ascontiguousarray(vector, dtype="<f4")
    db.conn.execute("INSERT OR REPLACE INTO embeddings (image_id, model, dim, vector) VALUES (?, ?, ?, ?)",
                    (image_id, model, int(data.size), data.tobytes()))


def read_embedding(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4")


Decoder = Callable[[Path], "Decoded"]


def default_decoder(size: int) -> Decoder:
    """The pipeline's decoder at the configured size (imported on first use)."""

    def decode(path: Path) -> "Decoded":
        from ..imaging.decode import decode_image

        return decode_image(path, size=size)

    return decode


class Backfiller:
    """Scores the photos a model missed, with that model alone."""

    def __init__(self, writer: StoreWriter, weights: Mapping[str, float], *, decode: Decoder, batch_size: int = 8,
                 stop: threading.Event | None = None, max_passes: int = 5):
        self.writer = writer
        self.weights = dict(weights)
        self.decode = decode
        self.batch_size = max(1, batch_size)
        self.stop = stop or threading.Event()
        self.max_passes = max_passes

    def run(self, model: Any) -> BackfillResult:
        """Backfill ``model`` (a loaded scorer or embedder) until no photo is
        missing it, or a pass finds only photos that already failed."""
        started = time.monotonic()
        embedding = hasattr(model, "embed_batch")
        if not embedding and getattr(model, "task", None) not in SCORE_TASKS:
            return BackfillResult(model.name, 0, 0, 0.0)
        conn = open_db(self.writer.path, readonly=True).conn
        scored = 0
        tried_and_failed: set[int] = set()
        try:
            for _ in range(self.max_passes):  # photos in flight when the model arrived show up in a later pass
                todo = [(i, p) for i, p in missing_images(conn, model.name, embedding=embedding) if i not in tried_and_failed]
                if not todo or self.stop.is_set():
                    break
                for start in range(0, len(todo), self.batch_size):
                    if self.stop.is_set():
                        break
                    done, failed = self._batch(model, todo[start : start + self.batch_size], embedding)
                    scored += done
                    tried_and_failed.update(failed)
                self.writer.flush()
        finally:
            conn.close()
        result = BackfillResult(model.name, scored, len(tried_and_failed), time.monotonic() - started)
        if scored or tried_and_failed:
            log.info("backfill %s: %d photo(s) scored, %d failed, in %.1f s", model.name, scored, len(tried_and_failed), result.seconds)
        return result

    def _batch(self, model: Any, items: Sequence[tuple[int, str]], embedding: bool) -> tuple[int, list[int]]:
        decoded: list[tuple[int, Any]] = []
        failed: list[int] = []
        for image_id, path in items:
            try:
                decoded.append((image_id, self.decode(Path(path))))
            except Exception as exc:  # noqa: BLE001 - a photo that vanished or broke must not stop the backfill
                log.warning("backfill %s: cannot decode %s: %s", model.name, path, exc)
                failed.append(image_id)
        if not decoded:
            return 0, failed
        images = [d for _, d in decoded]
        try:
            results: list[Any] = model.embed_batch(images) if embedding else model.score_batch(images)
        except Exception as exc:  # noqa: BLE001 - the model failed on this batch: record and go on
            log.warning("backfill %s: the model failed on %d photo(s): %s", model.name, len(images), exc)
            return 0, failed + [i for i, _ in decoded]
        ids = [i for i, _ in decoded]
        weights = self.weights

        def work(db: Any) -> None:
            from .record import recompute_composite

            now = time.time()
            for image_id, result in zip(ids, results):
                if not db.conn.execute("SELECT 1 FROM images WHERE id = ? AND status != 'deleted'", (image_id,)).fetchone():
                    continue  # deleted meanwhile
                if embedding:
                    write_embedding(db, image_id, model.name, result)
                else:
                    write_scores(db, image_id, result, now)
                    recompute_composite(db, image_id, weights)

        self.writer.submit(work).result(timeout=60)
        return len(ids), failed
