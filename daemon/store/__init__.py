"""SQLite storage: schema and migrations, the single writer, read-only readers."""

from .db import open_db
from .reader import StoreReader, enqueue_command
from .schema import SCHEMA_VERSION
from .writer import StoreWriter

__all__ = ["open_db", "StoreReader", "StoreWriter", "enqueue_command", "SCHEMA_VERSION"]
