"""The catch-up scan: walk the photo folders, queue what is new or changed,
mark what vanished.

A file is unchanged when its size and mtime (ns) match its row; then nothing
is done. A row whose file is gone is marked ``deleted`` (never dropped). A root
that is missing, or empty while the database remembers photos in it, is
treated as unmounted: nothing under it is marked deleted.

A million photos: the walk lists each folder's names in the order of their
stored paths (the order of the ``images.path`` index) and the rows are read
in that order a page at a time, so the two are merged like sorted lists and
the scan holds one page of rows and the folders it is inside, never a row per
photo of the library.
"""

from __future__ import annotations

import dataclasses
import errno
import fnmatch
import logging
import os
import re
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ..imaging.hashing import PHASH_VERSION
from ..store.db import open_db
from ..store.schema import PROBE_SCHEMA_VERSION
from .base import outputs
from .record import FileStat, already_done, mark_deleted, path_key, record_error

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
        # every pattern in one expression, each as fnmatchcase translates it: a name is
        # matched once, not once a pattern (the scan asks this of every name in the library)
        self._ignored = re.compile("|".join(fnmatch.translate(p) for p in self.patterns)).match if self.patterns else None
        export = config.export.folder
        self.excluded = {str(Path(export).expanduser().resolve())} if export else set()

    def ignored(self, name: str) -> bool:
        return self._ignored is not None and self._ignored(name) is not None

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
    for _key, path, size, mtime_ns, problem in walk_in_path_order(root, matcher):
        yield Found(Path(path), None if problem is not None else FileStat(size, mtime_ns), problem)


_FILE, _FOLDER, _FOLDER_NAMED_LIKE_A_PHOTO = 0, 1, 2
FOLDER_NAMED_LIKE_A_PHOTO = "a folder named like a photo, not a file"


def _name_key(name: str) -> str:
    return name if name.isascii() else path_key(name)


def walk_in_path_order(root: Path | str, matcher: Matcher) -> Iterator[tuple[str, str, int, int, str | None]]:
    """What :func:`walk` finds, as ``(key, path, size, mtime_ns, problem)`` in the order of
    ``key`` (the path as stored, :func:`~.record.path_key`): the order SQLite keeps
    ``images.path`` in. ``size`` and ``mtime_ns`` are -1 when ``problem`` says why the
    file cannot be read.

    A folder's names are sorted with a ``/`` after each subfolder's name, so a subfolder's
    files come where their full paths sort among its siblings (``a b/x`` before
    ``a/x``, ``a-1.jpg`` before ``a/x``). Holds one sorted listing per folder it is inside."""
    root_text = os.path.abspath(root)
    try:
        st = os.stat(root_text)
    except OSError:
        return
    seen_dirs = {(st.st_dev, st.st_ino)}
    if root_text in matcher.excluded:
        return
    extensions, ignored = matcher.extensions, matcher.ignored
    stack = [iter(_listing(root_text, path_key(root_text).rstrip("/") + "/", extensions, ignored))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        key, kind, entry = item
        if kind == _FOLDER:
            path = entry.path
            if path in matcher.excluded:
                continue
            try:
                dst = os.stat(path)  # follows a symlinked folder
            except OSError:
                continue
            if (dst.st_dev, dst.st_ino) in seen_dirs:
                log.debug("skipping %s: folder already walked (a symlink loop or a second link)", path_key(path))
                continue
            seen_dirs.add((dst.st_dev, dst.st_ino))
            stack.append(iter(_listing(path, key, extensions, ignored)))
        elif kind == _FOLDER_NAMED_LIKE_A_PHOTO:
            yield key, entry.path, -1, -1, FOLDER_NAMED_LIKE_A_PHOTO
        else:
            try:
                fst = entry.stat()
            except FileNotFoundError:
                if entry.is_symlink():
                    try:
                        target = os.readlink(entry.path)
                    except OSError:
                        target = "?"
                    yield key, entry.path, -1, -1, f"broken symbolic link (points to {target!r})"
                # else: it vanished between listing and stat; the row (if any) is marked deleted
                continue
            except OSError as exc:
                why = ("symbolic link loop: the link points (eventually) to itself" if exc.errno == errno.ELOOP
                       else f"cannot read: {exc.strerror or exc}")
                yield key, entry.path, -1, -1, why
                continue
            yield key, entry.path, fst.st_size, fst.st_mtime_ns, None


def _listing(folder: str, prefix: str, extensions: frozenset[str], ignored: Callable[[str], bool]) -> list[tuple[str, int, os.DirEntry[str]]]:
    """``folder``'s included files and its subfolders as (key, kind, entry), sorted by key;
    a subfolder's key ends with ``/`` (``prefix`` is the folder's own key and its ``/``)."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        log.warning("cannot list %s: %s; its photos are skipped this time", path_key(folder), exc.strerror or exc)
        return []
    items = []
    for entry in entries:
        name = entry.name
        if ignored(name):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError:
            is_dir = False
        photo_like = os.path.splitext(name)[1].lower() in extensions
        if is_dir:
            key = prefix + _name_key(name)
            items.append((key + "/", _FOLDER, entry))
            if photo_like:
                items.append((key, _FOLDER_NAMED_LIKE_A_PHOTO, entry))
        elif photo_like:
            items.append((prefix + _name_key(name), _FILE, entry))
    items.sort(key=itemgetter(0))
    return items


#: rows read per query by the scan (each query a short read: nothing holds the database for the whole walk)
ROWS_PAGE = 5000


def _rows_in_path_order(db_path: Path, root: Path) -> Iterator[tuple[str, int | None, int | None, str, str | None]]:
    """Rows under ``root`` as (path, size, mtime_ns, status, error if in error), in path order,
    read :data:`ROWS_PAGE` at a time through the index on ``images.path``."""
    prefix = path_key(root).rstrip("/") + "/"
    after, below = prefix, prefix[:-1] + chr(ord("/") + 1)
    conn = open_db(db_path, readonly=True).conn
    try:
        while True:
            page = conn.execute(
                "SELECT path, size, mtime_ns, status, CASE WHEN status = 'error' THEN error END FROM images"
                " WHERE path > ? AND path < ? ORDER BY path LIMIT ?", (after, below, ROWS_PAGE)).fetchall()
            yield from page
            if len(page) < ROWS_PAGE:
                return
            after = page[-1][0]
    finally:
        conn.close()


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
    fresh: list[tuple[str, Path, int, int]] = []
    vanished: list[str] = []
    try:
        for root in folders:
            total = total + _scan_root(Path(root), matcher, writer, pipeline, bar, on_found, fresh, vanished)
    finally:
        if bar is not None:
            bar.close()
    moved = _relink_moved(writer, fresh, vanished) if fresh and vanished else set()
    for path, root, _size, _mtime_ns in fresh:
        if path not in moved:
            pipeline.submit(Path(path), root)
    if moved:  # a move, not a new photo and a deleted one
        total = dataclasses.replace(total, new=total.new - len(moved), deleted=total.deleted - len(moved),
                                    unchanged=total.unchanged + len(moved))
    return total


def _relink_moved(writer: "StoreWriter", fresh: Sequence[tuple[str, Path, int, int]], vanished: Sequence[str]) -> set[str]:
    """Photos moved while keepers was not running: the rows of ``vanished`` (scored, their file
    not found) are matched by content hash against the ``fresh`` files (no row), same size first
    so few files are hashed; a match moves the row to its file's new path with its scores.
    Returns the paths of the files that took a row over."""
    from ..imaging.hashing import ContentMatch
    from ..watch.moves import relink

    conn = open_db(writer.path, readonly=True).conn
    try:
        by_size: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for path in vanished:
            row = conn.execute("SELECT id, size, content_hash FROM images WHERE path = ?", (path,)).fetchone()
            if row is not None and row[1] is not None and row[2]:
                by_size[row[1]].append((row[0], row[2]))
    finally:
        conn.close()
    moved: set[str] = set()
    for path, root, size, mtime_ns in fresh:
        bucket = by_size.get(size)
        if not bucket:
            continue
        content = ContentMatch(Path(path))
        try:
            match = next((c for c in bucket if content.matches(c[1])), None)
        except OSError:
            continue
        if match is None:
            continue
        bucket.remove(match)
        writer.call(lambda db, i=match[0], p=Path(path), r=root, s=size, m=mtime_ns: relink(db, i, p, r, s, m))
        moved.add(path)
    if moved:
        log.info("%d photo(s) moved while keepers was not running; their rows followed them", len(moved))
    return moved


#: vanished rows marked deleted per writer transaction once the scan has found files under the root
DELETE_BATCH = 10_000


def _scan_root(root: Path, matcher: Matcher, writer: "StoreWriter", pipeline: "Pipeline", bar: Any,
               on_found: Callable[[Found], None] | None, fresh: list[tuple[str, Path, int, int]],
               vanished: list[str]) -> ScanSummary:
    """Merge the walk of ``root`` with its rows: queue the changed files, add to ``fresh`` the
    files with no row (queued once every root is walked: a photo moved while keepers was away
    may take over a vanished row), add to ``vanished`` the scored rows whose file is gone."""
    started = time.monotonic()
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        log.warning("photo folder %s is missing (unmounted?); nothing in it is marked deleted", root)
        return ScanSummary(skipped_roots=(str(root),), seconds=time.monotonic() - started)
    found = new = changed = unchanged = errors = deleted = 0
    gone: list[tuple[str, str]] = []  # (path, status) of rows whose file was not found, not yet marked deleted

    def mark_gone() -> None:
        nonlocal deleted
        batch = [path for path, _status in gone]
        vanished.extend(path for path, status in gone if status == "scored")
        gone.clear()
        deleted += writer.submit(lambda db: mark_deleted(db, batch)).result(60)

    rows = _rows_in_path_order(writer.path, root)
    try:
        row = next(rows, None)
        for key, path, size, mtime_ns, problem in walk_in_path_order(root, matcher):
            found += 1
            while row is not None and row[0] < key:  # a row the walk has passed: its file is gone
                if row[3] != "deleted":
                    gone.append((row[0], row[3]))
                row = next(rows, None)
            known = None
            if row is not None and row[0] == key:
                known, row = row, next(rows, None)
            if len(gone) >= DELETE_BATCH:
                mark_gone()
            if bar is not None:
                bar.update(1)
            if on_found is not None:
                on_found(Found(Path(path), None if problem is not None else FileStat(size, mtime_ns), problem))
            if problem is not None:
                errors += 1
                if known and known[3] == "error" and known[4] == problem:
                    continue  # already recorded, nothing new to say
                writer.submit(lambda db, p=Path(path), why=problem: record_error(db, path=p, root=root, stat=None, reason=why))
                log.warning("cannot score %s: %s", key, problem)
                continue
            if known and already_done(known[1], known[2], known[3], size, mtime_ns):
                unchanged += 1
                if known[3] == "error":
                    errors += 1
                continue
            if known is None or known[3] == "deleted":
                new += 1
                fresh.append((path, root, size, mtime_ns))
            else:
                changed += 1
                pipeline.submit(Path(path), root)
        while row is not None:
            if row[3] != "deleted":
                gone.append((row[0], row[3]))
            row = next(rows, None)
    finally:
        rows.close()
    if gone and not found:
        log.warning("photo folder %s is empty but %d photo(s) were recorded in it (unmounted?); none is marked deleted",
                    root, len(gone))
        return ScanSummary(found, new, changed, unchanged, 0, errors, time.monotonic() - started, (str(root),))
    if gone:
        mark_gone()
    if deleted:
        log.info("%d photo(s) under %s are gone; marked deleted", deleted, root)
    return ScanSummary(found, new, changed, unchanged, deleted, errors, time.monotonic() - started)


def outdated_photos(conn: sqlite3.Connection, scorers: Sequence[Any]) -> list[tuple[str, str]]:
    """(path, root) of scored photos with a score written by an older version of one
    of ``scorers`` (same name, other version), or a perceptual hash made by an
    older version of :func:`~daemon.imaging.hashing.phash`."""
    current = [(name, str(s.version)) for s in scorers if getattr(s, "version", None) for name in outputs(s)]
    if not _any_outdated(conn, current):
        return []
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


def _any_outdated(conn: sqlite3.Connection, current: Sequence[tuple[str, str]]) -> bool:
    """Whether any score of ``current``'s models has another version, or any scored photo
    another hash version: index probes (scores_model_version, images_phash_version), so a
    library with nothing outdated costs milliseconds at every start instead of a read of
    every score. A hit is only a hint (the score may belong to a deleted photo):
    :func:`outdated_photos` then reads which photos. A database older than schema 5 has no
    such indexes: True, so the full query decides."""
    if conn.execute("PRAGMA user_version").fetchone()[0] < PROBE_SCHEMA_VERSION:
        return True
    probes = _other_version("images INDEXED BY images_phash_version WHERE status = 'scored'", (), "phash_version", PHASH_VERSION)
    for model, version in current:
        probes += _other_version("scores WHERE model = ?", (model,), "model_version", version)
    return any(conn.execute(sql, params).fetchone() for sql, params in probes)


def _other_version(rows: str, params: tuple[str, ...], column: str, version: str) -> list[tuple[str, tuple[str, ...]]]:
    """The probes for one of ``rows`` (a FROM ... WHERE clause and its parameters) whose
    ``column`` is not ``version``, each a range of the index: NULL is neither below nor
    above a version, so it is asked apart."""
    tests = (("IS NULL", ()), ("< ?", (version,)), ("> ?", (version,)))
    return [(f"SELECT 1 FROM {rows} AND {column} {test} LIMIT 1", (*params, *extra)) for test, extra in tests]


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
