"""Settle before scoring: a file is handed to the pipeline only once it is complete.

A path becomes *ready* when either

- a close-after-write was seen for it and its size and mtime have not moved
  since, and a cheap completeness check passes (a JPEG ends with its EOI
  marker, a PNG with IEND, anything else opens with Pillow), or
- its size and mtime have been stable for ``settle_seconds`` and the check
  passes; a file that keeps failing the check is handed over anyway after
  ``give_up_factor`` times the window, so the pipeline records why it cannot
  be read instead of the file waiting for ever.

Every event for a path coalesces into its one pending entry. The settle thread
hands ready paths to ``submit`` outside the lock; ``submit`` may block (the
pipeline's bounded queue), which is the back-pressure.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

#: how many ready paths one pass hands over before looking at the clock again
BATCH = 256
#: at least this long between two tries of a path ``submit`` raised on
RETRY_SECONDS = 2.0


@dataclass
class _Pending:
    root: Path
    stat: tuple[int, int] | None  # (size, mtime_ns) last seen
    stable_since: float  # monotonic time the stat last changed
    closed: bool = False  # a close-after-write arrived since the last change


def file_looks_complete(path: Path | str) -> bool:
    """Whether the file's bytes look whole: JPEG ends with EOI, PNG with IEND,
    other formats open with Pillow. Cheap: reads a few bytes (or a header)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head[:3] == b"\xff\xd8\xff":
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64))
                tail = fh.read()
                return tail.rstrip(b"\x00").endswith(b"\xff\xd9")
            if head == b"\x89PNG\r\n\x1a\n":
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 12))
                return b"IEND" in fh.read()
    except OSError:
        return False
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not (yet) a whole image"
        return False


def stat_key(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (int(st.st_size), int(st.st_mtime_ns))


class Settler:
    """Holds paths until they are complete, then calls ``submit(path, root)``."""

    def __init__(self, submit: Callable[[Path, Path], object], settle_seconds: float, *,
                 tick_seconds: float = 0.1, give_up_factor: float = 5.0,
                 is_complete: Callable[[Path], bool] = file_looks_complete):
        self._submit = submit
        self.settle_seconds = max(0.0, float(settle_seconds))
        self.tick_seconds = tick_seconds
        self.give_up_factor = give_up_factor
        self._is_complete = is_complete
        self._pending: dict[Path, _Pending] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = 0  # paths taken out of _pending and not yet submitted
        self.submitted_total = 0
        self.hand_over_errors = 0
        #: errors from ``submit`` that mean the daemon is stopping (left for the next start, quietly)
        self.stopping_errors: tuple[type[BaseException], ...] = ()

    # -- feeding --------------------------------------------------------------------------

    def touch(self, path: Path, root: Path, *, closed: bool = False) -> None:
        """A change was seen on ``path`` (created, modified, moved in, or closed after writing)."""
        now = time.monotonic()
        key = stat_key(path)
        with self._lock:
            entry = self._pending.get(path)
            if entry is None:
                self._pending[path] = _Pending(root, key, now, closed)
            else:
                entry.root = root
                if key != entry.stat:
                    entry.stat, entry.stable_since, entry.closed = key, now, closed
                entry.closed = entry.closed or closed
        if closed:
            self._wake.set()

    def offer(self, path: Path, root: Path) -> bool:
        """A file found by a scan: submitted now when it was last modified more than
        ``settle_seconds`` ago, else held like an event. Returns True (scan API)."""
        key = stat_key(path)
        if key is not None and time.time() - key[1] / 1e9 >= self.settle_seconds:
            with self._lock:
                held = path in self._pending
            if not held:
                self._hand_over(path, root)
                return True
        self.touch(path, root)
        return True

    def forget(self, path: Path) -> None:
        """Drop a pending path (it was deleted or moved away)."""
        with self._lock:
            self._pending.pop(path, None)

    def forget_under(self, folder: Path) -> None:
        prefix = str(folder).rstrip(os.sep) + os.sep
        with self._lock:
            for p in [p for p in self._pending if str(p).startswith(prefix)]:
                del self._pending[p]

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + self._busy

    # -- the settle thread ----------------------------------------------------------------

    def start(self) -> "Settler":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="settle", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> int:
        """Stop settling; returns how many paths were still waiting (the next catch-up scan finds them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            left = len(self._pending)
            self._pending.clear()
        return left

    def health(self) -> str | None:
        """None while the settle thread runs (or was never started, or was stopped); else why not."""
        if self._thread is not None and not self._stop.is_set() and not self._thread.is_alive():
            return "the settle thread died (see the error logged before this)"
        return None

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.05)
        return self.pending() == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick_seconds)
            self._wake.clear()
            try:
                ready = self._collect()
            except Exception:  # noqa: BLE001 - keep settling whatever one path does
                log.exception("settle pass failed")
                continue
            for path, root in ready:
                if self._stop.is_set():
                    break
                self._hand_over(path, root)
            with self._lock:
                self._busy = 0

    def _collect(self) -> list[tuple[Path, Path]]:
        now = time.monotonic()
        with self._lock:
            items = list(self._pending.items())
        ready: list[tuple[Path, Path]] = []
        gone: list[Path] = []
        for path, entry in items:
            key = stat_key(path)
            if key is None:
                gone.append(path)
                continue
            with self._lock:
                if self._pending.get(path) is not entry:
                    continue
                if key != entry.stat:
                    entry.stat, entry.stable_since, entry.closed = key, now, False
                    continue
                stable = now - entry.stable_since
            if not (entry.closed or stable >= self.settle_seconds):
                continue
            if not self._is_complete(path) and stable < self.settle_seconds * self.give_up_factor:
                continue
            if stat_key(path) != key:  # grew while we looked
                continue
            ready.append((path, entry.root))
            if len(ready) >= BATCH:
                break
        with self._lock:
            for path in gone:
                self._pending.pop(path, None)
            for path, _root in ready:
                self._pending.pop(path, None)
            self._busy = len(ready)
        return ready

    def _hand_over(self, path: Path, root: Path) -> None:
        """Submit a ready path. A path that cannot be submitted (a database error while
        checking its row, a failed relink) is logged and settles again, to be tried after
        another ``settle_seconds``; once the daemon is stopping it is left for the next start."""
        try:
            self._submit(path, root)
            self.submitted_total += 1
        except Exception as exc:  # noqa: BLE001 - classified below
            if self._stop.is_set() or isinstance(exc, self.stopping_errors):
                log.debug("stopping: %s is left for the next start's catch-up scan", path)
                return
            log.error("could not queue %s for scoring (%s: %s); trying again in %.0f s",
                      path, type(exc).__name__, exc, RETRY_SECONDS + self.settle_seconds)
            self.hand_over_errors += 1
            with self._lock:
                self._pending.setdefault(path, _Pending(root, stat_key(path), time.monotonic() + RETRY_SECONDS))
