"""The model hub: every model from an ordered list of sources.

``ModelHub.fetch(name)`` first looks for a copy it can use without the
network (a local source, or a finished copy a source produced earlier), in
source order. Failing that it walks the remote sources in order, retrying
each per the retry policy, skipping any whose circuit is open, verifying the
pinned sha256, and records every step. In offline mode only the first pass
runs. When nothing works it raises ModelUnavailable listing every source.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import paths
from ..config import Config
from ..errors import ConfigError, ModelUnavailable, SourceAttempt
from ..extras import install_hint
from ..store.writer import StoreWriter
from .cache import CacheEntry, HubCache, sha256_tree, tree_size
from .catalog import LOCAL_KINDS, ModelSpec, SourceSpec, load_catalog
from .failures import HashMismatch, SourceFailure, classify
from .policy import SourceHealthBoard, call_with_retries
from .record import HubRecorder
from .sources import FetchContext, fetcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedModel:
    """A model on local disk, ready for its adapter to load."""

    spec: ModelSpec
    path: Path  # a file or a folder
    source_kind: str  # local / tfhub / kaggle / hf / https
    source_ref: str
    sha256: str | None
    bytes: int
    seconds: float  # how long fetch() took
    from_cache: bool  # True: no download this time (an earlier copy, or a local file)


class ModelHub:
    """Fetches, verifies, caches and records the catalog's models."""

    def __init__(self, config: Config, writer: StoreWriter | None = None):
        self.config = config
        paths.export_client_caches(config.cache_path)
        self.catalog: dict[str, ModelSpec] = load_catalog(config)
        self.cache = HubCache(config.cache_path)
        self.recorder = HubRecorder(writer)
        self.health = SourceHealthBoard(config.models.health)

    @property
    def offline(self) -> bool:
        return self.config.models.offline

    # -- the catalog -----------------------------------------------------------------------------

    def enabled(self) -> list[ModelSpec]:
        """The models ``models.enabled`` asks for, in that order. Raises ConfigError for unknown names."""
        out = []
        for i, name in enumerate(self.config.models.enabled):
            if name not in self.catalog:
                raise ConfigError(self.config.source_file, f"models.enabled[{i}]",
                                  f"no model {name!r} in the catalog; known: {', '.join(sorted(self.catalog))} (see `keepers models list`)")
            out.append(self.catalog[name])
        return out

    def is_enabled(self, name: str) -> bool:
        """In models.enabled, or used by a built-in scorer that ``scorers`` lists (the face models)."""
        spec = self.catalog.get(name)
        return name in self.config.models.enabled or bool(spec and spec.scorer and spec.scorer in self.config.scorers)

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.catalog[name]
        except KeyError:
            raise ModelUnavailable(name, [], [f"no model {name!r} in the catalog; known: {', '.join(sorted(self.catalog))}"]) from None

    # -- the record ------------------------------------------------------------------------------

    def record_state(self, name: str, state: str, **fields: Any) -> None:
        """Set a model's state (e.g. an adapter: 'ready' with load_seconds, or 'failed' with last_error)."""
        spec = self.catalog.get(name)
        if spec is not None:
            fields.setdefault("task", spec.task)
            fields.setdefault("framework", spec.framework)
            fields.setdefault("enabled", int(self.is_enabled(name)))
        self.recorder.state(name, state, **fields)

    def record_event(self, name: str, kind: str, **fields: Any) -> None:
        """Add a model_events row (kind: attempt, retry, skip, fallback, success, failure, load, offline, cache)."""
        self.recorder.event(name, kind, **fields)

    def register(self) -> None:
        """Write a row for every catalog model: enabled ones 'pending', the rest 'disabled'.
        A built-in scorer's models are left to it: they were loaded before READY."""
        for name, spec in self.catalog.items():
            if spec.scorer and self.is_enabled(name):
                continue
            on = name in self.config.models.enabled
            self.record_state(name, "pending" if on else "disabled")

    # -- fetching --------------------------------------------------------------------------------

    def fetch(self, name: str, *, progress: bool = False) -> FetchedModel:
        """A local copy of model ``name``: from a local source, the cache, or the first source that works.

        Raises ModelUnavailable listing every source tried and what to do.
        """
        spec = self.spec(name)
        started = time.monotonic()
        retry = self.config.models.retry
        ctx = FetchContext(model=name, cache=self.cache, timeout=retry.timeout_seconds, progress=progress,
                           min_rate=retry.min_bytes_per_second, window=retry.slow_window_seconds)
        attempts: list[SourceAttempt] = []
        with self.cache.lock(name):
            found = self._without_network(spec, ctx, attempts, started)
            if found is not None:
                return found
            if self.offline:
                return self._give_up(spec, attempts, started, offline=True)
            self.record_state(name, "fetching", last_error=None)
            tries = 0
            for source in spec.sources:
                if source.kind in LOCAL_KINDS:
                    continue  # looked at in the first pass
                key = _health_key(source)
                wait_left = self.health.open_for(key)
                if wait_left > 0:
                    message = f"skipped: failed {self.config.models.health.failures} times recently; tried again in {wait_left:.0f} s"
                    attempts.append(SourceAttempt(source.label, "skipped", "CircuitOpen", message))
                    self.record_event(name, "skip", source=source.label, error_class="CircuitOpen", message=message)
                    continue
                self.record_event(name, "attempt", source=source.label)
                t0 = time.monotonic()
                counter = {"n": 0}

                def once(source: SourceSpec = source) -> Path:
                    counter["n"] += 1
                    return self._fetch_verified(spec, source, ctx)

                def on_retry(attempt: int, failure: SourceFailure, wait: float, source: SourceSpec = source) -> None:
                    log.info("model %s: %s failed (%s), retry %d in %.1f s", name, source.label, failure, attempt, wait)
                    self.record_event(name, "retry", source=source.label, seconds=wait, error_class=failure.error_class, message=failure.message)

                try:
                    path = call_with_retries(once, self.config.models.retry, on_retry)
                except SourceFailure as failure:
                    tries += counter["n"]
                    opened = self.health.failed(key)
                    took = time.monotonic() - t0
                    attempts.append(SourceAttempt(source.label, "failed", failure.error_class, failure.message))
                    self.record_event(name, "fallback", source=source.label, seconds=took, error_class=failure.error_class,
                                      message=failure.message + (" (source skipped for a while)" if opened else ""))
                    log.warning("model %s: %s failed after %d tr%s: %s", name, source.label, counter["n"], "y" if counter["n"] == 1 else "ies", failure)
                    continue
                tries += counter["n"]
                self.health.succeeded(key)
                entry = self._remember(name, source, path)
                return self._served(spec, source.kind, source.ref, entry.path, entry.sha256, entry.bytes, started, False, tries)
            return self._give_up(spec, attempts, started, offline=False, tries=tries)

    def _without_network(self, spec: ModelSpec, ctx: FetchContext, attempts: list[SourceAttempt], started: float) -> FetchedModel | None:
        cached = self.cache.entries(spec.name)
        for source in spec.sources:
            if source.kind in LOCAL_KINDS:
                try:
                    path = self._fetch_verified(spec, source, ctx)
                except Exception as exc:  # noqa: BLE001 - any failure means: try the next source
                    failure = classify(exc)
                    attempts.append(SourceAttempt(source.label, "failed", failure.error_class, failure.message))
                    self.record_event(spec.name, "fallback", source=source.label, error_class=failure.error_class, message=failure.message)
                    continue
                return self._served(spec, source.kind, source.ref, str(path), source.sha256, tree_size(path), started, True, 1)
            entry = cached.get(source.label)
            if entry is not None and self.cache.valid(entry):
                self.record_event(spec.name, "cache", source=source.label, message=f"using the copy at {entry.path}")
                return self._served(spec, source.kind, source.ref, entry.path, entry.sha256, entry.bytes, started, True, 0, cached=True)
        return None

    def _fetch_verified(self, spec: ModelSpec, source: SourceSpec, ctx: FetchContext) -> Path:
        path = fetcher(source.kind)(source, ctx)
        if source.sha256 and source.kind != "https":  # https verifies before its rename
            digest = sha256_tree(path)
            if digest != source.sha256:
                if source.kind not in LOCAL_KINDS:  # never delete the user's own file, or a package's
                    _remove(path)
                raise HashMismatch(f"{source.label} ({path})", source.sha256, digest)
        return path

    def _remember(self, model: str, source: SourceSpec, path: Path) -> CacheEntry:
        digest = sha256_tree(path)
        entry = CacheEntry(source=source.label, kind=source.kind, ref=source.ref, path=str(path), sha256=digest,
                           bytes=tree_size(path), fetched_at=time.time())
        self.cache.record(model, entry)
        return entry

    def _served(self, spec: ModelSpec, kind: str, ref: str, path: str, sha256: str | None, size: int, started: float,
                from_cache: bool, tries: int, *, cached: bool = False) -> FetchedModel:
        seconds = time.monotonic() - started
        label = f"{kind} {ref}"
        self.record_state(spec.name, "cached", source="cache" if cached else kind, source_ref=label if cached else ref,
                          cache_path=path, sha256=sha256, bytes=size, attempts=tries, last_error=None)
        self.record_event(spec.name, "success", source=label, seconds=seconds, message=f"{'cached copy' if cached else 'served'} at {path}")
        log.info("model %s: %s%s (%s)", spec.name, label, " (cached copy)" if cached else "", path)
        return FetchedModel(spec=spec, path=Path(path), source_kind=kind, source_ref=ref, sha256=sha256, bytes=size,
                            seconds=seconds, from_cache=from_cache)

    def _give_up(self, spec: ModelSpec, attempts: list[SourceAttempt], started: float, *, offline: bool, tries: int = 0) -> FetchedModel:
        if offline:
            for source in spec.sources:
                if source.kind not in LOCAL_KINDS:
                    attempts.append(SourceAttempt(source.label, "offline", "NotCached", "no cached copy, and offline mode allows no download"))
        error = ModelUnavailable(spec.name, attempts, _hints(spec, attempts, offline, self.config.models.retry.timeout_seconds))
        state = "offline-unavailable" if offline else "failed"
        summary = "; ".join(f"{a.source}: {a.error_class}" for a in attempts) or "no source configured"
        self.record_state(spec.name, state, attempts=tries, last_error=summary)
        self.record_event(spec.name, "offline" if offline else "failure", seconds=time.monotonic() - started,
                          error_class="ModelUnavailable", message=summary)
        raise error


def _health_key(source: SourceSpec) -> str:
    if source.kind in ("tfhub", "https"):
        return f"{source.kind} {urlparse(source.ref).netloc}"
    return source.kind


def _remove(path: Path) -> None:
    target = Path(path)
    real = target.resolve()
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
        if real != target and real.is_file():  # huggingface_hub: a snapshot link to a blob
            real.unlink(missing_ok=True)


def _hints(spec: ModelSpec, attempts: list[SourceAttempt], offline: bool, timeout_seconds: float) -> list[str]:
    hints: list[str] = []
    classes = {a.error_class for a in attempts}
    if "Timeout" in classes:
        # not "run keepers models fetch": that may be the very command that timed out
        hints.append(f"a source did not answer within models.retry.timeout_seconds ({timeout_seconds:g} s): "
                     "raise it in keepers.yaml for a slow connection or a large model, then try again")
    if offline:
        hints.append("leave offline mode to download it: set models.offline: false, unset KEEPERS_OFFLINE and "
                      "HF_HUB_OFFLINE, and drop --offline")
    if any(a.source.startswith("kaggle") and a.error_class in ("HTTP 401", "HTTP 403") for a in attempts):
        hints.append("Kaggle refused the download: public models (MUSIQ, VILA) need no token, so check the handle and its "
                     "version; for a private or gated model create an API token at kaggle.com/settings and set KAGGLE_API_TOKEN "
                     "(or KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json), and accept the model's licence on its page")
    if any(a.source.startswith("hf") and a.error_class in ("HTTP 401", "HTTP 403") for a in attempts):
        hints.append("Hugging Face refused the download: log in with `hf auth login` or set HF_TOKEN")
    if "HashMismatch" in classes:
        hints.append("a download did not match its pinned sha256: check the mirror, or update sha256 in the catalog")
    if "ClientMissing" in classes:
        for extra in sorted({"torch" if a.source.startswith("hf") else "tf" for a in attempts if a.error_class == "ClientMissing"}):
            hints.append(install_hint(extra))
    if not offline and "Timeout" not in classes:
        hints.append(f"fetch it ahead of time on a machine with network access: keepers models fetch {spec.name}")
    hints.append(f"or point keepers at a copy you have: in keepers.yaml, models.sources.{spec.name}: "
                 f"[{{kind: local, path: /path/to/{spec.name}}}]")
    return hints
