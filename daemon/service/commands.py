"""The ``commands`` table: what the dashboard and the CLI ask the daemon to do.

Other parts add handlers with :meth:`CommandRegistry.register` (the album
registers reselect/pin/unpin/reject, the model manager retry-model). A
handler gets the command's ``arg`` and returns a JSON-ready result or raises;
a kind nobody handles is closed with the error "not supported by this daemon"
rather than left pending.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..store.writer import StoreWriter

log = logging.getLogger(__name__)

Handler = Callable[[str | None], Any]
UNSUPPORTED = "not supported by this daemon"


class CommandRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def register(self, kind: str, handler: Handler) -> None:
        with self._lock:
            self._handlers[kind] = handler

    def handler(self, kind: str) -> Handler | None:
        with self._lock:
            return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        with self._lock:
            return sorted(self._handlers)


def _take_open(db: Any) -> list[tuple[int, str, str | None]]:
    now = time.time()
    rows = db.conn.execute("SELECT id, kind, arg FROM commands WHERE taken IS NULL ORDER BY id").fetchall()
    db.conn.executemany("UPDATE commands SET taken = ? WHERE id = ?", [(now, r[0]) for r in rows])
    return [(int(r[0]), r[1], r[2]) for r in rows]


def _close(db: Any, command_id: int, result: Any, error: str | None) -> None:
    db.conn.execute(
        "UPDATE commands SET done = ?, result = ?, error = ? WHERE id = ?",
        (time.time(), None if result is None else json.dumps(result, default=str), error, command_id),
    )


def poll_commands(writer: "StoreWriter", registry: CommandRegistry) -> int:
    """Take every open command, run its handler, record the result or error; returns how many ran."""
    taken = writer.call(_take_open)
    for command_id, kind, arg in taken:
        handler = registry.handler(kind)
        result: Any = None
        error: str | None = None
        if handler is None:
            error = UNSUPPORTED
            log.warning("command %d (%s) is %s", command_id, kind, UNSUPPORTED)
        else:
            try:
                result = handler(arg)
            except Exception as exc:  # noqa: BLE001 - the error goes back to whoever asked
                error = f"{type(exc).__name__}: {exc}"
                log.warning("command %d (%s %s) failed: %s", command_id, kind, arg or "", error)
        writer.call(lambda db, i=command_id, r=result, e=error: _close(db, i, r, e))
    return len(taken)
