"""Which folders inotify can see, and how many watches a tree needs.

Network shares (NFS, SMB/CIFS, sshfs and other FUSE mounts) change behind
inotify's back, so they are polled. ``/proc/mounts`` says which file system a
folder lives on; ``/proc/sys/fs/inotify/max_user_watches`` is the per-user
limit on watched directories.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MOUNTS_FILE = Path("/proc/mounts")
WATCH_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_watches")
NETWORK_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "davfs", "fuse", "fuseblk",
    "sshfs", "lustre", "gpfs", "beegfs", "virtiofs", "vboxsf", "ncpfs", "coda",
})
RAISE_WATCHES_HINT = (
    "raise it with `sudo sysctl fs.inotify.max_user_watches=524288` and keep it with "
    "`echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-keepers.conf`"
)


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def read_mounts(mounts_file: Path | None = None) -> list[Mount]:
    try:
        text = (mounts_file or MOUNTS_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append(Mount(_unescape(parts[1]), parts[2], _unescape(parts[0])))
    return out


def mount_of(folder: Path, mounts: list[Mount] | None = None) -> Mount | None:
    """The mount a folder lives on: the longest mount point that contains it."""
    mounts = read_mounts() if mounts is None else mounts
    target = os.path.realpath(folder)
    best: Mount | None = None
    for m in mounts:
        point = m.point.rstrip("/") or "/"
        if target == point or target.startswith(point if point == "/" else point + "/"):
            if best is None or len(point) >= len(best.point.rstrip("/") or "/"):
                best = m
    return best


def is_network_fs(fstype: str) -> bool:
    return fstype in NETWORK_FS or fstype.startswith("fuse.") or fstype.startswith("nfs")


def choose_mode(folder: Path, mode: str, mounts: list[Mount] | None = None) -> tuple[str, str]:
    """``(events|polling, why)`` for a folder whose configured watch_mode is ``mode``."""
    if mode in ("events", "polling"):
        return mode, "set in the config"
    m = mount_of(folder, mounts)
    if m is not None and is_network_fs(m.fstype):
        return "polling", f"{m.fstype} mount at {m.point} (inotify does not see other machines' changes)"
    return "events", f"local file system ({m.fstype if m else 'unknown'})"


def count_directories(root: Path, ignored: "callable[[str], bool] | None" = None) -> int:
    """Directories under ``root`` (itself included) an inotify watch would need."""
    count = 0
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        count += 1
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False) and not (ignored and ignored(entry.name)):
                            stack.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            continue
    return count


def inotify_limit(limit_file: Path | None = None) -> int | None:
    """The per-user inotify watch limit, or None where it cannot be read."""
    try:
        return int((limit_file or WATCH_LIMIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def inotify_watches_held() -> int | None:
    """The inotify watches this process holds (each inotify descriptor's ``inotify wd:``
    lines in /proc/self/fdinfo), or None where that cannot be read."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    held = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}", "rb") as info:
                held += info.read().count(b"\ninotify wd:")
        except OSError:
            continue  # closed meanwhile
    return held
