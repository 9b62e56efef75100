"""The hub's record in the store: the ``models`` row and ``model_events``.

Writes go through the daemon's :class:`~daemon.store.writer.StoreWriter`
(``submit``: never blocks on the database). With no writer nothing is
recorded (tests, one-shot CLI use without a database).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..store.schema import MODEL_STATES
from ..store.writer import StoreWriter

log = logging.getLogger(__name__)

EVENT_KINDS = ("attempt", "retry", "skip", "fallback", "success", "failure", "load", "offline", "cache")
_MODEL_FIELDS = ("task", "framework", "enabled", "source", "source_ref", "cache_path", "version", "sha256", "bytes",
                 "load_seconds", "attempts", "last_error")


class HubRecorder:
    def __init__(self, writer: StoreWriter | None):
        self.writer = writer

    def state(self, name: str, state: str, **fields: Any) -> None:
        """Upsert the model's row with a new state and any of its columns."""
        if state not in MODEL_STATES:
            raise ValueError(f"unknown model state {state!r}; expected one of {', '.join(MODEL_STATES)}")
        unknown = set(fields) - set(_MODEL_FIELDS)
        if unknown:
            raise ValueError(f"unknown models column(s) {', '.join(sorted(unknown))}; expected any of {', '.join(_MODEL_FIELDS)}")
        if self.writer is None:
            return
        row = {"name": name, "state": state, "updated_at": time.time(), **fields}

        def work(db: Any) -> None:
            cols = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "name")
            db.conn.execute(f"INSERT INTO models ({cols}) VALUES ({marks}) ON CONFLICT(name) DO UPDATE SET {updates}", tuple(row.values()))

        self.writer.submit(work)

    def event(self, name: str, kind: str, *, source: str | None = None, seconds: float | None = None,
              error_class: str | None = None, message: str | None = None) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown model event {kind!r}; expected one of {', '.join(EVENT_KINDS)}")
        log.debug("model %s: %s %s %s %s", name, kind, source or "", error_class or "", message or "")
        if self.writer is None:
            return
        values = (name, time.time(), kind, source, seconds, error_class, message)
        self.writer.submit(lambda db: db.conn.execute(
            "INSERT INTO model_events (model, at, kind, source, seconds, error_class, message) VALUES (?, ?, ?, ?, ?, ?, ?)", values))

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()
