"""The single writer: one thread owns the write connection and commits the
work of many callers in batched transactions.

Callers hand it a function of the connection (``submit``) and get a
:class:`concurrent.futures.Future` that resolves once the transaction holding
their work has committed. Each piece of work runs inside its own SAVEPOINT, so
one failing piece rolls back alone and the rest of the batch still commits.

Batching trades latency for fewer commits: the writer waits up to
``batch_seconds`` for more work after the first piece arrives. Work somebody
waits on (``call``, ``flush``) does not wait for company: the batch commits with
whatever is queued at that moment. Before, every ``call`` cost the full window,
and a selection (flush, then apply) took 0.5 s in the daemon against 6 ms run
directly.

When the database cannot be written for a reason that passes (its disk is full,
its file system turned read-only, an I/O error), the writer keeps the batch and
tries it again every :data:`STORAGE_RETRY_SECONDS` until it commits: nothing
submitted is lost or half-written, and :attr:`StoreWriter.waiting_for_storage`
says why it waits. Any other error at BEGIN/COMMIT (a damaged file, a failed
constraint) stops the writer for good: every pending and later future resolves
with :class:`StoreError`, and :meth:`StoreWriter.health` says why, so the
daemon exits and is restarted.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from ..errors import StoreError
from ..paths import ENV_FAULT_COMMIT
from .db import damaged_message, disk_problem, is_damage, open_db

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[["sqlite_utils.Database"], Any]

_STOP = object()
#: seconds between tries while the database's disk is full or read-only
STORAGE_RETRY_SECONDS = 2.0
#: how often the writer says again, in the log, that it still waits for its disk
STORAGE_REMIND_SECONDS = 60.0
#: a batch in the works for longer than this means the writer is wedged
WEDGED_SECONDS = 300.0
#: tries of a batch that meets a locked database before its work fails
BUSY_ATTEMPTS = 5


class _WriterStopped(Exception):
    """Raised inside the thread once the writer has failed for good."""


def storage_problem(exc: BaseException, path: Path) -> str | None:
    """Why the database at ``path`` cannot be written just now (full disk, read-only file
    system, I/O error), or None when ``exc`` is not that kind of error."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary not in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
        return None
    found = disk_problem(path)
    if found is None and primary == sqlite3.SQLITE_FULL:
        found = f"the disk holding the database {path} is full: free some space on it"
    if found is None and primary == sqlite3.SQLITE_READONLY:
        found = f"the database {path} is read-only (the file or its file system): make it writable again"
    if found is None:
        found = f"the database {path} cannot be written: check the disk holding it"
    return f"{found} (SQLite: {exc})"


def _is_busy(exc: BaseException) -> bool:
    """Another connection holds the database (SQLITE_BUSY or SQLITE_LOCKED): worth a quick retry."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class StoreWriter:
    """Owns the only write connection. Thread-safe; start() before submit()."""

    def __init__(self, path: Path | str, *, batch_max: int = 200, batch_seconds: float = 0.25, queue_max: int = 10_000):
        self.path = Path(path)
        self.db = open_db(self.path)
        self.batch_max = batch_max
        self.batch_seconds = batch_seconds
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._started = False
        self._closed = False
        self._closing = threading.Event()
        self.commits = 0
        #: why the writer stopped for good (None while it works)
        self.failure: str | None = None
        #: why the writer is waiting for its disk (None while it can write)
        self.waiting_for_storage: str | None = None
        #: called as ``while_waiting(db, reason)`` in a transaction of its own at each try while
        #: the writer waits for its disk (the daemon records its heartbeat there; a small
        #: update often still fits where a batch of photos does not)
        self.while_waiting: Callable[[sqlite_utils.Database, str], None] | None = None
        self._batch_since: float | None = None  # monotonic start of the batch in the works
        self._reminded = 0.0  # when the log last said the writer waits for its disk
        self._fault_file = os.environ.get(ENV_FAULT_COMMIT) or None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "StoreWriter":
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit everything submitted so far, then stop the thread and close the connection.
        A writer waiting for its disk gives up: its pending work fails (the photos have no row,
        so the next start's catch-up scan scores them)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("database %s: the writer did not stop within %s s; leaving its connection open", self.path, timeout)
                return
        try:
            self.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass
        self.db.conn.close()

    def __enter__(self) -> "StoreWriter":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- API -------------------------------------------------------------------------------

    def submit(self, work: Callable[[sqlite_utils.Database], T], *, urgent: bool = False) -> "Future[T]":
        """Queue ``work(db)`` for the next batch; the future resolves after commit.

        ``urgent``: somebody waits on it, or nothing else is coming (the pipeline's last
        photo in flight), so its batch commits without waiting
        ``batch_seconds`` for more work. Raises StoreError once the writer has
        failed for good, RuntimeError once closed."""
        if self._closed:
            raise RuntimeError("the store writer is closed")
        if self.failure is not None:
            raise StoreError(f"the store writer stopped: {self.failure}")
        fut: Future[T] = Future()
        if not self._started:  # synchronous use (tests, one-shot CLI commands)
            try:
                self._run_batch([(work, fut)])
            except _WriterStopped:
                pass  # the future carries the error
            return fut
        self._queue.put((work, fut, urgent))
        return fut

    def call(self, work: Callable[[sqlite_utils.Database], T], timeout: float | None = 30.0) -> T:
        """Run ``work(db)`` in the writer and wait for its committed result (committed at once)."""
        return self.submit(work, urgent=True).result(timeout)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until everything submitted before this call has committed."""
        self.call(lambda db: None, timeout)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def health(self) -> str | None:
        """None while the writer works (or waits for its disk, see :attr:`waiting_for_storage`);
        else why it cannot: it failed, its thread died, or one batch has taken too long."""
        if self.failure is not None:
            return f"the store writer stopped: {self.failure}"
        if self._started and not self._closed and not self._thread.is_alive():
            return "the store writer's thread died (see the error logged before this)"
        since = self._batch_since
        if since is not None and self.waiting_for_storage is None and time.monotonic() - since > WEDGED_SECONDS:
            return f"the store writer has been on one batch for {time.monotonic() - since:.0f} s"
        return None

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            work, fut, urgent = item
            batch = [(work, fut)]
            deadline = time.monotonic() + self.batch_seconds
            while len(batch) < self.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    # someone waits on this batch: take what is queued now, wait for nothing more
                    nxt = self._queue.get(timeout=remaining) if remaining > 0 and not urgent else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                work, fut, more_urgent = nxt
                batch.append((work, fut))
                urgent = urgent or more_urgent
            try:
                self._run_batch(batch)
            except _WriterStopped:
                self._refuse_until_stopped(stopping)
                return

    def _refuse_until_stopped(self, stopping: bool) -> None:
        """After a failure: fail every piece of work still queued, and any queued later
        (a submit racing the failure), until close()."""
        error = StoreError(f"the store writer stopped: {self.failure}")
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                return
            item[1].set_exception(error)

    def _run_batch(self, batch: list[tuple[Work, Future]]) -> None:
        """Commit ``batch`` and resolve its futures. Waits while the disk cannot be written;
        raises _WriterStopped (every future resolved with the error) on any other failure."""
        self._batch_since = time.monotonic()
        busy = 0
        try:
            while True:
                try:
                    results = self._try_batch(batch)
                except Exception as exc:  # noqa: BLE001 - classified below; nothing may end the thread unseen
                    self._rollback()
                    if _is_busy(exc):
                        busy += 1
                        if busy < BUSY_ATTEMPTS:
                            time.sleep(0.05 * busy)
                            continue
                        log.error("database %s: batch of %d writes failed: %s", self.path, len(batch), exc)
                        self._resolve_all(batch, exc)
                        return
                    reason = storage_problem(exc, self.path)
                    if reason is not None and self._wait_for_storage(reason, len(batch)):
                        continue
                    if reason is not None:  # closing while the disk is still unusable
                        self._resolve_all(batch, StoreError(reason))
                        return
                    self.failure = damaged_message(self.path, exc) if is_damage(exc) else f"{type(exc).__name__} at commit: {exc}"
                    log.error("database %s: %s; the writer stops (the daemon exits and is restarted; "
                              "`keepers doctor` checks the database)", self.path, self.failure)
                    self._resolve_all(batch, StoreError(f"the store writer stopped: {self.failure}"))
                    raise _WriterStopped() from exc
                break
        finally:
            self._batch_since = None
        if self.waiting_for_storage is not None:
            log.warning("database %s can be written again; the writes that waited are committed", self.path)
            self.waiting_for_storage = None
        for fut, value, error in results:
            if error is not None:
                log.debug("write failed: %r", error)
                fut.set_exception(error)
            else:
                fut.set_result(value)

    def _try_batch(self, batch: list[tuple[Work, Future]]) -> list[tuple[Future, Any, BaseException | None]]:
        """One transaction over the whole batch; a piece of work that raises rolls back alone,
        unless its error is the database's own (locked, full, damaged): then the batch does."""
        conn = self.db.conn
        results: list[tuple[Future, Any, BaseException | None]] = []
        conn.execute("BEGIN IMMEDIATE")
        for i, (work, fut) in enumerate(batch):
            conn.execute(f"SAVEPOINT w{i}")
            try:
                value = work(self.db)
            except Exception as exc:  # one bad piece of work must not sink the batch
                if _is_busy(exc) or storage_problem(exc, self.path) is not None or is_damage(exc):
                    raise
                conn.execute(f"ROLLBACK TO w{i}")
                conn.execute(f"RELEASE w{i}")
                results.append((fut, None, exc))
                continue
            conn.execute(f"RELEASE w{i}")
            results.append((fut, value, None))
        if self._fault_file and os.path.exists(self._fault_file):
            raise sqlite3.DatabaseError(f"fault injected at commit by ${ENV_FAULT_COMMIT} (a test hook)")
        conn.execute("COMMIT")
        self.commits += 1
        return results

    def _rollback(self) -> None:
        conn = self.db.conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:  # SQLite may have rolled back by itself (a full disk does that)
            log.debug("rollback: %s", exc)

    def _wait_for_storage(self, reason: str, pending: int) -> bool:
        """Wait before trying the batch again; False when the writer is closing instead."""
        if self.waiting_for_storage is None or time.monotonic() - self._reminded > STORAGE_REMIND_SECONDS:
            log.error("%s; keepers waits and tries again every %.0f s: %d write(s) are held, nothing is lost",
                      reason, STORAGE_RETRY_SECONDS, pending + self._queue.qsize())
            self._reminded = time.monotonic()
        self.waiting_for_storage = reason
        if self.while_waiting is not None:
            try:
                self.db.conn.execute("BEGIN IMMEDIATE")
                self.while_waiting(self.db, reason)
                self.db.conn.execute("COMMIT")
            except Exception as exc:  # noqa: BLE001 - it did not fit either; the log says why
                self._rollback()
                log.debug("status write while waiting for the disk: %s", exc)
        return not self._closing.wait(STORAGE_RETRY_SECONDS)

    @staticmethod
    def _resolve_all(batch: list[tuple[Work, Future]], error: BaseException) -> None:
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(error)

