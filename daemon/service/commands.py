"""The ``commands`` table: what the dashboard and the CLI ask the daemon to do.

Other parts add handlers with :meth:`CommandRegistry.register` (the album
registers reselect/pin/unpin/reject, the model manager retry-model). A
handler gets the command's ``arg`` and returns a JSON-ready result (or a
Future of one, for a long job that runs elsewhere) or raises; a kind nobody
handles is closed with the error "not supported by this daemon" rather than
left pending. Commands are taken and finished one at a time, so a crash runs
at most the one in progress again after the restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..store.writer import StoreWriter

log = logging.getLogger(__name__)

Handler = Callable[[str | None], Any]
UNSUPPORTED = "not supported by this daemon"


class CommandRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._running: set[int] = set()
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

    def running(self) -> frozenset[int]:
        """Ids of the commands whose handler's Future has not resolved yet."""
        with self._lock:
            return frozenset(self._running)

    def track(self, command_id: int, future: "Future[Any]", close: Callable[[Any, str | None], Any]) -> None:
        """Call ``close(result, error)`` once ``future`` resolves; until then the command counts as running."""
        with self._lock:
            self._running.add(command_id)

        def done(fut: "Future[Any]") -> None:
            try:
                exc = fut.exception()
                result, error = (None, _error_text(exc)) if exc is not None else (fut.result(), None)
                if exc is not None:
                    log.warning("command %d failed: %s", command_id, error)
                close(result, error)
            except Exception:  # noqa: BLE001 - left open, it runs again at the next start
                log.exception("could not record the end of command %d", command_id)
            finally:
                with self._lock:
                    self._running.discard(command_id)

        future.add_done_callback(done)


def _take_next(db: Any, skip: frozenset[int]) -> tuple[int, str, str | None, float | None] | None:
    """Mark the oldest command not done (and not in ``skip``) taken; None when there is none.
    A command taken before and never done was taken by a daemon that stopped before finishing it."""
    marks = ",".join("?" * len(skip))
    row = db.conn.execute(
        f"SELECT id, kind, arg, taken FROM commands WHERE done IS NULL"
        f"{f' AND id NOT IN ({marks})' if skip else ''} ORDER BY id LIMIT 1", tuple(skip)).fetchone()
    if row is None:
        return None
    db.conn.execute("UPDATE commands SET taken = ? WHERE id = ?", (time.time(), row[0]))
    return int(row[0]), row[1], row[2], row[3]


def _close(db: Any, command_id: int, result: Any, error: str | None) -> None:
    db.conn.execute(
        "UPDATE commands SET done = ?, result = ?, error = ? WHERE id = ?",
        (time.time(), None if result is None else json.dumps(result, default=str), error, command_id),
    )


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def poll_commands(writer: "StoreWriter", registry: CommandRegistry, *, limit: int = 100) -> int:
    """Take the open commands one at a time, oldest first: each is marked taken, run, and
    closed with its result or error before the next is taken, so a crash leaves at most
    the one in progress to run again at the next start (handlers are safe to repeat).
    A handler that returns a Future (a long job, such as a rescan, running elsewhere) is
    closed when that future resolves; the next commands do not wait for it.
    Returns how many commands were taken."""
    taken = 0
    while taken < limit:
        row = writer.call(lambda db: _take_next(db, registry.running()))
        if row is None:
            break
        taken += 1
        command_id, kind, arg, taken_before = row
        if taken_before is not None:
            log.warning("command %d (%s %s) was taken by a daemon that stopped before finishing it; running it again",
                        command_id, kind, arg or "")
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
                error = _error_text(exc)
                log.warning("command %d (%s %s) failed: %s", command_id, kind, arg or "", error)
        if isinstance(result, Future):
            registry.track(command_id, result, lambda r, e, i=command_id: writer.submit(lambda db: _close(db, i, r, e)))
            continue
        writer.call(lambda db, i=command_id, r=result, e=error: _close(db, i, r, e))
    return taken
