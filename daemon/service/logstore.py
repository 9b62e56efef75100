"""Warnings and errors into the ``log`` table, for the dashboard."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.writer import StoreWriter

#: at most this many rows are kept
KEEP_ROWS = 5000


class StoreLogHandler(logging.Handler):
    """Stores WARNING and above through the writer (never from the writer's own thread)."""

    def __init__(self, writer: "StoreWriter", level: int = logging.WARNING):
        super().__init__(level)
        self.writer = writer
        self._guard = threading.local()
        self._count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._guard, "busy", False) or record.name.startswith("daemon.store"):
            return
        self._guard.busy = True
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message = f"{message}: {record.exc_info[1]!r}"
            row = (record.created or time.time(), record.levelname, record.name, message[:4000])
            self._count += 1
            trim = self._count % 500 == 0

            def work(db: object) -> None:
                conn = db.conn  # type: ignore[attr-defined]
                conn.execute("INSERT INTO log (at, level, logger, message) VALUES (?, ?, ?, ?)", row)
                if trim:
                    conn.execute("DELETE FROM log WHERE id <= (SELECT MAX(id) FROM log) - ?", (KEEP_ROWS,))

            self.writer.submit(work)
        except Exception:  # noqa: BLE001 - logging must never raise
            pass
        finally:
            self._guard.busy = False
