"""Watching the photo folders: watchdog observers, one per folder, feeding the settler.

Events map to store changes like this:

- created / modified / closed-after-write on a photo: the settler holds it until complete;
- a file renamed or moved inside the tree: its row takes the new path (no rescoring);
  renamed from an ignored temp name (atomic save, rsync): the final path is scored once;
- deleted, or moved out / to an ignored name: the row is marked deleted;
- a folder moved inside the tree: every row under it takes the new path;
- a folder created or moved in: it is walked and its photos settle like new files;
- a folder deleted: every row under it is marked deleted.

An observer that dies, or a kernel event queue overflow, triggers a rescan of
the affected folder (``on_rescan``), so no change is lost.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from watchdog.events import (
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent, FileDeletedEvent,
    FileModifiedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler,
)

from ..scoring.record import mark_deleted
from .mounts import RAISE_WATCHES_HINT, choose_mode, count_directories, inotify_limit, inotify_watches_held, read_mounts
from .moves import mark_folder_deleted, move_folder, move_path
from .settle import Settler

if TYPE_CHECKING:
    from ..config import Config, PhotoFolder
    from ..scoring.scan import Matcher
    from ..store.writer import StoreWriter

log = logging.getLogger(__name__)

#: a folder without a live observer for longer than this makes the daemon unhealthy
WATCHER_GRACE_SECONDS = 60.0
WATCHED_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent,
                  DirCreatedEvent, DirMovedEvent, DirDeletedEvent]


#: how often a folder polled because inotify has no watches left for it is walked
#: (a pass stats every file, so not every few seconds as for a small network share)
OVER_LIMIT_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class WatchedFolder:
    path: Path
    mode: str  # events or polling
    why: str
    directories: int  # inotify watches it holds (0 when polled)
    over_limit: bool = False  # polled because fs.inotify.max_user_watches has no room for it


class EventRouter(FileSystemEventHandler):
    """Turns watchdog events under the watched roots into settle, move and delete steps."""

    def __init__(self, roots: Sequence[Path], matcher: "Matcher", settler: Settler, writer: "StoreWriter",
                 scan_folder: Callable[[Path, Path], None]):
        self.roots = sorted((Path(r) for r in roots), key=lambda p: len(str(p)), reverse=True)
        self.matcher = matcher
        self.settler = settler
        self.writer = writer
        self.scan_folder = scan_folder
        self.events = 0

    def root_of(self, path: Path) -> Path | None:
        text = str(path)
        for root in self.roots:
            if text == str(root) or text.startswith(str(root).rstrip(os.sep) + os.sep):
                return root
        return None

    def _file_wanted(self, path: Path) -> Path | None:
        root = self.root_of(path)
        return root if root is not None and self.matcher.wanted(path, root) else None

    def _dir_wanted(self, path: Path) -> Path | None:
        root = self.root_of(path)
        if root is None or path == root:
            return None
        parts = path.relative_to(root).parts
        if any(self.matcher.ignored(p) for p in parts):
            return None
        if any(str(path) == e or str(path).startswith(e + os.sep) for e in self.matcher.excluded):
            return None
        return root

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events += 1
        try:
            self._route(event)
        except Exception:  # noqa: BLE001 - one odd event must not stop the observer
            log.exception("could not handle %s", event)

    def _route(self, event: FileSystemEvent) -> None:
        src = Path(os.fsdecode(event.src_path))
        if isinstance(event, (FileCreatedEvent, FileModifiedEvent, FileClosedEvent)):
            root = self._file_wanted(src)
            if root is not None:
                self.settler.touch(src, root, closed=isinstance(event, FileClosedEvent))
        elif isinstance(event, FileMovedEvent):
            self._moved_file(src, Path(os.fsdecode(event.dest_path)))
        elif isinstance(event, FileDeletedEvent):
            self.settler.forget(src)
            if self._file_wanted(src) is not None:
                self.writer.submit(lambda db: mark_deleted(db, [src]))
        elif isinstance(event, DirMovedEvent):
            self._moved_folder(src, Path(os.fsdecode(event.dest_path)))
        elif isinstance(event, DirCreatedEvent):
            root = self._dir_wanted(src)
            if root is not None:
                self.scan_folder(src, root)
        elif isinstance(event, DirDeletedEvent):
            self.settler.forget_under(src)
            if self._dir_wanted(src) is not None:
                self.writer.submit(lambda db: mark_folder_deleted(db, src))

    def _moved_file(self, src: Path, dest: Path) -> None:
        self.settler.forget(src)
        src_root, dest_root = self._file_wanted(src), self._file_wanted(dest)
        if dest_root is None:
            if src_root is not None:  # moved out of the tree, or to an ignored name
                self.writer.submit(lambda db: mark_deleted(db, [src]))
            return
        if src_root is None:  # atomic save / rsync: a temp file renamed to its final name
            self.settler.touch(dest, dest_root, closed=True)
            return
        future = self.writer.submit(lambda db: move_path(db, src, dest, dest_root))
        # after the move commits: a dest with no row yet (src was never scored) settles like a new file
        future.add_done_callback(lambda f: self.settler.touch(dest, dest_root, closed=True))

    def _moved_folder(self, src: Path, dest: Path) -> None:
        self.settler.forget_under(src)
        src_root, dest_root = self._dir_wanted(src), self._dir_wanted(dest)
        if dest_root is None:
            if src_root is not None:
                self.writer.submit(lambda db: mark_folder_deleted(db, src))
            return
        if src_root is None:
            self.scan_folder(dest, dest_root)
            return
        future = self.writer.submit(lambda db: move_folder(db, src, dest, dest_root))
        future.add_done_callback(lambda f: self.scan_folder(dest, dest_root))


class FolderWatcher:
    """One watchdog observer per photo folder (inotify, or polling on network shares).

    A folder whose tree needs more inotify watches than fs.inotify.max_user_watches
    has left (after the folders started before it), or that the kernel refuses a
    watch for, is polled instead of left unwatched, and says why."""

    def __init__(self, folders: Sequence["PhotoFolder"], default_mode: str, router: EventRouter,
                 on_rescan: Callable[[Path, str], None], *, polling_seconds: float = 5.0,
                 over_limit_polling_seconds: float = OVER_LIMIT_POLL_SECONDS):
        self.folders = list(folders)
        self.default_mode = default_mode
        self.router = router
        self.on_rescan = on_rescan
        self.polling_seconds = polling_seconds
        self.over_limit_polling_seconds = over_limit_polling_seconds
        self._observers: dict[Path, Any] = {}
        self._unwatched_since: dict[Path, float] = {}  # folder -> monotonic time health() found it unwatched
        self.watched: dict[Path, WatchedFolder] = {}
        self._lock = threading.Lock()

    def start(self) -> list[WatchedFolder]:
        mounts = read_mounts()
        for folder in self.folders:
            self._start_one(Path(folder.path), folder.watch_mode if folder.watch_mode != "auto" else self.default_mode, mounts)
        return list(self.watched.values())

    def _start_one(self, path: Path, mode: str, mounts: list[Any]) -> None:
        if not path.is_dir():
            log.warning("photo folder %s is missing (unmounted?); watching starts when it appears", path)
            return
        chosen, why = choose_mode(path, mode, mounts)
        dirs = 0
        over_limit = False
        if chosen == "events":
            dirs = count_directories(path, self.router.matcher.ignored)
            limit = inotify_limit()
            with self._lock:
                used = sum(w.directories for p, w in self.watched.items() if p != path)
            if limit is not None and used + dirs > limit:
                chosen, over_limit = "polling", True
                why = (f"needs {dirs} inotify watches but only {max(0, limit - used)} of fs.inotify.max_user_watches "
                       f"{limit} are left")
        held = inotify_watches_held() if chosen == "events" and not self._overlaps(path) else None
        try:
            observer = self._observer(path, chosen, over_limit)
        except OSError as exc:
            if chosen != "events" or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            # other programs hold watches too: the kernel ran out before our count did
            chosen, over_limit = "polling", True
            why = f"the kernel refused an inotify watch ({exc.strerror or exc})"
            observer = self._observer(path, chosen, over_limit)
        else:
            refused = self._watches_refused(dirs, held)
            if refused:
                self._stop_observer(observer)
                chosen, over_limit = "polling", True
                why = (f"the kernel refused an inotify watch for {refused} of its {dirs} folders "
                       "(No space left on device: other programs hold the rest of the limit)")
                observer = self._observer(path, chosen, over_limit)
        if over_limit:
            dirs = 0
            log.warning("cannot watch %s with inotify: %s; polling it every %.0f s instead, so changes show up late: %s",
                        path, why, self.over_limit_polling_seconds, RAISE_WATCHES_HINT)
        with self._lock:
            self._observers[path] = observer
            self.watched[path] = WatchedFolder(path, chosen, why, dirs, over_limit)
        log.info("watching %s (%s: %s)", path, chosen, why)

    def _overlaps(self, path: Path) -> bool:
        """Whether another folder watched with events is inside ``path`` or holds it (their watches are shared)."""
        with self._lock:
            others = [p for p, w in self.watched.items() if p != path and w.mode == "events"]
        return any(path.is_relative_to(p) or p.is_relative_to(path) for p in others)

    @staticmethod
    def _watches_refused(folders: int, held_before: int | None) -> int:
        """How many of ``folders`` the observer that just started holds no inotify watch for
        (``held_before``: the watches held before it started). Its library leaves a subfolder
        the kernel refuses a watch (ENOSPC) unwatched without a word, only the root's refusal
        raises, so the watches are counted. 0 when all are held, or the count is unknown."""
        held = inotify_watches_held() if held_before is not None else None
        if held is None or held_before is None:
            return 0
        return max(0, folders - (held - held_before))  # it also watches ignored folders: never too many refused

    def _observer(self, path: Path, mode: str, over_limit: bool) -> Any:
        """A started observer of ``path``; raises OSError when inotify refuses it."""
        if mode == "polling":
            from watchdog.observers.polling import PollingObserver

            observer: Any = PollingObserver(timeout=self.over_limit_polling_seconds if over_limit else self.polling_seconds)
        else:
            from watchdog.observers import Observer

            observer = Observer()
        observer.name = f"watch-{path.name or 'root'}"
        observer.schedule(self.router, str(path), recursive=True, event_filter=WATCHED_EVENTS)
        observer.daemon = True
        try:
            observer.start()
        except BaseException:
            self._stop_observer(observer)
            raise
        return observer

    def check(self) -> list[Path]:
        """Restart observers that died and start those whose folder came back; returns the
        folders restarted (each gets a rescan through ``on_rescan``)."""
        restarted = []
        mounts: list[Any] | None = None
        for folder in self.folders:
            path = Path(folder.path)
            with self._lock:
                observer = self._observers.get(path)
            alive = observer is not None and observer.is_alive() and all(e.is_alive() for e in list(observer.emitters))
            if alive or not path.is_dir():
                continue
            if observer is not None:
                log.warning("the watcher of %s stopped; restarting it and rescanning the folder", path)
                self._stop_observer(observer)
            mounts = read_mounts() if mounts is None else mounts
            try:
                self._start_one(path, folder.watch_mode if folder.watch_mode != "auto" else self.default_mode, mounts)
            except OSError as exc:
                log.warning("cannot watch %s: %s; retrying shortly", path, exc)
                continue
            restarted.append(path)
            self.on_rescan(path, "watcher restarted")
        return restarted

    def health(self) -> str | None:
        """None while every folder that exists has a live observer, or lost it less than
        :data:`WATCHER_GRACE_SECONDS` ago (:meth:`check` restarts it); else which is unwatched."""
        now = time.monotonic()
        for folder in self.folders:
            path = Path(folder.path)
            with self._lock:
                observer = self._observers.get(path)
            if (observer is not None and observer.is_alive()) or not path.is_dir():
                self._unwatched_since.pop(path, None)
                continue
            since = self._unwatched_since.setdefault(path, now)
            if now - since > WATCHER_GRACE_SECONDS:
                return f"the folder {path} has not been watched for {now - since:.0f} s (its watcher died and could not be restarted)"
        return None

    def rescan_event_roots(self, reason: str) -> None:
        for path, watched in list(self.watched.items()):
            if watched.mode == "events":
                self.on_rescan(path, reason)

    @staticmethod
    def _stop_observer(observer: Any) -> None:
        try:
            observer.stop()
            observer.join(2.0)
        except Exception:  # noqa: BLE001 - a dead observer may complain while stopping
            log.debug("stopping an observer failed", exc_info=True)

    def stop(self) -> None:
        with self._lock:
            observers = list(self._observers.values())
            self._observers.clear()
        for observer in observers:
            self._stop_observer(observer)


class OverflowListener(logging.Handler):
    """watchdog reports an inotify queue overflow only in its log; turn that into a rescan."""

    def __init__(self, callback: Callable[[str], None]):
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.callback("the kernel's event queue overflowed")


def attach_overflow_listener(callback: Callable[[str], None]) -> OverflowListener:
    listener = OverflowListener(callback)
    for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
        logging.getLogger(name).addHandler(listener)
    return listener


def detach_overflow_listener(listener: OverflowListener) -> None:
    for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
        logging.getLogger(name).removeHandler(listener)


def watch_summary(config: "Config") -> list[dict[str, Any]]:
    """For doctor: each folder's watch mode and directory count, without starting anything."""
    mounts = read_mounts()
    from ..scoring.scan import Matcher

    matcher = Matcher(config)
    limit = inotify_limit()
    used = 0
    out = []
    for folder in config.photos:
        mode = folder.watch_mode if folder.watch_mode != "auto" else config.watch_mode
        chosen, why = choose_mode(folder.path, mode, mounts)
        dirs = count_directories(folder.path, matcher.ignored) if folder.path.is_dir() and chosen == "events" else 0
        over = limit is not None and chosen == "events" and used + dirs > limit  # as FolderWatcher decides it
        used += 0 if over else dirs
        out.append({"path": str(folder.path), "mode": "polling" if over else chosen, "why": why, "directories": dirs,
                    "over_limit": over})
    return out
