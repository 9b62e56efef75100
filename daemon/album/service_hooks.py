"""Wiring the album into the daemon: the periodic job, the after-N-new-photos
trigger, and the ``reselect`` / ``pin`` / ``unpin`` / ``reject`` commands.

``install(service)`` expects of the service (and logs what it cannot find):

- ``service.config`` (Config) and ``service.writer`` (a started StoreWriter);
- ``service.scheduler``: an APScheduler scheduler (``add_job``);
- ``service.register_command(kind, handler)``: ``handler(arg)`` returns a
  JSON-ready result (stored in ``commands.result``) or raises (``commands.error``);
- ``service.pipeline.on_committed(callback)``: ``callback(photos)`` after each
  committed batch, where ``photos`` is the number (or a list) of newly scored photos;
- optionally ``service.models.comparator()``: the ready comparator or None;
- optionally ``service.caught_up_hooks``: ``hook(summary)`` once the start-up
  catch-up scan's photos are committed (the album is picked then, not only after
  ``reselect_minutes`` or ``reselect_after_new`` photos).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ..config import Config
from ..store.writer import StoreWriter
from .choose import Comparator
from .manual import set_choice
from .selection import run_selection

log = logging.getLogger(__name__)

JOB_ID = "album-reselect"


class AlbumHooks:
    """Runs selections for the daemon, one at a time, and counts new photos."""

    def __init__(self, writer: StoreWriter, config: Config, comparator: Callable[[], Comparator | None] = lambda: None):
        self.writer = writer
        self.config = config
        self.comparator = comparator
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.new_since_run = 0
        self.runs = 0

    def reselect(self, trigger: str, *, full: bool = False) -> dict[str, Any]:
        """Run one selection now (waiting for one already running); returns its summary."""
        with self._lock:
            with self._count_lock:
                self.new_since_run = 0
            result = run_selection(self.writer, self.config, comparator=self.comparator(), trigger=trigger, full=full)
            self.runs += 1
            return result.as_dict()

    def scheduled(self) -> None:
        try:
            self.reselect("schedule")
        except Exception:
            log.exception("scheduled album selection failed; it runs again in %s minutes", self.config.album.reselect_minutes)

    def on_committed(self, photos: Any) -> None:
        """Count newly scored photos; past ``reselect_after_new``, re-pick on a background thread."""
        count = len(photos) if hasattr(photos, "__len__") else int(photos or 0)
        with self._count_lock:
            self.new_since_run += count
            due = self.config.album.reselect_after_new > 0 and self.new_since_run >= self.config.album.reselect_after_new
            if due:
                self.new_since_run = 0
        if due:
            threading.Thread(target=self._run_new_photos, name="album-new-photos", daemon=True).start()

    def after_catch_up(self, summary: Any) -> None:
        """The start-up backlog is scored: pick now, so a library that was scored while
        the daemon was down, or a first run on a small folder, has its album at once.
        Not when both automatic triggers are off: that user re-picks on command only."""
        album = self.config.album
        if album.reselect_minutes <= 0 and album.reselect_after_new <= 0:
            return
        try:
            self.reselect("start-up")
        except Exception:
            log.exception("album selection after the start-up scan failed; the next scheduled run retries")

    def _run_new_photos(self) -> None:
        try:
            self.reselect("new-photos")
        except Exception:
            log.exception("album selection after new photos failed; the next scheduled run retries")

    def handle(self, kind: str, arg: str | None) -> dict[str, Any]:
        """A command from the ``commands`` table: reselect [full], pin/unpin/reject PATH."""
        if kind == "reselect":
            return self.reselect("command", full=(arg == "full"))
        if kind in ("pin", "unpin", "reject"):
            if not arg:
                raise ValueError(f"{kind} needs the photo's path or id as its argument")
            image_id = self.writer.call(lambda db: set_choice(db, arg, kind, origin="dashboard"))  # type: ignore[arg-type]
            summary = self.reselect("command")
            return {"image_id": image_id, "choice": kind, "run": summary}
        raise ValueError(f"the album does not handle command {kind!r}")


def install(service: Any) -> AlbumHooks:
    """Add the album's job, trigger and command handlers to ``service``; returns the hooks."""
    models = getattr(service, "models", None)

    def comparator() -> Comparator | None:
        getter = getattr(models, "comparator", None)
        return getter() if callable(getter) else None

    hooks = AlbumHooks(service.writer, service.config, comparator)
    scheduler = getattr(service, "scheduler", None)
    if scheduler is not None and service.config.album.reselect_minutes > 0:
        scheduler.add_job(
            hooks.scheduled, "interval", minutes=service.config.album.reselect_minutes, id=JOB_ID,
            replace_existing=True, max_instances=1, coalesce=True,
        )
    else:
        log.warning("album: no scheduler on the service (or reselect_minutes is 0); no periodic selection")
    register = getattr(service, "register_command", None)
    if callable(register):
        for kind in ("reselect", "pin", "unpin", "reject"):
            register(kind, lambda arg, kind=kind: hooks.handle(kind, arg))
    else:
        log.warning("album: the service has no register_command; reselect/pin/unpin/reject commands are not handled")
    caught_up = getattr(service, "caught_up_hooks", None)
    if isinstance(caught_up, list):
        caught_up.append(hooks.after_catch_up)
    pipeline = getattr(service, "pipeline", None)
    on_committed = getattr(pipeline, "on_committed", None)
    if callable(on_committed):
        on_committed(hooks.on_committed)
    else:
        log.warning("album: the pipeline has no on_committed; no selection after new photos")
    return hooks
