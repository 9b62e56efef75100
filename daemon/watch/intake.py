"""The last step before the pipeline: skip what is already scored, and recognise
a photo that moved where no event said so (by its content hash).
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..imaging.hashing import content_hash
from ..scoring.record import path_key
from ..store.db import open_db
from .moves import live_rows_missing, relink, unchanged_row, vanished_candidates
from .settle import stat_key

if TYPE_CHECKING:
    from ..scoring.scan import Matcher
    from ..store.writer import StoreWriter

log = logging.getLogger(__name__)


class Intake:
    """``submit(path, root)``: hand a settled file to the pipeline unless its row already
    says the same (size, mtime), or its bytes are those of a row whose file vanished
    (then that row moves to the new path and keeps its scores)."""

    def __init__(self, writer: "StoreWriter", pipeline: Any):
        self.writer = writer
        self.pipeline = pipeline
        self._local = threading.local()
        self.relinked = 0
        self.skipped = 0

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_db(self.writer.path, readonly=True).conn
            self._local.conn = conn
        return conn

    def submit(self, path: Path, root: Path) -> bool:
        key = stat_key(path)
        if key is None:
            return False  # gone again; its delete event (or the next scan) records that
        size, mtime_ns = key
        conn = self._conn()
        if unchanged_row(conn, path, size, mtime_ns):
            self.skipped += 1
            return False
        has_row = conn.execute("SELECT 1 FROM images WHERE path = ? AND status != 'deleted'", (path_key(path),)).fetchone()
        if not has_row and self._relink(conn, path, root, size, mtime_ns):
            return False
        return bool(self.pipeline.submit(path, root, settled=key))

    def _relink(self, conn: Any, path: Path, root: Path, size: int, mtime_ns: int) -> bool:
        candidates = vanished_candidates(conn, size)
        if not candidates:
            return False
        try:
            digest = content_hash(path)
        except OSError:
            return False
        for image_id, old_path, chash in candidates:
            if chash == digest:
                self.writer.call(lambda db: relink(db, image_id, path, root, size, mtime_ns))
                self.relinked += 1
                log.info("%s is %s moved (same content); kept its row and scores", path_key(path), old_path)
                return True
        return False


def relink_moved_while_away(writer: "StoreWriter", roots: Sequence[Path], matcher: "Matcher") -> int:
    """Before a catch-up scan: rows whose file is gone are matched by content hash
    against files with no row (same size first, so few files are hashed).
    Returns how many rows moved to their file's new path."""
    from ..scoring.scan import walk

    conn = open_db(writer.path, readonly=True).conn
    try:
        missing: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
        for root in roots:
            for image_id, _path, size, chash in live_rows_missing(conn, root):
                if size is not None and chash:
                    missing[size].append((image_id, chash))
        if not missing:
            return 0
        moved = 0
        for root in roots:
            for found in walk(Path(root), matcher):
                if found.stat is None or found.stat.size not in missing:
                    continue
                if conn.execute("SELECT 1 FROM images WHERE path = ?", (path_key(found.path),)).fetchone():
                    continue
                try:
                    digest = content_hash(found.path)
                except OSError:
                    continue
                bucket = missing[found.stat.size]
                match = next((c for c in bucket if c[1] == digest), None)
                if match is None:
                    continue
                bucket.remove(match)
                st = found.stat
                writer.call(lambda db, m=match, p=found.path, r=root, s=st: relink(db, m[0], p, r, s.size, s.mtime_ns))
                moved += 1
        if moved:
            log.info("%d photo(s) moved while keepers was not running; their rows followed them", moved)
        return moved
    finally:
        conn.close()
