"""Wiring the album into the daemon: the periodic job, the after-N-new-photos
trigger, the selection after the start-up scan, and the ``reselect`` / ``pin`` /
``unpin`` / ``reject`` commands.

The daemon's service calls :func:`install` with each part it wires in, by
name; the album never looks the service's parts up. A handler registered for a
command gets its ``arg`` and returns a JSON-ready result (stored in
``commands.result``) or raises (``commands.error``).
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
#: the commands the album handles
COMMANDS = ("reselect", "pin", "unpin", "reject")


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


def install(writer: StoreWriter, config: Config, *, register_command: Callable[[str, Callable[[str | None], Any]], None],
            on_committed: Callable[[Callable[[Any], None]], None], scheduler: Any = None,
            caught_up_hooks: list[Callable[[Any], None]] | None = None,
            comparator: Callable[[], Comparator | None] = lambda: None) -> AlbumHooks:
    """Wire the album into the daemon and return its hooks: the periodic job on ``scheduler``
    (an APScheduler scheduler; None: no periodic job), the ``reselect``/``pin``/``unpin``/``reject``
    handlers through ``register_command``, the new-photo count through ``on_committed`` (the
    pipeline's), and the selection after the start-up scan through ``caught_up_hooks``.
    Whatever fails here raises: the daemon treats it as a start-up failure."""
    hooks = AlbumHooks(writer, config, comparator)
    if scheduler is not None and config.album.reselect_minutes > 0:
        scheduler.add_job(
            hooks.scheduled, "interval", minutes=config.album.reselect_minutes, id=JOB_ID,
            replace_existing=True, max_instances=1, coalesce=True,
        )
    for kind in COMMANDS:
        register_command(kind, lambda arg, kind=kind: hooks.handle(kind, arg))
    if caught_up_hooks is not None:
        caught_up_hooks.append(hooks.after_catch_up)
    on_committed(hooks.on_committed)
    return hooks
