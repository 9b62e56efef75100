"""Learned models at run time: load in the background, report, retry, backfill.

:class:`ModelManager` loads the enabled models through the hub side by side
on background threads (so one slow download holds up no other model) while
the daemon is already READY and scoring with the built-in scorers. Each ready scorer is handed to the pipeline; a comparator
and embedders are kept for the album. A start-up summary (ready from which
source in how long / failed and why / disabled) is logged, and each model's
row in ``models`` says the same. A model that failed is retried by an
APScheduler job at growing intervals (``models.retry_minutes``) and on the
``retry-model`` command; when it becomes ready, the photos scored without it
are backfilled.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ModelUnavailable
from .backfill import Backfiller, BackfillResult, default_decoder
from .models import ModelLoadError, kind_of, load_adapter

if TYPE_CHECKING:
    from ..config import Config
    from ..hub import FetchedModel, ModelHub
    from ..store.writer import StoreWriter

log = logging.getLogger(__name__)

RETRY_JOB_PREFIX = "retry-model:"
EMBED_JOB_ID = "embed-new-photos"
#: how often photos scored since the last pass get their embeddings (the
#: pipeline runs scorers only; embedders catch up on this schedule)
EMBED_CATCH_UP_SECONDS = 60.0
#: models fetched and loaded at the same time
LOAD_WORKERS = 4


@dataclass(frozen=True)
class ModelOutcome:
    """How one model's latest load went."""

    name: str
    state: str  # ready, failed, offline-unavailable, disabled, pending
    source: str | None = None  # kind of the source that served it (local, tfhub, kaggle, hf, https, cache)
    source_ref: str | None = None
    fetch_seconds: float | None = None
    load_seconds: float | None = None
    error: str | None = None
    attempt: int = 0  # loads tried so far (1 = the start-up load)

    def describe(self) -> str:
        if self.state == "ready":
            total = (self.fetch_seconds or 0.0) + (self.load_seconds or 0.0)
            return (f"{self.name}: ready from {self.source} {self.source_ref} in {total:.1f} s "
                    f"(fetch {self.fetch_seconds or 0.0:.1f} s, load {self.load_seconds or 0.0:.1f} s)")
        if self.state == "disabled":
            return f"{self.name}: disabled (not in models.enabled)"
        if self.state == "pending":
            return f"{self.name}: still loading"
        return f"{self.name}: {self.state}: {self.error}"


class ModelManager:
    """Owns the learned models of a running daemon.

    ``add_scorer`` hands a ready scorer to the pipeline. ``scheduler`` is an
    APScheduler scheduler for the retry jobs (None: retries only on
    :meth:`retry`). ``on_strict_failure`` is called with the summary when
    ``models.strict`` is set and an enabled model could not be had (the
    service exits non-zero)."""

    def __init__(self, config: "Config", hub: "ModelHub", writer: "StoreWriter", *,
                 add_scorer: Callable[[Any], None], scheduler: Any = None,
                 on_strict_failure: Callable[[list[ModelOutcome]], None] | None = None,
                 backfiller: Backfiller | None = None):
        self.config = config
        self.hub = hub
        self.writer = writer
        self.add_scorer = add_scorer
        self.scheduler = scheduler
        self.on_strict_failure = on_strict_failure
        self.stop_event = threading.Event()
        self.backfiller = backfiller or Backfiller(
            writer, config.weights.as_dict(), decode=default_decoder(config.decode_size),
            batch_size=config.models.batch_size, stop=self.stop_event)
        self._startup_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-startup")
        self._loader = ThreadPoolExecutor(max_workers=LOAD_WORKERS, thread_name_prefix="model-loader")
        self._load_locks: dict[str, threading.Lock] = {}
        self._loads: set[Future[ModelOutcome]] = set()  # queued or running loads (wait_idle waits for them)
        self._backfill = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-backfill")
        self._lock = threading.Lock()
        self._outcomes: dict[str, ModelOutcome] = {}
        self._loaded: dict[str, Any] = {}
        self._attempts: dict[str, int] = {}
        self._startup_done = threading.Event()
        self._startup: Future[list[ModelOutcome]] | None = None
        self.backfills: list[BackfillResult] = []

    # -- start-up -------------------------------------------------------------------------

    def start(self) -> "Future[list[ModelOutcome]]":
        """Start loading every enabled model in the background; returns at once.

        The future resolves to the start-up summary once every model is ready or failed."""
        if self._startup is None:
            enabled = [spec.name for spec in self.hub.enabled()]
            self.hub.register()
            with self._lock:
                for name, spec in self.hub.catalog.items():
                    if spec.scorer and self.hub.is_enabled(name):
                        continue  # loaded by its built-in scorer before READY (the face models)
                    self._outcomes[name] = ModelOutcome(name, "pending" if name in enabled else "disabled")
            self._startup = self._startup_runner.submit(self._load_all, enabled)
            if self.scheduler is not None:
                self.scheduler.add_job(self.embed_new_photos, "interval", seconds=EMBED_CATCH_UP_SECONDS, id=EMBED_JOB_ID,
                                       name="embed new photos", replace_existing=True, coalesce=True, max_instances=1)
        return self._startup

    def wait_startup(self, timeout: float | None = None) -> list[ModelOutcome]:
        """Block until the start-up loads finished; returns the summary."""
        assert self._startup is not None, "start() first"
        return self._startup.result(timeout)

    def _load_all(self, names: list[str]) -> list[ModelOutcome]:
        wait([self._submit_load(name) for name in names])
        summary = self.summary()
        self._log_summary(summary)
        self._startup_done.set()
        failed = [o for o in summary if o.state in ("failed", "offline-unavailable")]
        if failed and self.config.models.strict and self.on_strict_failure is not None:
            self.on_strict_failure(summary)
        return summary

    def _log_summary(self, summary: list[ModelOutcome]) -> None:
        if not summary:
            return
        log.info("learned models at start-up (%d):", len(summary))
        for outcome in summary:
            level = logging.WARNING if outcome.state in ("failed", "offline-unavailable") else logging.INFO
            log.log(level, "  %s", outcome.describe().replace("\n", " | "))

    # -- loading one model ----------------------------------------------------------------

    def _submit_load(self, name: str) -> "Future[ModelOutcome]":
        future = self._loader.submit(self._load, name)
        with self._lock:
            self._loads.add(future)
        future.add_done_callback(self._load_finished)
        return future

    def _load_finished(self, future: "Future[ModelOutcome]") -> None:
        with self._lock:
            self._loads.discard(future)

    def _load(self, name: str) -> ModelOutcome:
        with self._lock:
            lock = self._load_locks.setdefault(name, threading.Lock())
        with lock:  # one load of a model at a time (a retry while the start-up load still runs waits for it)
            return self._load_once(name)

    def _load_once(self, name: str) -> ModelOutcome:
        with self._lock:
            if name in self._loaded:  # a retry queued twice: the first one already made it
                return self._outcomes[name]
            if self.stop_event.is_set():
                return self._outcomes.get(name) or ModelOutcome(name, "pending")
            attempt = self._attempts.get(name, 0) + 1
            self._attempts[name] = attempt
        spec = self.hub.spec(name)
        fetched: FetchedModel | None = None
        try:
            fetched = self.hub.fetch(name)
            started = time.monotonic()
            model = load_adapter(spec, fetched.path, threads=self.config.models.threads,
                                 version=(fetched.sha256 or "")[:12] or None, decode_size=self.config.decode_size)
            load_seconds = time.monotonic() - started
        except ModelUnavailable as exc:
            state = "offline-unavailable" if self.config.models.offline else "failed"
            log.debug("model %s: %s", name, exc)
            return self._failed(name, state, unavailable_reason(exc), attempt, fetched)
        except ModelLoadError as exc:
            self.hub.record_state(name, "failed", last_error=str(exc))
            self.hub.record_event(name, "load", source=_label(fetched), error_class=type(exc).__name__, message=str(exc))
            return self._failed(name, "failed", str(exc), attempt, fetched)
        except Exception as exc:  # noqa: BLE001 - a broken model must never take the daemon down
            message = f"loading failed unexpectedly: {type(exc).__name__}: {exc}"
            log.exception("model %s: %s", name, message)
            self.hub.record_state(name, "failed", last_error=message)
            return self._failed(name, "failed", message, attempt, fetched)
        self.hub.record_state(name, "ready", load_seconds=round(fetched.seconds + load_seconds, 3), version=getattr(model, "version", None),
                              last_error=None)
        self.hub.record_event(name, "load", source=_label(fetched), seconds=load_seconds, message=f"{kind_of(model)} ready")
        outcome = ModelOutcome(name, "ready", fetched.source_kind, fetched.source_ref, fetched.seconds, load_seconds, None, attempt)
        with self._lock:
            self._outcomes[name] = outcome
            self._loaded[name] = model
        self._cancel_retry(name)
        if kind_of(model) == "scorer":
            self.add_scorer(model)
        if self._startup_done.is_set():
            log.info("model %s", outcome.describe())
        if kind_of(model) != "comparator":
            self._backfill.submit(self._run_backfill, model)
        return outcome

    def _failed(self, name: str, state: str, error: str, attempt: int, fetched: "FetchedModel | None") -> ModelOutcome:
        outcome = ModelOutcome(name, state, fetched.source_kind if fetched else None, fetched.source_ref if fetched else None,
                               fetched.seconds if fetched else None, None, error, attempt)
        with self._lock:
            self._outcomes[name] = outcome
        if self._startup_done.is_set():
            log.warning("model %s still unavailable (try %d): %s", name, attempt, error.splitlines()[0])
        self._schedule_retry(name, attempt)
        return outcome

    def _run_backfill(self, model: Any) -> BackfillResult:
        if self.stop_event.is_set():
            return BackfillResult(model.name, 0, 0, 0.0)
        try:
            result = self.backfiller.run(model)
        except Exception:  # noqa: BLE001 - logged; the next ready event or restart tries again
            log.exception("backfill of %s failed", model.name)
            raise
        self.backfills.append(result)
        return result

    def embed_new_photos(self) -> list["Future[BackfillResult]"]:
        """Queue an embedding pass for every ready embedder (photos scored since the last pass)."""
        if self.stop_event.is_set():
            return []
        return [self._backfill.submit(self._run_backfill, m) for m in self.embedders()]

    # -- retries --------------------------------------------------------------------------

    def retry_delay_minutes(self, attempt: int) -> float:
        """Minutes before retry number ``attempt`` (1 = after the first failure); the last interval repeats."""
        steps = self.config.models.retry_minutes or (5.0,)
        return float(steps[min(attempt, len(steps)) - 1])

    def _schedule_retry(self, name: str, attempt: int) -> None:
        if self.scheduler is None or self.stop_event.is_set():
            return
        minutes = self.retry_delay_minutes(attempt)
        when = datetime.now() + timedelta(minutes=minutes)
        self.scheduler.add_job(self._retry_job, "date", run_date=when, args=[name], id=RETRY_JOB_PREFIX + name,
                               name=f"retry model {name}", replace_existing=True, misfire_grace_time=None)
        log.info("model %s: next try in %s", name, f"{minutes:g} min" if minutes >= 1 else f"{minutes * 60:.0f} s")

    def _cancel_retry(self, name: str) -> None:
        if self.scheduler is None:
            return
        try:
            self.scheduler.remove_job(RETRY_JOB_PREFIX + name)
        except Exception:  # noqa: BLE001 - JobLookupError: nothing scheduled
            pass

    def _retry_job(self, name: str) -> None:
        self.retry(name)

    def retry(self, name: str | None = None) -> list["Future[ModelOutcome]"]:
        """Try again now (in the background) to load ``name``, or every model
        that is not ready when ``name`` is None or empty. Returns the futures
        of the loads. Raises ModelUnavailable for a name not in the catalog
        and ValueError for one that is not enabled."""
        if name:
            self.hub.spec(name)
            if name not in self.config.models.enabled:
                raise ValueError(f"model {name!r} is not enabled; add it to models.enabled in keepers.yaml first")
            names = [name]
        else:
            names = [n for n, o in self.outcomes().items() if o.state in ("failed", "offline-unavailable")]
        futures = []
        for n in names:
            with self._lock:
                if n in self._loaded:
                    continue
            self._cancel_retry(n)
            futures.append(self._submit_load(n))
        return futures

    # -- what others read -----------------------------------------------------------------

    def outcomes(self) -> dict[str, ModelOutcome]:
        with self._lock:
            return dict(self._outcomes)

    def summary(self) -> list[ModelOutcome]:
        """Every catalog model's latest outcome: enabled ones in models.enabled order, then disabled."""
        outcomes = self.outcomes()
        enabled = [outcomes[n] for n in self.config.models.enabled if n in outcomes]
        return enabled + [o for n, o in sorted(outcomes.items()) if n not in self.config.models.enabled]

    def loaded(self, name: str) -> Any | None:
        with self._lock:
            return self._loaded.get(name)

    def scorers(self) -> list[Any]:
        """The ready learned scorers (for a batch run that waits for them with :meth:`wait_startup`)."""
        with self._lock:
            return [m for m in self._loaded.values() if kind_of(m) == "scorer"]

    def comparator(self) -> Any | None:
        """The ready pairwise comparator (``compare(a, b) -> (winner, confidence)``), or None."""
        with self._lock:
            return next((m for m in self._loaded.values() if kind_of(m) == "comparator"), None)

    def embedders(self) -> list[Any]:
        with self._lock:
            return [m for m in self._loaded.values() if kind_of(m) == "embedder"]

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until queued loads and backfills have finished (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        for _ in range(2):  # a load queues a backfill; a backfill queues nothing
            self._startup_runner.submit(lambda: None).result(max(0.0, deadline - time.monotonic()))
            with self._lock:
                loads = list(self._loads)
            if wait(loads, max(0.0, deadline - time.monotonic())).not_done:
                raise TimeoutError(f"model loads still running after {timeout:g} s")
            self._backfill.submit(lambda: None).result(max(0.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop retrying and backfilling; waits for the current step to finish."""
        self.stop_event.set()
        if self.scheduler is not None:
            for name in list(self._attempts):
                self._cancel_retry(name)
            try:
                self.scheduler.remove_job(EMBED_JOB_ID)
            except Exception:  # noqa: BLE001 - not scheduled
                pass
        self._loader.shutdown(wait=True, cancel_futures=True)
        self._startup_runner.shutdown(wait=True, cancel_futures=True)
        self._backfill.shutdown(wait=True, cancel_futures=True)


def unavailable_reason(exc: ModelUnavailable) -> str:
    """One line: what each source said, e.g. 'tfhub https://...: HTTP 503 (...); kaggle ...: HTTP 401 (...)'."""
    if not exc.attempts:
        return str(exc).splitlines()[0]
    return "; ".join(f"{a.source}: {a.error_class} ({a.message})" for a in exc.attempts)


def _label(fetched: "FetchedModel | None") -> str | None:
    return f"{fetched.source_kind} {fetched.source_ref}" if fetched else None
