"""The daemon: builds the parts, starts them in order, serves until told to stop.

Start-up order: store → writer → pipeline → model manager (loads in the
background) → the album → watchers → catch-up scan (in the
background) → READY=1.
SIGTERM/SIGINT: STOPPING=1, watchers off, the settle queue dropped (those files
have no row yet, so the next catch-up scan finds them), the pipeline drained
for up to ``DRAIN_SECONDS``, everything committed, exit 0. SIGHUP reloads the
config (folders, ignore patterns, settle window, rescan interval).

The service holds each part and wires it explicitly: the album
(:attr:`Service.album`) gets the scheduler, the command registry, the
pipeline's commit hook and the catch-up hook by name; a part that cannot be
wired in is a start-up failure with its reason (:class:`StartupError`).

Health (see :mod:`.health`): the main loop asks every part whether it lives
and moves before it pings systemd's watchdog and writes the heartbeat; a dead
or wedged part makes the daemon log why and exit with ``EXIT_UNHEALTHY``.
A database that cannot be written for a while (full disk, read-only file
system) is waited for, not exited on: the store writer holds what it was given
and tries again, and the status says why (see :mod:`daemon.store.writer`).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..config import Config
from ..errors import KeepersError
from ..scoring.scan import Matcher, rescore_outdated, scan_folders
from ..store.db import open_db
from ..watch.intake import Intake
from ..watch.mounts import RAISE_WATCHES_HINT, inotify_limit
from ..watch.settle import Settler
from ..watch.watcher import EventRouter, FolderWatcher, attach_overflow_listener, detach_overflow_listener
from .commands import CommandRegistry, poll_commands
from .health import EXIT_UNHEALTHY, SCHEDULER_BEAT_SECONDS, Health
from .logstore import StoreLogHandler
from .notify import Notifier, watchdog_interval

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
COMMAND_POLL_SECONDS = 1.0
DRAIN_SECONDS = 6.0
RESCAN_JOB_ID = "reconcile-scan"


class StartupError(KeepersError):
    """A part of the daemon could not be started or wired in; the message says which and why."""


class _Stopped(Exception):
    """The daemon is stopping: a scan in progress gives up (the next start scans again)."""


class _ScanTarget:
    """What scan_folders hands files to: the settler (a file modified moments ago waits)."""

    def __init__(self, settler: Settler, stop: threading.Event):
        self.settler = settler
        self.stop = stop

    def submit(self, path: Path, root: Path) -> bool:
        if self.stop.is_set():
            raise _Stopped()
        return self.settler.offer(Path(path), Path(root))


class Service:
    """The running daemon's parts: ``config``, ``writer``, ``pipeline``, ``scheduler``,
    ``models`` (the ModelManager), ``hub``, ``album`` (the AlbumHooks), ``health``,
    ``register_command``, ``startup_hooks`` (called with the service just before READY),
    ``caught_up_hooks`` (called with the catch-up scan's summary once every photo it
    queued is committed)."""

    def __init__(self, config: Config, args: argparse.Namespace | None = None, *, notifier: Notifier | None = None):
        self.config = config
        self.args = args
        self.notifier = notifier or Notifier()
        self.commands = CommandRegistry()
        self.startup_hooks: list[Callable[["Service"], None]] = []
        self.caught_up_hooks: list[Callable[[Any], None]] = []
        self.writer: Any = None
        self.pipeline: Any = None
        self.scheduler: Any = None
        self.hub: Any = None
        self.models: Any = None
        self.album: Any = None
        self.health = Health()
        #: why the daemon stopped itself (a part died or wedged); None while healthy
        self.unhealthy: str | None = None
        self.settler: Settler | None = None
        self.intake: Intake | None = None
        self.watcher: FolderWatcher | None = None
        self.stop_event = threading.Event()
        self.exit_code = 0
        self.state = "starting"
        self.started = time.time()
        self._scans = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rescan")
        self._scan_lock = threading.Lock()
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._log_handler: StoreLogHandler | None = None
        self._overflow: Any = None
        self._reload = threading.Event()
        self._last_beat = 0.0
        self._beat_future: Any = None

    # -- what the parts use -----------------------------------------------------------------

    def register_command(self, kind: str, handler: Callable[[str | None], Any]) -> None:
        self.commands.register(kind, handler)

    def request_stop(self, code: int = 0) -> None:
        self.exit_code = self.exit_code or code
        self.stop_event.set()

    # -- start-up -------------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        from ..scoring.pipeline import Pipeline, PipelineStopping
        from ..store.writer import StoreWriter

        config = self.config
        config.database_path.parent.mkdir(parents=True, exist_ok=True)
        open_db(config.database_path).conn.close()  # creates and migrates; a damaged file raises StoreError
        self.writer = StoreWriter(config.database_path).start()
        self.writer.while_waiting = self._record_waiting
        self.health.add("store writer", self.writer.health)
        self._log_handler = StoreLogHandler(self.writer)
        logging.getLogger().addHandler(self._log_handler)
        self._heartbeat()
        logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)  # "Added job ..." on every start
        self.scheduler = BackgroundScheduler(daemon=True)
        self.scheduler.start()
        self.pipeline = Pipeline(config, self.writer).start()
        self.health.add("scoring workers", self.pipeline.health)
        self._start_models()
        self.intake = Intake(self.writer, self.pipeline)
        self.settler = Settler(self.intake.submit, config.settle_seconds)
        self.settler.stopping_errors = (PipelineStopping,)
        self.settler.start()
        self.health.add("settle thread", self.settler.health)
        self.pipeline.on_changed_while_read(self.settler.touch)
        self.register_command("rescan", self._rescan_command)
        self._start_album()
        # watchers first, then the catch-up scan: a change during the scan is seen by
        # both and coalesces, while the other order could miss one between the two
        self._stop_if_asked()
        self._start_watching()  # a large tree takes a while (one inotify watch per folder)
        self._stop_if_asked()
        self._catch_up()
        self._schedule_jobs()
        for hook in list(self.startup_hooks):
            try:
                hook(self)
            except Exception:  # noqa: BLE001
                log.exception("start-up hook %r failed", hook)
        self.state = "ready"
        self._heartbeat()
        self.notifier.ready(self.status_text())
        log.info("keepers %s ready: watching %d folder(s), %d photo(s) queued", __version__,
                 len(self.watcher.watched if self.watcher else ()), self.pipeline.queue_depth())
        if self.models is not None:
            # only now: importing TensorFlow or torch on the loader thread holds the GIL for
            # seconds and would hold READY back (start-up measured 1.2-1.3x slower with them)
            self.models.start()

    def _stop_if_asked(self) -> None:
        """SIGTERM during start-up: stop between its steps instead of finishing them first."""
        if self.stop_event.is_set():
            raise _Stopped()

    def _start_models(self) -> None:
        try:
            from ..hub import ModelHub
            from ..scoring.preload import ModelManager
        except ImportError as exc:  # pragma: no cover - part of the package
            log.warning("learned models are not available in this build (%s); built-in scorers only", exc)
            return
        try:
            self.hub = ModelHub(self.config, self.writer)
        except Exception as exc:  # noqa: BLE001 - a broken catalog must not stop the built-in scorers
            log.error("the model catalog could not be read (%s); scoring with the built-in scorers only", exc)
            return

        def strict_failure(summary: list[Any]) -> None:
            failed = "; ".join(o.describe() for o in summary if o.state not in ("ready", "disabled"))
            log.error("models.strict is set and not every enabled model loaded (%s); stopping", failed)
            self.request_stop(3)

        self.models = ModelManager(self.config, self.hub, self.writer, add_scorer=self.pipeline.add_scorer,
                                   scheduler=self.scheduler, on_strict_failure=strict_failure)  # started after READY
        self.register_command("retry-model", self._retry_model)

    def _start_album(self) -> None:
        """Wire the album in: its periodic job, commands, new-photo trigger and catch-up selection."""
        try:
            from ..album.service_hooks import install

            self.album = install(self.writer, self.config, register_command=self.register_command,
                                 on_committed=self.pipeline.on_committed, scheduler=self.scheduler,
                                 caught_up_hooks=self.caught_up_hooks, comparator=self._comparator)
        except Exception as exc:
            raise StartupError(f"the album could not be wired into the daemon ({type(exc).__name__}: {exc}); "
                               "nothing would be picked, so keepers does not start; see the log above") from exc

    def _comparator(self) -> Any:
        """The ready pairwise comparator, or None (no model manager, or none ready)."""
        return self.models.comparator() if self.models is not None else None

    def _retry_model(self, arg: str | None) -> dict[str, Any]:
        futures = self.models.retry(arg or None)
        return {"retrying": len(futures)}

    def _catch_up(self) -> None:
        """The catch-up scan runs in the background: READY does not wait for a large backlog
        to be queued (the queue is bounded, so queuing 10 000 photos means scoring most of them)."""

        def run() -> None:
            try:
                summary = self.scan(None, "start-up catch-up scan")
            except _Stopped:
                return
            except Exception:  # noqa: BLE001 - the reconciliation scan tries again
                log.exception("the catch-up scan failed; the reconciliation scan will try again")
                return
            log.info("catch-up scan: found %d, new %d, changed %d, unchanged %d, deleted %d",
                     summary.found, summary.new, summary.changed, summary.unchanged, summary.deleted)
            try:
                rescore_outdated(self.writer, self.pipeline, self.stop_event)
            except Exception:  # noqa: BLE001 - the next start tries again; scoring goes on
                log.exception("could not queue the photos scored by older scorer versions")
            if self.caught_up_hooks:
                # on a thread of its own: the scan thread stays free for the rescans queued behind it
                threading.Thread(target=self._after_catch_up, args=(summary,), name="caught-up", daemon=True).start()

        self._scans.submit(run)

    def _after_catch_up(self, summary: Any) -> None:
        """Wait (while the daemon runs) until the backlog has settled and is committed, then tell the hooks."""
        while not self.stop_event.is_set():
            settler = self.settler
            if (settler is None or settler.wait_idle(2.0)) and self.pipeline.drain(2.0) \
                    and (settler is None or settler.pending() == 0):
                break
        else:
            return
        for hook in list(self.caught_up_hooks):
            try:
                hook(summary)
            except Exception:  # noqa: BLE001 - a part's bug must not stop the daemon
                log.exception("catch-up hook %r failed", hook)

    def _start_watching(self) -> None:
        matcher = Matcher(self.config)
        roots = [Path(f.path) for f in self.config.photos]
        router = EventRouter(roots, matcher, self.settler, self.writer, self._scan_folder_soon)
        self.watcher = FolderWatcher(self.config.photos, self.config.watch_mode, router, self.request_rescan)
        watched = self.watcher.start()
        self.health.add("folder watcher", lambda: self.watcher.health() if self.watcher is not None else None)
        limit = inotify_limit()
        needed = sum(w.directories for w in watched)
        if limit is not None and needed > limit * 0.9:
            log.warning("watching %d folders holds about %d inotify watches of fs.inotify.max_user_watches %d; "
                        "a folder added later may not fit and would be polled: %s",
                        len(watched), needed, limit, RAISE_WATCHES_HINT)
        if self._overflow is not None:
            detach_overflow_listener(self._overflow)
        self._overflow = attach_overflow_listener(self.watcher.rescan_event_roots)

    def _schedule_jobs(self) -> None:
        self.health.watch_scheduler(self.scheduler)
        self.scheduler.add_job(self._scheduler_beat, "interval", seconds=SCHEDULER_BEAT_SECONDS, id="beat",
                               replace_existing=True, coalesce=True, max_instances=1)
        # a loop of its own, not an interval job: a command that runs longer than the interval (a
        # reselection of a large library) made APScheduler log "maximum number of running instances
        # reached" into the dashboard's Activity on every such action
        commands = threading.Thread(target=self._command_loop, name="commands", daemon=True)
        commands.start()
        self.health.add("command loop", lambda: None if commands.is_alive() or self.stop_event.is_set()
                        else "the command loop's thread died (see the error logged before this)")
        if self.config.rescan_minutes > 0:
            self.scheduler.add_job(lambda: self.request_rescan(None, "reconciliation"), "interval",
                                   minutes=self.config.rescan_minutes, id=RESCAN_JOB_ID, replace_existing=True,
                                   coalesce=True, max_instances=1)
        self.notifier.watchdog()

    # -- scanning -------------------------------------------------------------------------

    def scan(self, roots: list[Path] | None, reason: str) -> Any:
        """Walk ``roots`` (default every folder) into the settler; photos moved while unseen keep their rows."""
        roots = roots or [Path(f.path) for f in self.config.photos]
        with self._scan_lock:
            log.debug("scanning %s (%s)", ", ".join(map(str, roots)), reason)
            return scan_folders(self.config, self.writer, _ScanTarget(self.settler, self.stop_event), roots=roots)  # type: ignore[arg-type]

    def request_rescan(self, root: Path | None, reason: str = "requested") -> Any:
        if self.stop_event.is_set():
            return None
        return self._scans.submit(self._scan_quietly, [root] if root else None, reason)

    def _scan_quietly(self, roots: list[Path] | None, reason: str) -> None:
        try:
            self.scan(roots, reason)
        except _Stopped:
            return
        except Exception:  # noqa: BLE001 - the next reconciliation scan tries again
            log.exception("rescan (%s) failed", reason)

    def _scan_folder_soon(self, folder: Path, root: Path) -> None:
        """A folder created or moved in: its photos settle like new files."""
        matcher = Matcher(self.config)

        def walk_it() -> None:
            from ..scoring.scan import walk

            for found in walk(folder, matcher):
                if found.stat is not None and matcher.wanted(found.path, root):
                    self.settler.touch(found.path, root)

        if not self.stop_event.is_set():
            self._scans.submit(walk_it)

    def _rescan_command(self, arg: str | None) -> "Future[dict[str, Any]]":
        """Queue the rescan on the scan thread; the command closes when it ends (the command
        job goes on with the next commands meanwhile)."""
        roots = [Path(arg)] if arg else None

        def rescan() -> dict[str, Any]:
            summary = self.scan(roots, "rescan command")
            return {"found": summary.found, "new": summary.new, "changed": summary.changed, "deleted": summary.deleted}

        return self._scans.submit(rescan)

    # -- periodic jobs --------------------------------------------------------------------

    def status_text(self) -> str:
        """One line for systemd's STATUS and the dashboard: "not healthy: <why>" once a part
        died, "waiting: <why>" while the database cannot be written, else the counts."""
        depth = self.pipeline.queue_depth() if self.pipeline else 0
        waiting = self.settler.pending() if self.settler else 0
        scored = self.pipeline.scored_total if self.pipeline else 0
        if self.unhealthy:
            return f"not healthy: {self.unhealthy}"
        storage = self.writer.waiting_for_storage if self.writer is not None else None
        if storage:
            return f"waiting: {storage}; {depth} photo(s) held until it can be written, nothing is lost"
        # "since start": beside the library's count on the dashboard, a bare "0 scored" read as "none"
        return (f"{self.state}: {scored} scored since start, {depth} queued, {waiting} settling, "
                f"{self.photos_per_minute():.0f} photos/min")

    def photos_per_minute(self) -> float:
        if self.pipeline is None:
            return 0.0
        now = time.monotonic()
        self._rate.append((now, self.pipeline.scored_total))
        while len(self._rate) > 2 and now - self._rate[0][0] > 60:
            self._rate.popleft()
        (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
        return (n1 - n0) * 60.0 / (t1 - t0) if t1 - t0 > 0.5 else 0.0

    def _heartbeat(self) -> None:
        watched = self.watcher.watched.values() if self.watcher else ()
        row = {
            "id": 1, "pid": os.getpid(), "version": __version__, "state": self.state, "started": self.started,
            "heartbeat": time.time(), "queue_depth": (self.pipeline.queue_depth() if self.pipeline else 0)
            + (self.settler.pending() if self.settler else 0),
            "photos_per_min": self.photos_per_minute(),
            "watched_folders": json.dumps([{"path": str(w.path), "mode": w.mode, "why": w.why, "directories": w.directories,
                                            "over_limit": w.over_limit} for w in watched]),
            "inotify_watches": sum(w.directories for w in watched), "inotify_limit": inotify_limit(),
            "status_text": self.status_text(),
        }
        if self._beat_future is not None and not self._beat_future.done():
            return  # the last one has not committed yet (the writer waits for its disk)
        try:
            self._beat_future = self.writer.submit(lambda db: db["daemon"].upsert(row, pk="id"))
        except Exception as exc:  # noqa: BLE001 - the health check says why the writer cannot
            log.debug("heartbeat not written: %s", exc)

    def _record_waiting(self, db: Any, reason: str) -> None:
        """The writer waits for its disk: say so in the heartbeat row, if that small write fits."""
        db.conn.execute("UPDATE daemon SET heartbeat = ?, status_text = ? WHERE id = 1", (time.time(), self.status_text()))

    def _scheduler_beat(self) -> None:
        """A scheduler job: proves the scheduler runs jobs, and restarts watchers that died."""
        self.health.scheduler_beat()
        if self.watcher is not None:
            self.watcher.check()

    def tick(self) -> None:
        """From the main loop: ask every part whether it lives and moves; when all do, ping
        systemd's watchdog and write the heartbeat (every HEARTBEAT_SECONDS, or the watchdog's
        interval when shorter); when one does not, log why and stop with EXIT_UNHEALTHY."""
        if self.state != "ready" or self.stop_event.is_set():
            return
        why = self.health.problem()
        if why:
            self.fail(why)
            return
        now = time.monotonic()
        if now - self._last_beat < min(HEARTBEAT_SECONDS, watchdog_interval() or HEARTBEAT_SECONDS):
            return
        self._last_beat = now
        self.notifier.watchdog()
        self._heartbeat()
        self.notifier.status(self.status_text())

    def _command_loop(self) -> None:
        while not self.stop_event.wait(COMMAND_POLL_SECONDS):
            if self.writer.waiting_for_storage:
                continue  # taking a command is a write too; the commands wait in their table
            self._poll_commands()

    def fail(self, why: str) -> None:
        """A part died or wedged: log it, say it in the heartbeat and to systemd, and stop non-zero
        (systemd restarts the daemon; the next start's catch-up scan scores what was missed)."""
        self.unhealthy = why
        self.state = "failed"
        log.error("not healthy: %s; keepers exits so that systemd restarts it (the next start's "
                  "catch-up scan scores what was missed)", why)
        self.notifier.status(self.status_text())
        self._heartbeat()
        self.request_stop(EXIT_UNHEALTHY)

    def _poll_commands(self) -> None:
        try:
            poll_commands(self.writer, self.commands)
        except Exception:  # noqa: BLE001 - tried again next second
            log.exception("reading the commands table failed")

    # -- reload and stop ------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask the main loop to re-read the config (from a signal handler: no work here)."""
        self._reload.set()

    def reload(self) -> None:
        """Re-read the config: folders, ignore patterns, settle window and rescan interval take
        effect now; workers, models and the database path need a restart."""
        from ..cli.common import config_from_args

        try:
            new = config_from_args(self.args, check_folders=False) if self.args is not None else self.config
        except Exception as exc:  # noqa: BLE001 - keep running on the old config
            log.error("reloading the config failed (%s); still running with the previous one", exc)
            return
        self.config = new
        if self.settler is not None:
            self.settler.settle_seconds = new.settle_seconds
        if self.watcher is not None:
            self.watcher.stop()
        self._start_watching()
        if new.rescan_minutes > 0:
            self.scheduler.add_job(lambda: self.request_rescan(None, "reconciliation"), "interval",
                                   minutes=new.rescan_minutes, id=RESCAN_JOB_ID, replace_existing=True,
                                   coalesce=True, max_instances=1)
        self.request_rescan(None, "config reloaded")
        log.info("config reloaded from %s", new.source_file or "the defaults")

    def shutdown(self) -> None:
        self.stop_event.set()
        if self.state != "failed":
            self.state = "stopping"
        self.notifier.stopping(f"stopping: {self.pipeline.queue_depth() if self.pipeline else 0} queued")
        deadline = time.monotonic() + DRAIN_SECONDS
        if self.watcher is not None:
            self.watcher.stop()
        if self._overflow is not None:
            detach_overflow_listener(self._overflow)
        self._scans.shutdown(wait=False, cancel_futures=True)
        left = self.settler.stop() if self.settler else 0
        if left:
            log.info("stopping: %d file(s) still settling; the next start's catch-up scan scores them", left)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.models is not None:
            threading.Thread(target=self.models.stop, name="models-stop", daemon=True).start()
        if self.pipeline is not None:
            # a daemon that failed does not wait for a writer that may never commit again
            self.pipeline.stop(drain=self.unhealthy is None, timeout=max(0.5, deadline - time.monotonic()))
        if self.writer is not None:
            if self.state != "failed":
                self.state = "stopped"
            self._beat_future = None
            self._heartbeat()
            if self._log_handler is not None:
                logging.getLogger().removeHandler(self._log_handler)
            self.writer.close(timeout=3.0)
        self.notifier.close()


def serve(config: Config, args: argparse.Namespace | None = None) -> int:
    """Run the daemon in the foreground until SIGTERM/SIGINT; returns the exit code."""
    service = Service(config, args)
    previous = {}

    def on_stop(signum: int, _frame: Any) -> None:
        log.info("%s received; stopping", signal.Signals(signum).name)
        service.request_stop(0)

    def on_hup(_signum: int, _frame: Any) -> None:
        service.request_reload()

    for sig, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup)):
        previous[sig] = signal.signal(sig, handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack to the log
    try:
        try:
            service.start()
        except _Stopped:
            log.info("stopped during start-up")
            return service.exit_code
        while not service.stop_event.wait(0.5):
            if service._reload.is_set():
                service._reload.clear()
                service.reload()
            service.tick()
    finally:
        service.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return service.exit_code
