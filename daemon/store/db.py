"""Opening the database: WAL, foreign keys, migrations, file mode 0600."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError
from .schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """A read-only connection to the database at ``path`` (never creates it).

    Raises StoreError when it does not exist yet, cannot be read, or its schema
    is newer than this keepers knows.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database {path} does not exist yet; start the daemon (`keepers run`) to create it")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only = 1")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(damaged_message(path, exc) if is_damage(exc) else f"cannot read database {path}: {exc}") from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"database {path} has schema version {version}; this keepers knows up to {SCHEMA_VERSION}: upgrade keepers")
    return conn


def open_db(path: Path | str, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open (and, for a writer, create and migrate) the database at ``path``.

    A read-only connection never creates the file and raises StoreError when it
    does not exist yet or its schema is newer than this keepers knows.
    """
    # imported here: the dashboard reads through plain connections (connect_readonly) and starts
    # without sqlite_utils and the numpy it brings (a third of a second before the first frame)
    import sqlite_utils

    path = Path(path)
    if readonly:
        return sqlite_utils.Database(connect_readonly(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open database {path}: {exc}; check that its folder is writable") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_damage(exc):
            raise StoreError(damaged_message(path, exc)) from exc
        raise StoreError(f"cannot open database {path}: {exc}; check that the disk holding it has free space "
                         "and is writable (`keepers doctor` checks)") from exc
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        if side.exists():
            os.chmod(side, 0o600)
    return sqlite_utils.Database(conn)


#: less free space than this on the database's disk counts as full (SQLite writes whole pages)
FULL_BELOW_BYTES = 64 * 1024


def disk_problem(path: Path | str) -> str | None:
    """Why the file system holding the database at ``path`` cannot take writes now (full or
    read-only), with what to do; None when it can, or when it cannot be asked."""
    path = Path(path)
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY:
        return f"the file system holding the database {path} is read-only: make it writable again"
    if fs.f_bavail * fs.f_frsize < FULL_BELOW_BYTES:
        return f"the disk holding the database {path} is full: free some space on it"
    return None


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database file is damaged (or not an SQLite database at all)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def damaged_message(path: Path | str, exc: object) -> str:
    """What to tell the user about a damaged database file, and what to do."""
    return (f"the database {path} is damaged ({exc}). Stop keepers, move it aside with its -wal and -shm files "
            f"(e.g. mv {path} {path}.damaged) and start keepers again: it builds a new database and scores every "
            "photo again (the pins and rejects made in keepers stay in the old file; XMP sidecars keep theirs). "
            "`keepers doctor` checks a database with PRAGMA quick_check.")


def migrate(conn: sqlite3.Connection, path: Path | str = "?") -> int:
    """Bring the schema up to SCHEMA_VERSION; returns the version found before."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database {path} has schema version {version}; this keepers knows up to {SCHEMA_VERSION}: upgrade keepers")
    for target in range(version, SCHEMA_VERSION):
        log.info("migrating database %s to schema version %d", path, target + 1)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version


def _statements(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            stmt = "\n".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
    return out
