"""Export: an album folder of links kept in sync with the picks, and XMP
sidecars carrying keepers' rating and pick/reject label.

A rating keepers did not write (one already in a sidecar keepers finds, or
one that differs from what keepers last wrote) was set by a person: it is
never overwritten, the photo's other sidecars show it instead of keepers'
rating, and it counts as a manual choice (-1 = reject, 4 or 5 = pin). What
counts as no rating (0, darktable's import default) and whose label is
whose: see :mod:`daemon.album.xmp`.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import sqlite_utils

from ..config import Config
from ..errors import ConfigError
from ..store.db import open_db
from ..store.writer import StoreWriter
from .links import sync_link_folder
from .xmp import (
    PICK_LABEL, REJECT_LABEL, SidecarError, merge_sidecar, rating_for, read_rating, read_unwritten_rating, sidecar_paths,
)

log = logging.getLogger(__name__)

HAND_PIN_MIN_RATING = 4


def hand_choice(rating: int | None) -> str | None:
    """What a hand-set rating means for the album: -1 rejects, 4-5 pins, anything else neither."""
    if rating is None:
        return None
    if rating < 0:
        return "reject"
    if rating >= HAND_PIN_MIN_RATING:
        return "pin"
    return None


def check_export_folder(config: Config) -> Path | None:
    """The album folder, or None when off. Raises ConfigError when it lies inside a
    watched photo folder that does not ignore it (keepers would score its own links)."""
    folder = config.export.folder
    if folder is None:
        return None
    folder = Path(folder).expanduser().resolve()
    for photos in config.photos:
        root = Path(photos.path).expanduser().resolve()
        try:
            relative = folder.relative_to(root)
        except ValueError:
            continue
        ignored = any(
            fnmatch.fnmatch(part, pattern) or fnmatch.fnmatch(str(relative), pattern) or fnmatch.fnmatch(str(folder), pattern)
            for pattern in config.ignore_patterns
            for part in relative.parts
        )
        if not ignored:
            raise ConfigError(
                config.source_file,
                "export.folder",
                f"{folder} is inside the watched folder {root}; move it out or add it to ignore_patterns",
            )
    return folder


def detect_hand_edits(writer: StoreWriter, config: Config) -> int:
    """Read back the sidecars keepers wrote that changed on disk; a rating that is
    not keepers' own becomes (or stops being) a manual choice. Returns how many
    sidecars were found hand-edited."""
    reader = open_db(writer.path, readonly=True)
    try:
        rows = reader.conn.execute("SELECT sidecar, image_id, rating, mtime_ns, hand_rating FROM xmp_written").fetchall()
    finally:
        reader.conn.close()
    changes: list[tuple[str, int, int | None, int | None, bool]] = []  # sidecar, image, hand rating, mtime, gone
    for sidecar, image_id, rating, mtime_ns, hand in rows:
        try:
            st = os.stat(sidecar)
        except OSError:
            changes.append((sidecar, image_id, None, None, True))
            continue
        if st.st_mtime_ns == mtime_ns:
            continue
        try:
            now_rating = read_rating(Path(sidecar))
        except SidecarError as exc:
            log.warning("%s", exc)
            continue
        new_hand = None if now_rating == rating else now_rating
        changes.append((sidecar, image_id, new_hand, st.st_mtime_ns, False))
    if not changes:
        return 0

    def record(db: sqlite_utils.Database) -> int:
        from .manual import set_choice

        edited = 0
        for sidecar, image_id, hand, mtime_ns, gone in changes:
            if gone:
                db.conn.execute("DELETE FROM xmp_written WHERE sidecar = ?", (sidecar,))
                continue
            db.conn.execute("UPDATE xmp_written SET mtime_ns = ?, hand_rating = ? WHERE sidecar = ?", (mtime_ns, hand, sidecar))
            if hand is not None:
                edited += 1
            _apply_hand_rating(db, image_id, hand, set_choice)
        return edited

    return int(writer.call(record))


def _apply_hand_rating(db: sqlite_utils.Database, image_id: int, hand: int | None, set_choice) -> None:  # type: ignore[no-untyped-def]
    wanted = hand_choice(hand)
    row = db.conn.execute("SELECT choice, origin FROM manual_choices WHERE image_id = ?", (image_id,)).fetchone()
    if wanted is not None and (row is None or row[0] != wanted):
        if row is None or row[1] == "xmp":  # a pin or reject made in keepers itself stays
            set_choice(db, image_id, wanted, origin="xmp")  # type: ignore[arg-type]
    elif wanted is None and row is not None and row[1] == "xmp":
        set_choice(db, image_id, "unpin", origin="xmp")


def export_album(writer: StoreWriter, config: Config, moments: set[int] | None) -> int:
    """Bring the album folder and the sidecars up to date with the committed picks.

    ``moments`` limits the sidecars rewritten to those moments (None = every
    photo). Returns how many hand-set ratings it found in sidecars keepers had
    never written (each is now a manual choice the next run honours).
    """
    folder = check_export_folder(config)
    reader = open_db(writer.path, readonly=True)
    try:
        conn = reader.conn
        if folder is not None:
            picks = conn.execute("SELECT p.image_id, i.path FROM picks p JOIN images i ON i.id = p.image_id").fetchall()
            # a RAW+JPEG pair is one photo: link both files. The same stem exactly (IMG_1.JPG and
            # IMG_1.CR2), compared as text: a LIKE pattern would let '_' match any character
            picks += conn.execute(
                "SELECT c.id, c.path FROM picks p JOIN images i ON i.id = p.image_id JOIN images c"
                " ON c.moment = i.moment AND c.cluster = i.cluster AND c.id != i.id AND c.status = 'scored'"
                " WHERE rtrim(c.path, replace(c.path, '.', '')) = rtrim(i.path, replace(i.path, '.', ''))"
                " AND NOT EXISTS (SELECT 1 FROM picks q WHERE q.image_id = c.id)"
            ).fetchall()
            created, removed = sync_link_folder(folder, [(int(i), str(p)) for i, p in picks], config.export.link,
                                                made_before=_older_keepers_link(conn))
            log.info("album folder %s: %d links created, %d removed", folder, created, removed)
        if not config.export.xmp:
            return 0
        where = "" if moments is None else " AND i.moment IN (SELECT value FROM json_each(?))"
        params: tuple = () if moments is None else (_json(moments),)
        photos = conn.execute(
            "SELECT i.id, i.path, i.moment, i.cluster, i.composite, (SELECT choice FROM manual_choices m WHERE m.image_id = i.id),"
            " EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id), (SELECT composite FROM album_candidates a WHERE a.image_id = i.id)"
            f" FROM images i WHERE i.status = 'scored'{where}",
            params,
        ).fetchall()
        written = {r[0]: r[1:] for r in conn.execute("SELECT sidecar, rating, label, hand_rating FROM xmp_written")}
    finally:
        reader.conn.close()
    by_base: dict[tuple[str, int | None, int | None], list[tuple]] = {}
    for row in photos:
        by_base.setdefault((os.path.splitext(row[1])[0], row[2], row[3]), []).append(row)
    records: list[tuple[str, int, int | None, str | None, float, int]] = []
    seen: set[str] = set()  # IMG_1.CR2 and IMG_1.JPG share IMG_1.xmp under replace_extension
    for group in by_base.values():
        # RAW+JPEG: every file of the photo carries the state of the one that was scored and picked
        picked = any(r[6] for r in group)
        rejected = any(r[5] == "reject" for r in group)
        scores = [r[7] if r[7] is not None else r[4] for r in group if (r[7] if r[7] is not None else r[4]) is not None]
        rating = rating_for(max(scores) if scores else None, rejected=rejected)
        label = REJECT_LABEL if rejected else PICK_LABEL if picked else None
        owned: list[tuple[Path, tuple | None, int]] = []  # the sidecars keepers writes: (path, last written, image)
        hands: list[tuple[int, int]] = []  # (mtime_ns, rating) of each sidecar of the photo a person rated
        for row in group:
            for sidecar in sidecar_paths(row[1], config.export.xmp_naming):
                key = str(sidecar)
                if key in seen:
                    continue
                seen.add(key)
                before = written.get(key)
                if before is not None and before[2] is not None:
                    hands.append((_mtime_ns(sidecar), before[2]))  # a person set this rating; it wins
                    continue
                if before is None and sidecar.exists():
                    try:
                        existing = read_unwritten_rating(sidecar, config.export.xmp_darktable_import_rating)
                    except SidecarError as exc:
                        log.warning("%s", exc)
                        continue
                    if existing is not None:
                        records.append((key, row[0], None, None, -1.0, existing))
                        hands.append((_mtime_ns(sidecar), existing))
                        continue
                owned.append((sidecar, before, row[0]))
        if hands:
            # one photo shows one rating: the one a person set in a sidecar (the newest, if several)
            # goes into the others keepers writes, darktable's and Lightroom's alike, not keepers' own
            rating = max(hands)[1]
        for sidecar, before, image_id in owned:
            if before is not None and (before[0], before[1]) == (rating, label) and sidecar.exists():
                continue
            try:
                held = merge_sidecar(sidecar, rating, label, previous_label=before[1] if before else None)
            except (OSError, SidecarError) as exc:
                log.warning("sidecar %s: not written: %s", sidecar, exc)
                continue
            records.append((str(sidecar), image_id, rating, held, time.time(), 0))
    if records:
        writer.call(lambda db: _record_sidecars(db, records))
    return sum(1 for r in records if r[4] < 0 and hand_choice(r[5]) is not None)


def _record_sidecars(db: sqlite_utils.Database, records: list[tuple[str, int, int | None, str | None, float, int]]) -> None:
    from .manual import set_choice

    for sidecar, image_id, rating, label, written_at, existing in records:
        try:
            mtime_ns = os.stat(sidecar).st_mtime_ns
        except OSError:
            mtime_ns = None
        if written_at < 0:  # a sidecar that already had a rating keepers never wrote: a person's
            db.conn.execute(
                "INSERT OR REPLACE INTO xmp_written (sidecar, image_id, rating, label, written_at, mtime_ns, hand_rating)"
                " VALUES (?, ?, NULL, NULL, ?, ?, ?)",
                (sidecar, image_id, time.time(), mtime_ns, existing),
            )
            _apply_hand_rating(db, image_id, existing, set_choice)
        else:
            db.conn.execute(
                "INSERT OR REPLACE INTO xmp_written (sidecar, image_id, rating, label, written_at, mtime_ns, hand_rating)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (sidecar, image_id, rating, label, written_at, mtime_ns),
            )


def _older_keepers_link(conn: Any) -> Callable[[os.DirEntry], str | None]:
    """For an album folder filled before keepers recorded its links: an entry is taken
    for one of its links when it links to a photo in the library under that photo's
    name (``IMG_1.jpg``, or ``IMG_1~id.jpg`` for a second photo of that name)."""

    def named_for(name: str, path: str, image_id: int) -> bool:
        stem, ext = os.path.splitext(os.path.basename(path))
        return name in (stem + ext, f"{stem}~{image_id}{ext}")

    def target(entry: os.DirEntry) -> str | None:
        if entry.is_symlink():
            path = os.readlink(entry.path)
            known = conn.execute("SELECT id FROM images WHERE path = ?", (path,)).fetchone()
            return path if known and named_for(entry.name, path, int(known[0])) else None
        if not entry.is_file(follow_symlinks=False):
            return None
        st = entry.stat(follow_symlinks=False)
        if st.st_nlink < 2:
            return None
        stem, ext = os.path.splitext(entry.name)
        base, _, image_id = stem.rpartition("~")
        if base and image_id.isdigit():
            rows = conn.execute("SELECT path FROM images WHERE id = ?", (int(image_id),)).fetchall()
        else:
            rows = conn.execute("SELECT path FROM images WHERE substr(path, -?) = ?", (len(entry.name) + 1, "/" + entry.name)).fetchall()
        for (path,) in rows:
            try:
                other = os.stat(path)
            except OSError:
                continue
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino) and os.path.splitext(path)[1] == ext:
                return str(path)
        return None

    return target


def _mtime_ns(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def _json(values: Iterable[int]) -> str:
    import json

    return json.dumps(sorted(int(v) for v in values))
