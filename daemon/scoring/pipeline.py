"""The scoring pipeline: a bounded queue, worker threads, one writer.

``submit(path, root)`` queues a file (blocking while the queue is full, so a
burst of thousands of photos never grows memory). Each worker decodes the
photo once at the configured size, hashes it, runs every scorer on the same
pixels and hands the row and all its scores to the store writer as one piece
of work: a photo is committed whole or not at all. Per-stage timings are
aggregated and written to ``telemetry`` every few seconds.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import ImageRejected
from ..imaging.decode import decode_image
from ..imaging.hashing import content_hash, phash
from .base import outputs
from .record import FileStat, is_utf8_name, mark_deleted, path_key, record_error, record_result, record_telemetry

if TYPE_CHECKING:
    from ..config import Config
    from ..store.writer import StoreWriter
    from .base import Score, Scorer

log = logging.getLogger(__name__)

TELEMETRY_SECONDS = 5.0
#: a worker on one photo for longer than this is taken for wedged
STALLED_SECONDS = 300.0
_STOP = object()


class StageTimes:
    """Thread-safe per-stage counters: count, total and max seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[str, list[float]] = {}

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            entry = self._stages.setdefault(stage, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)

    def take(self) -> dict[str, tuple[int, float, float]]:
        with self._lock:
            out = {k: (int(v[0]), v[1], v[2]) for k, v in self._stages.items()}
            self._stages.clear()
        return out


class PipelineStopping(RuntimeError):
    """:meth:`Pipeline.submit` after :meth:`Pipeline.stop`: the work is left for the next start."""


class Pipeline:
    """Scores files handed to :meth:`submit` with every scorer, on ``config.worker_count`` threads."""

    def __init__(self, config: "Config", writer: "StoreWriter", scorers: Sequence["Scorer"] | None = None):
        if scorers is None:
            from .builtin import builtin_scorers

            scorers = builtin_scorers(config, writer)
        self.config = config
        self.writer = writer
        self.weights = config.weights.as_dict()
        self._scorers: tuple[Any, ...] = tuple(scorers)
        self._scorers_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, config.queue_size))
        self._workers: list[threading.Thread] = []
        self._callbacks: list[Callable[[list[int]], None]] = []
        self._cond = threading.Condition()
        self._unfinished = 0  # submitted and not yet committed (or failed)
        self._at_writer: set[str] = set()  # of those, the ones already handed to the store writer
        self._queued: set[str] = set()  # paths waiting in the queue (events for them coalesce)
        self._settled: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) when it was handed over
        self._resettle: Callable[[Path, Path], object] | None = None
        self._stopping = False
        self._started = False
        self._prepared = threading.Semaphore(0)  # released once by each worker when it is ready
        self._busy_since: dict[str, float] = {}  # worker name -> monotonic time it took its photo
        self.times = StageTimes()
        self.scored_total = 0
        self.errors_total = 0
        self._last_telemetry = time.monotonic()

    # -- scorers --------------------------------------------------------------------------

    @property
    def scorers(self) -> tuple[Any, ...]:
        return self._scorers

    def add_scorer(self, scorer: "Scorer") -> None:
        """Add (or replace, by name) a scorer; photos taken from the queue after this use it."""
        with self._scorers_lock:
            self._scorers = tuple(s for s in self._scorers if s.name != scorer.name) + (scorer,)
        log.info("scorer %s (%s) joined the pipeline", scorer.name, scorer.task)

    def remove_scorer(self, name: str) -> None:
        with self._scorers_lock:
            self._scorers = tuple(s for s in self._scorers if s.name != name)

    def on_changed_while_read(self, resettle: Callable[[Path, Path], object]) -> None:
        """Call ``resettle(path, root)`` for a file that could not be decoded because it was
        being rewritten (it changed since it was handed over, or while it was read): it
        settles again instead of getting an error row that only heals on the next change."""
        self._resettle = resettle

    def on_committed(self, callback: Callable[[list[int]], None]) -> None:
        """Call ``callback(image_ids)`` after scored photos commit (from the writer's thread)."""
        self._callbacks.append(callback)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "Pipeline":
        if self._started:
            return self
        self._started = True
        # parallelism comes from the worker threads; OpenCV's own thread pool on top
        # of them only oversubscribes the cores
        import cv2

        cv2.setNumThreads(1)
        self.writer.start()
        for i in range(self.config.worker_count):
            t = threading.Thread(target=self._work, name=f"score-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every worker has loaded what its scorers need (see :meth:`_prepare`)."""
        deadline = time.monotonic() + timeout
        for _ in self._workers:
            if not self._prepared.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        for _ in self._workers:
            self._prepared.release()  # later callers return at once
        return True

    def health(self) -> str | None:
        """None while every worker lives and none has been on one photo for more than
        :data:`STALLED_SECONDS` (not counting a wait for the store writer's disk); else why not."""
        if not self._started or self._stopping:
            return None
        dead = [t.name for t in self._workers if not t.is_alive()]
        if dead:
            return f"scoring worker(s) {', '.join(dead)} died (see the error logged before this)"
        if getattr(self.writer, "waiting_for_storage", None):
            return None
        now = time.monotonic()
        stalled = [f"{name} ({now - since:.0f} s)" for name, since in list(self._busy_since.items())
                   if now - since > STALLED_SECONDS]
        if stalled:
            return f"scoring worker(s) stuck on one photo: {', '.join(stalled)}"
        return None

    def submit(self, path: Path | str, root: Path | str, *, refresh: bool = False,
               settled: tuple[int, int] | None = None) -> bool:
        """Queue a file for scoring; blocks while the queue is full. Returns False when
        the same path is already waiting (the queued entry will read the newest content).
        ``refresh``: the file is unchanged and only this pipeline's scorers are run again
        (their version changed): other scores it has, a learned model's, are kept.
        ``settled``: its (size, mtime_ns) when it was found complete; a file that no longer
        has them and cannot be decoded was being rewritten (see :meth:`on_changed_while_read`)."""
        if self._stopping:
            raise PipelineStopping("the pipeline is stopping; no new work is taken")
        key = str(path)
        with self._cond:
            if settled is not None:
                self._settled[key] = settled
            if key in self._queued:
                return False
            self._queued.add(key)
            self._unfinished += 1
        self._queue.put((Path(path), Path(root), refresh))
        return True

    def queue_depth(self) -> int:
        """Photos submitted and not yet committed."""
        with self._cond:
            return self._unfinished

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted photo is committed; True when it got there in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is None else min(remaining, 1.0))
        self.flush_telemetry()
        return True

    def stop(self, *, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop taking work. With ``drain``, finish the queue first (up to ``timeout``);
        without, queued photos are dropped (the next catch-up scan finds them again)."""
        deadline = time.monotonic() + timeout
        if drain:
            self.drain(timeout)
        self._stopping = True
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                dropped += 1
                self._finish(str(item[0]))
        if dropped:
            log.info("stopping: %d queued photo(s) left for the next start's catch-up scan", dropped)
        for _ in self._workers:
            self._queue.put(_STOP)
        for t in self._workers:
            t.join(max(0.1, deadline - time.monotonic()))
        self.flush_telemetry()

    # -- the workers ----------------------------------------------------------------------

    def _finish(self, key: str, committed: int | None = None) -> None:
        with self._cond:
            self._queued.discard(key)
            self._at_writer.discard(key)
            self._unfinished -= 1
            if committed is not None:
                self.scored_total += 1
            self._cond.notify_all()

    def _prepare(self) -> None:
        """Before the first photo: import the hashing code and let each scorer load its
        per-thread state (OpenCV's cascades are not shared between threads), so the
        first photo a worker takes is not also its start-up."""
        from ..imaging.hashing import warm

        warm()
        for scorer in self._scorers:
            prepare = getattr(scorer, "prepare_thread", None)
            if prepare is not None:
                try:
                    prepare()
                except Exception:  # noqa: BLE001 - the scorer fails again, and is recorded, on the photo
                    log.exception("preparing scorer %s failed", scorer.name)

    def _work(self) -> None:
        try:
            self._prepare()
        except Exception:  # noqa: BLE001 - the worker still scores; each photo records what fails
            log.exception("preparing worker %s failed", threading.current_thread().name)
        finally:
            self._prepared.release()
        name = threading.current_thread().name
        while True:
            self._busy_since.pop(name, None)
            item = self._queue.get()
            if item is _STOP:
                return
            self._busy_since[name] = time.monotonic()
            path, root, refresh = item
            with self._cond:
                self._queued.discard(str(path))  # from now on a new event queues a new pass
            try:
                self._score_one(path, root, refresh)
            except Exception:  # noqa: BLE001 - a bug on one photo must not kill the worker
                log.exception("scoring %s failed unexpectedly", path)
                self._commit_error(path, root, None, "internal error while scoring; see the log")
            if time.monotonic() - self._last_telemetry > TELEMETRY_SECONDS:
                self.flush_telemetry()

    def _score_one(self, path: Path, root: Path, refresh: bool = False) -> None:
        with self._cond:
            settled = self._settled.pop(str(path), None)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.islink(path):
                self._commit_error(path, root, None, f"broken symbolic link (points to {os.readlink(path)!r})")
            else:
                self._commit_gone(path)
            return
        except OSError as exc:
            self._commit_error(path, root, None, _os_reason(exc))
            return
        stat = FileStat.of(st)
        if not is_utf8_name(path):
            self._commit_error(path, root, stat, "the file name is not valid UTF-8; rename the file to have it scored")
            return
        t0 = time.perf_counter()
        try:
            decoded = decode_image(path, size=self.config.decode_size)
        except ImageRejected as exc:
            if "disappeared" in exc.reason:
                self._commit_gone(path)
            elif _changed_while_read(path, stat, settled):
                self._read_again_later(path, root, exc.reason)
            else:
                self._commit_error(path, root, stat, exc.reason)
            return
        t1 = time.perf_counter()
        self.times.add("decode", t1 - t0)
        perceptual = phash(decoded)
        try:
            chash = content_hash(path)
        except OSError:
            chash = None
        self.times.add("hash", time.perf_counter() - t1)
        scores: list["Score"] = []
        failures: dict[str, str] = {}
        scorers = self._scorers
        replaces = [name for scorer in scorers for name in outputs(scorer)] if refresh else None
        for scorer in scorers:
            t = time.perf_counter()
            try:
                version = getattr(scorer, "version", None)
                # each score carries its scorer's version: a later version scores the photo again
                scores.extend(sc if sc.version or not version else replace(sc, version=str(version))
                              for sc in scorer.score(decoded))
            except Exception as exc:  # noqa: BLE001 - one scorer failing must not lose the others' work
                log.warning("scorer %s failed on %s: %s", scorer.name, path, exc)
                failures[scorer.name] = f"{type(exc).__name__}: {exc}"
            self.times.add(scorer.name, time.perf_counter() - t)
        weights = self.weights
        meta = decoded.meta

        def work(db: Any) -> int | None:
            if not os.path.lexists(path):
                # renamed or deleted while it was scored: its move or delete event has
                # scored the new name or is about to record the deletion; a row here
                # would be a stale duplicate until the next reconciliation scan
                mark_deleted(db, [path])
                return None
            t = time.perf_counter()
            image_id = record_result(db, path=path, root=root, stat=stat, meta=meta, phash=perceptual, content_hash=chash,
                                     scores=scores, weights=weights, scorer_errors=failures, replaces=replaces)
            self.times.add("write", time.perf_counter() - t)
            return image_id

        self._commit(path, work, scored=True)

    def _commit(self, path: Path, work: Callable[[Any], Any], *, scored: bool) -> None:
        """Hand ``work`` to the writer; the photo counts as in flight until it commits or fails
        (exactly one ``_finish`` either way). Never raises."""
        key = str(path)
        with self._cond:
            self._at_writer.add(key)
            # the last photo in flight (none queued or being scored): nothing will come to share
            # its batch, so it commits at once instead of waiting out the writer's batch window
            last = len(self._at_writer) == self._unfinished
        try:
            future = self.writer.submit(work, urgent=last)
        except Exception as exc:  # noqa: BLE001 - the writer stopped or closed: the photo is left for the next start
            log.error("could not hand %s to the store writer (%s); the next start's catch-up scan scores it",
                      path_key(path), exc)
            self._finish(key)
            return

        def done(fut: Any) -> None:
            exc = fut.exception()
            if exc is not None:
                log.error("could not store %s: %s", path, exc)
                self._finish(key)
                return
            image_id = fut.result()
            if scored and image_id is None:
                log.info("%s went away while it was scored; not stored under its old name", path_key(path))
            self._finish(key, image_id if scored else None)
            if scored and image_id is not None:
                for callback in list(self._callbacks):
                    try:
                        callback([image_id])
                    except Exception:  # noqa: BLE001 - a listener's bug must not stall the pipeline
                        log.exception("on_committed listener failed")

        future.add_done_callback(done)

    def _commit_error(self, path: Path, root: Path, stat: FileStat | None, reason: str) -> None:
        log.warning("cannot score %s: %s", path_key(path), reason)
        with self._cond:
            self.errors_total += 1
        self._commit(path, lambda db: record_error(db, path=path, root=root, stat=stat, reason=reason), scored=False)

    def _read_again_later(self, path: Path, root: Path, reason: str) -> None:
        """A file being rewritten is not refused: it settles again (or, with no settler, is
        left for the next scan, which sees its new size and time)."""
        if self._resettle is None:
            log.warning("%s changed while it was read (%s); not scored this time: the next scan scores it once it "
                        "is completely written", path_key(path), reason)
        else:
            log.info("%s changed while it was read (%s); it is scored once it settles again", path_key(path), reason)
            try:
                self._resettle(path, root)
            except Exception:  # noqa: BLE001 - the file's next change event, or the next scan, brings it back
                log.exception("could not hand %s back to settle", path_key(path))
        self._finish(str(path))

    def _commit_gone(self, path: Path) -> None:
        log.info("%s disappeared before it was scored", path_key(path))
        self._commit(path, lambda db: mark_deleted(db, [path]), scored=False)

    def flush_telemetry(self) -> None:
        self._last_telemetry = time.monotonic()
        stages = self.times.take()
        if stages and not getattr(self.writer, "_closed", False):
            try:
                self.writer.submit(lambda db: record_telemetry(db, stages))
            except Exception as exc:  # noqa: BLE001 - timings are not worth a worker or a clean stop
                log.warning("could not store the pipeline's timings: %s", exc)


def _changed_while_read(path: Path, stat: FileStat, settled: tuple[int, int] | None) -> bool:
    """Whether ``path`` is not the file that settled: its size or mtime moved since it was
    handed over (``settled``) or since the worker read it (``stat``)."""
    if settled is not None and (stat.size, stat.mtime_ns) != tuple(settled):
        return True
    try:
        return FileStat.of(os.stat(path)) != stat
    except OSError:
        return True  # gone or replaced mid-read: its delete or create event follows


def _os_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return "symbolic link loop: the link points (eventually) to itself"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: keepers cannot read this file"
    return f"cannot read: {exc.strerror or exc}"
