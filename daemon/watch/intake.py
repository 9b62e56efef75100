"""The last step before the pipeline: skip what is already scored, and recognise
a photo that moved where no event said so (by its content hash).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..imaging.hashing import ContentMatch
from ..scoring.record import path_key
from ..store.db import open_db
from .moves import relink, unchanged_row, vanished_candidates
from .settle import stat_key

if TYPE_CHECKING:
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
        content = ContentMatch(path)
        for image_id, old_path, chash in candidates:
            try:
                same = content.matches(chash)
            except OSError:
                return False
            if same:
                self.writer.call(lambda db: relink(db, image_id, path, root, size, mtime_ns))
                self.relinked += 1
                log.info("%s is %s moved (same content); kept its row and scores", path_key(path), old_path)
                return True
        return False
