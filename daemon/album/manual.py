"""A person's choices: pin, reject, unpin. Stored in ``manual_choices`` and
honoured by every later selection."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import sqlite_utils

from ..errors import KeepersError

Choice = Literal["pin", "reject", "unpin"]
ORIGINS = ("cli", "dashboard", "xmp")


class UnknownPhoto(KeepersError):
    """The path or id given is not a photo in the database."""


def resolve_image(db: sqlite_utils.Database, ref: str | int | Path) -> int:
    """The image id for an id, or a path as given or made absolute. Raises UnknownPhoto."""
    conn = db.conn
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and not os.path.exists(ref)):
        row = conn.execute("SELECT id FROM images WHERE id = ?", (int(ref),)).fetchone()
        if row:
            return int(row[0])
    text = str(ref)
    for candidate in dict.fromkeys([text, os.path.abspath(os.path.expanduser(text)), os.path.realpath(os.path.expanduser(text))]):
        row = conn.execute("SELECT id FROM images WHERE path = ?", (candidate,)).fetchone()
        if row:
            return int(row[0])
    raise UnknownPhoto(
        f"{text}: not a photo keepers knows; check the path (as `keepers picks` prints it) or let the daemon scan it first"
    )


def set_choice(db: sqlite_utils.Database, ref: str | int | Path, choice: Choice, origin: str = "cli") -> int:
    """Pin, reject or unpin a photo (inside a write transaction); returns its id.

    The photo's ``updated_at`` moves forward so the next incremental selection
    recomputes its moment.
    """
    if choice not in ("pin", "reject", "unpin"):
        raise ValueError(f"unknown choice {choice!r}; expected pin, reject or unpin")
    image_id = resolve_image(db, ref)
    now = time.time()
    if choice == "unpin":
        db.conn.execute("DELETE FROM manual_choices WHERE image_id = ?", (image_id,))
    else:
        db.conn.execute(
            "INSERT OR REPLACE INTO manual_choices (image_id, choice, origin, at) VALUES (?, ?, ?, ?)",
            (image_id, choice, origin, now),
        )
    db.conn.execute("UPDATE images SET updated_at = max(updated_at, ?) WHERE id = ?", (now, image_id))
    return image_id
