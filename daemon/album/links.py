"""The album folder: one link per picked photo, and a record of the links keepers made.

keepers removes only what it made. Each link it creates is written down in
``.keepers-links.json`` inside the folder (the link's name, its target, and
for a hard link its inode), and an entry is removed only while it is still
that link. A file or link a person put there is left alone whatever its
link count or target; so is one of keepers' names that a person replaced.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger(__name__)

#: the record of the links keepers made, inside the album folder
MANIFEST = ".keepers-links.json"


@dataclass(frozen=True)
class MadeLink:
    """A link keepers created: its target, and (dev, inode) when it is a hard link."""

    target: str
    inode: tuple[int, int] | None = None  # None: a symbolic link


def link_name(path: str, image_id: int, taken: set[str]) -> str:
    """The link's name in the album folder: the photo's own name, or ``stem~id.ext`` when taken."""
    name = os.path.basename(path)
    if name in taken:
        stem, ext = os.path.splitext(name)
        name = f"{stem}~{image_id}{ext}"
    taken.add(name)
    return name


def read_manifest(folder: Path) -> dict[str, MadeLink] | None:
    """The links keepers recorded in ``folder``; None when it holds no record (yet)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return {name: MadeLink(str(v["target"]), tuple(v["inode"]) if v.get("inode") else None)  # type: ignore[arg-type]
                for name, v in data["links"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("album folder %s: its record of keepers' links (%s) cannot be read (%s); links keepers made before "
                    "are left in place: remove the stale ones by hand", folder, MANIFEST, exc)
        return {}


def _write_manifest(folder: Path, made: dict[str, MadeLink]) -> None:
    data = {"links": {name: {"target": m.target, "inode": list(m.inode) if m.inode else None}
                      for name, m in sorted(made.items())}}
    fd, tmp = tempfile.mkstemp(prefix=".keepers-links-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _inode(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _still_ours(entry: os.DirEntry, made: MadeLink) -> bool:
    """Whether the entry is still the link keepers made (a person may have replaced it)."""
    try:
        if made.inode is None:
            return entry.is_symlink() and os.readlink(entry.path) == made.target
        return entry.is_file(follow_symlinks=False) and not entry.is_symlink() \
            and _inode(entry.stat(follow_symlinks=False)) == made.inode
    except OSError:
        return False


def _points_at(made: MadeLink, target: str, link: str) -> bool:
    """Whether keepers' link is the one wanted now: same kind, same target (for a hard link,
    still the target's current file: an editor that saved a new file gave it a new inode)."""
    if (link == "symlink") != (made.inode is None) or made.target != target:
        return False
    if made.inode is None:
        return True
    try:
        return _inode(os.stat(target)) == made.inode
    except OSError:
        return False


def sync_link_folder(folder: Path, picks: Iterable[tuple[int, str]], link: str, *,
                     made_before: Callable[[os.DirEntry], str | None] | None = None) -> tuple[int, int]:
    """Make ``folder`` hold exactly one link per picked file; returns (created, removed).

    Only links keepers recorded making are removed. ``made_before``: for a
    folder with no record yet (filled by a keepers that kept none), the
    target of an entry that is one of those older links, else None.
    """
    folder.mkdir(parents=True, exist_ok=True)
    desired: dict[str, str] = {}
    taken: set[str] = set()
    for image_id, path in sorted(picks):
        desired[link_name(path, image_id, taken)] = path
    made = read_manifest(folder)
    entries = [e for e in os.scandir(folder) if e.name != MANIFEST and not e.name.startswith(".keepers-links-")]
    if made is None:
        made = {}
        for entry in entries if made_before is not None else ():
            target = made_before(entry)  # type: ignore[misc]
            if target is not None:
                inode = None if entry.is_symlink() else _inode(entry.stat(follow_symlinks=False))
                made[entry.name] = MadeLink(target, inode)
    created = removed = 0
    present = {entry.name for entry in entries}
    for name in [n for n in made if n not in present]:
        del made[name]  # gone (a person deleted it, or keepers stopped before making it)
    for entry in entries:
        mine = made.get(entry.name)
        if mine is None:
            continue  # not keepers': a person's file or link stays
        if not _still_ours(entry, mine):
            del made[entry.name]  # a person put something else under that name: theirs now
            continue
        target = desired.get(entry.name)
        if target is not None and _points_at(mine, target, link):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
        del made[entry.name]
        removed += 1
    planned: dict[str, MadeLink] = {}
    for name, target in desired.items():
        if name in present and name in made:
            continue
        if os.path.lexists(folder / name):
            log.info("album folder %s: %s is a file keepers did not make; %s is not linked", folder, name, target)
            continue
        try:
            # a hard link shares its target's inode: known before it exists
            planned[name] = MadeLink(target) if link == "symlink" else MadeLink(target, _inode(os.stat(target)))
        except OSError as exc:
            log.warning("album folder %s: cannot link %s: %s", folder, target, exc.strerror or exc)
    # recorded before they are made: a stop in between leaves no link keepers would not know as its own
    _write_manifest(folder, {**made, **planned})
    for name, link_to in planned.items():
        try:
            if link_to.inode is None:
                os.symlink(link_to.target, folder / name)
            else:
                os.link(link_to.target, folder / name)
        except OSError as exc:
            log.warning("album folder %s: cannot link %s: %s", folder, link_to.target, exc.strerror or exc)
            continue
        made[name] = link_to
        created += 1
    if any(name not in made for name in planned):
        _write_manifest(folder, made)  # the ones that could not be made
    return created, removed
