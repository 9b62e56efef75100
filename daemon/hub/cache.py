"""keepers' own bookkeeping of downloaded models.

The hub clients keep their own caches (TFHUB_CACHE_DIR, KAGGLEHUB_CACHE,
HF_HOME); this module remembers, per model, which source produced which
finished copy (a small JSON manifest per model under ``<cache>/hub/``), so
offline mode and "every source is down" can find a cached copy without a
single network call. It also holds the per-model file lock, hashing and the
safe tar extraction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock

from .failures import UnsafeArchive

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    """A finished, verified copy of a model that one source produced."""

    source: str  # SourceSpec.label
    kind: str
    ref: str
    path: str
    sha256: str | None
    bytes: int
    fetched_at: float


class HubCache:
    """The manifest, locks and scratch space under ``<cache_dir>/hub``."""

    def __init__(self, cache_dir: Path):
        self.root = Path(cache_dir) / "hub"

    # -- locations ---------------------------------------------------------------------------

    def model_dir(self, model: str) -> Path:
        return self.root / "files" / model

    def _manifest(self, model: str) -> Path:
        return self.root / "manifest" / f"{model}.json"

    def lock(self, model: str, timeout: float = -1) -> FileLock:
        """An inter-process lock held while one process fetches ``model``."""
        path = self.root / "locks" / f"{model}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path), timeout=timeout)

    # -- manifest ----------------------------------------------------------------------------

    def entries(self, model: str) -> dict[str, CacheEntry]:
        """source label → entry, for the copies recorded for ``model`` (may be stale; see :meth:`valid`)."""
        try:
            data = json.loads(self._manifest(model).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        out: dict[str, CacheEntry] = {}
        for label, raw in (data.get("sources") or {}).items():
            try:
                out[label] = CacheEntry(**raw)
            except TypeError:
                continue
        return out

    def valid(self, entry: CacheEntry) -> bool:
        """True when the copy is still on disk with the size it had (no hashing: that is `verify`)."""
        path = Path(entry.path)
        if not path.exists():
            return False
        try:
            return tree_size(path) == entry.bytes
        except OSError:
            return False

    def record(self, model: str, entry: CacheEntry) -> None:
        """Add a finished copy to the manifest (atomically: a crash leaves the old manifest)."""
        entries = {k: asdict(v) for k, v in self.entries(model).items()}
        entries[entry.source] = asdict(entry)
        self._write(model, entries)

    def forget(self, model: str, source: str | None = None) -> None:
        if source is None:
            self._manifest(model).unlink(missing_ok=True)
            return
        entries = {k: asdict(v) for k, v in self.entries(model).items() if k != source}
        self._write(model, entries)

    def models(self) -> list[str]:
        folder = self.root / "manifest"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def _write(self, model: str, entries: dict[str, dict]) -> None:
        target = self._manifest(model)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{model}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"model": model, "updated": time.time(), "sources": entries}, f, indent=1)
        os.replace(tmp, target)


# -- hashing and sizes -------------------------------------------------------------------------


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative name + content, in sorted order)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(path)).encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(file)))
    return h.hexdigest()


def tree_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- archives ----------------------------------------------------------------------------------


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract a tar archive into ``dest`` (created; replaced if present) and return it.

    Uses tarfile's ``filter='data'``: members with ``..``, absolute paths,
    links pointing outside, devices or odd modes are refused, and the whole
    archive with them (raises UnsafeArchive; nothing is left behind).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(scratch, filter="data")
    except (tarfile.FilterError, tarfile.ReadError, OSError) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise UnsafeArchive(str(archive.name), f"{type(exc).__name__}: {exc}") from exc
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    os.replace(scratch, dest)
    return dest
