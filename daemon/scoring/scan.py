"""The catch-up scan: walk the photo folders, queue what is new or changed,
mark what vanished.

A file is unchanged when its size and mtime (ns) match its row; then nothing
is done. A row whose file is gone is marked ``deleted`` (never dropped). A root
that is missing, or empty while the database remembers photos in it, is
treated as unmounted: nothing under it is marked deleted.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..imaging.hashing import PHASH_VERSION
from ..store.db import open_db
from ..store.schema import IMAGE_STATUSES
from .base import outputs
from .record import FileStat, mark_deleted, path_key, record_error

if TYPE_CHECKING:
    from ..config import Config
    from ..store.writer import StoreWriter
    from .pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanSummary:
    found: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    errors: int = 0
    seconds: float = 0.0
    skipped_roots: tuple[str, ...] = field(default=())

    @property
    def queued(self) -> int:
        return self.new + self.changed

    def __add__(self, other: "ScanSummary") -> "ScanSummary":
        return ScanSummary(
            self.found + other.found, self.new + other.new, self.changed + other.changed,
            self.unchanged + other.unchanged, self.deleted + other.deleted, self.errors + other.errors,
            self.seconds + other.seconds, self.skipped_roots + other.skipped_roots,
        )


@dataclass(frozen=True)
class Found:
    """A candidate file: its path and stat, or why it cannot be read."""

    path: Path
    stat: FileStat | None
    problem: str | None = None


class Matcher:
    """Which names to look at: included extensions, ignore patterns per path component."""

    def __init__(self, config: "Config"):
        self.extensions = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in config.include_extensions)
        self.patterns = tuple(config.ignore_patterns)
        export = config.export.folder
        self.excluded = {str(Path(export).expanduser().resolve())} if export else set()

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def included(self, name: str) -> bool:
        return os.path.splitext(name)[1].lower() in self.extensions and not self.ignored(name)

    def wanted(self, path: Path, root: Path) -> bool:
        """Whether a path under ``root`` is a photo keepers should look at (used by the watcher too)."""
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            return False
        if any(self.ignored(p) for p in parts[:-1]) or not parts:
            return False
        if any(str(path).startswith(e + os.sep) or str(path) == e for e in self.excluded):
            return False
        return self.included(parts[-1])


def walk(root: Path, matcher: Matcher) -> Iterator[Found]:
    """Every included file under ``root``: symlinked folders are followed once
    (a loop is never entered twice), unreadable folders are logged and skipped."""
    seen_dirs: set[tuple[int, int]] = set()
    try:
        st = os.stat(root)
        seen_dirs.add((st.st_dev, st.st_ino))
    except OSError:
        return
    stack = [root]
    while stack:
        folder = stack.pop()
        if str(folder) in matcher.excluded:
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot list %s: %s; its photos are skipped this time", path_key(folder), exc.strerror or exc)
            continue
        for entry in entries:
            name = entry.name
            if matcher.ignored(name):
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                try:
                    dst = entry.stat()
                except OSError:
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key in seen_dirs:
                    log.debug("skipping %s: folder already walked (a symlink loop or a second link)", path_key(path))
                    continue
                seen_dirs.add(key)
                if os.path.splitext(name)[1].lower() in matcher.extensions:
                    yield Found(path, None, "a folder named like a photo, not a file")
                stack.append(path)
                continue
            if not matcher.included(name):
                continue
            try:
                yield Found(path, FileStat.of(entry.stat()))
            except FileNotFoundError:
                if entry.is_symlink():
                    try:
                        target = os.readlink(path)
                    except OSError:
                        target = "?"
                    yield Found(path, None, f"broken symbolic link (points to {target!r})")
                # else: it vanished between listing and stat; the row (if any) is marked deleted below
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    yield Found(path, None, "symbolic link loop: the link points (eventually) to itself")
                else:
                    yield Found(path, None, f"cannot read: {exc.strerror or exc}")


def _known(conn: sqlite3.Connection, root: Path) -> dict[str, tuple[int | None, int | None, str, str | None]]:
    """Rows under ``root``: path -> (size, mtime_ns, status, error). A million rows make a
    few hundred MB here, so the statuses share one string each and the errors are
    kept only for rows in error."""
    prefix = path_key(root).rstrip("/") + "/"
    rows = conn.execute(
        "SELECT path, size, mtime_ns, status, CASE WHEN status = 'error' THEN error END FROM images WHERE path >= ? AND path < ?",
        (prefix, prefix[:-1] + chr(ord("/") + 1)),
    )
    statuses = {s: s for s in IMAGE_STATUSES}
    return {p: (s, m, statuses.get(st, st), e) for p, s, m, st, e in rows}


def scan_folders(
    config: "Config",
    writer: "StoreWriter",
    pipeline: "Pipeline",
    *,
    roots: Sequence[Path] | None = None,
    progress: bool = False,
    on_found: Callable[[Found], None] | None = None,
) -> ScanSummary:
    """Walk ``roots`` (default: every configured folder), queue new and changed
    photos on ``pipeline``, record unreadable files as errors and mark vanished
    rows deleted. Returns once everything is queued (not yet scored)."""
    matcher = Matcher(config)
    total = ScanSummary()
    folders = list(roots) if roots is not None else [f.path for f in config.photos]
    bar = _progress_bar(progress)
    try:
        for root in folders:
            total = total + _scan_root(Path(root), matcher, writer, pipeline, bar, on_found)
    finally:
        if bar is not None:
            bar.close()
    return total


def _scan_root(root: Path, matcher: Matcher, writer: "StoreWriter", pipeline: "Pipeline", bar: Any,
               on_found: Callable[[Found], None] | None) -> ScanSummary:
    started = time.monotonic()
    root = Path(os.path.abspath(root))
    conn = open_db(writer.path, readonly=True).conn
    try:
        known = _known(conn, root)
    finally:
        conn.close()
    if not root.is_dir():
        log.warning("photo folder %s is missing (unmounted?); nothing in it is marked deleted", root)
        return ScanSummary(skipped_roots=(str(root),), seconds=time.monotonic() - started)
    found = new = changed = unchanged = errors = 0
    for item in walk(root, matcher):
        found += 1
        key = path_key(item.path)
        if bar is not None:
            bar.update(1)
        if on_found is not None:
            on_found(item)
        row = known.pop(key, None)  # what is left in ``known`` at the end was not found
        if item.problem is not None:
            errors += 1
            if row and row[2] == "error" and row[3] == item.problem:
                continue  # already recorded, nothing new to say
            problem = item.problem
            writer.submit(lambda db, p=item.path, why=problem: record_error(db, path=p, root=root, stat=None, reason=why))
            log.warning("cannot score %s: %s", key, problem)
            continue
        stat = item.stat
        assert stat is not None
        if row and stat.already_done(row[0], row[1], row[2]):
            unchanged += 1
            if row[2] == "error":
                errors += 1
            continue
        if row is None or row[2] == "deleted":
            new += 1
        else:
            changed += 1
        pipeline.submit(item.path, root)
    gone = [p for p, r in known.items() if r[2] != "deleted"]
    del known
    deleted = 0
    if gone and not found:
        log.warning("photo folder %s is empty but %d photo(s) were recorded in it (unmounted?); none is marked deleted",
                    root, len(gone))
        return ScanSummary(found, new, changed, unchanged, 0, errors, time.monotonic() - started, (str(root),))
    if gone:
        deleted = writer.submit(lambda db: mark_deleted(db, gone)).result(60)
        log.info("%d photo(s) under %s are gone; marked deleted", deleted, root)
    return ScanSummary(found, new, changed, unchanged, deleted, errors, time.monotonic() - started)


def outdated_photos(conn: sqlite3.Connection, scorers: Sequence[Any]) -> list[tuple[str, str]]:
    """(path, root) of scored photos with a score written by an older version of one
    of ``scorers`` (same name, other version), or a perceptual hash made by an
    older version of :func:`~daemon.imaging.hashing.phash`."""
    current = [(name, str(s.version)) for s in scorers if getattr(s, "version", None) for name in outputs(s)]
    sql = "SELECT path, root FROM images WHERE status = 'scored' AND phash_version IS NOT ?"
    params: list[str] = [PHASH_VERSION]
    if current:
        values = ", ".join("(?, ?)" for _ in current)
        sql = (f"WITH cur(model, version) AS (VALUES {values}) "
               "SELECT i.path, i.root FROM images i JOIN scores s ON s.image_id = i.id "
               "JOIN cur ON cur.model = s.model AND s.model_version IS NOT cur.version WHERE i.status = 'scored' "
               f"UNION {sql}")
        params = [v for pair in current for v in pair] + params
    return [(p, r) for p, r in conn.execute(sql + " ORDER BY 1", params)]


def rescore_outdated(writer: "StoreWriter", pipeline: "Pipeline", stop: threading.Event | None = None) -> int:
    """Queue every photo scored by an older version of a pipeline scorer or hashed by an
    older perceptual hash (an upgrade changed a measure): its scores from these scorers
    and its hash are replaced, the others kept, so a library is never judged by two
    formulas at once. Returns how many were queued.

    After an upgrade that is the whole library, queued through the bounded queue
    over minutes: setting ``stop`` (or stopping the pipeline) ends the queuing
    quietly, and the next start queues what is still outdated."""
    from .pipeline import PipelineStopping

    conn = open_db(writer.path, readonly=True).conn
    try:
        stale = outdated_photos(conn, pipeline.scorers)
    finally:
        conn.close()
    if not stale:
        return 0
    log.info("%d photo(s) were scored or hashed by an older version of keepers; scoring them again", len(stale))
    queued = 0
    try:
        for path, root in stale:
            if stop is not None and stop.is_set():
                break
            pipeline.submit(Path(path), Path(root), refresh=True)
            queued += 1
    except PipelineStopping:
        pass
    if queued < len(stale):
        log.info("stopping: %d photo(s) left to score again at the next start", len(stale) - queued)
    return queued


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return None
    return tqdm(desc="scanning", unit=" files", leave=False)
