"""The learned models of `keepers run --once`: load every enabled one before the
scan (saying how each load went), score with the ones that loaded, and before
exiting give them the photos an earlier run scored without them.

The daemon's :class:`~daemon.scoring.preload.ModelManager` does the work, so a
photo gets the same scores and composite from `run --once` as from the daemon.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..config import Config
    from ..scoring.pipeline import Pipeline
    from ..scoring.preload import ModelManager, ModelOutcome
    from ..store.writer import StoreWriter

#: how often a model that is still loading (a long download) is mentioned
STILL_LOADING_SECONDS = 15.0
#: how long the end of the run waits for the models' backfills and embeddings, at most
FINISH_TIMEOUT_SECONDS = 24 * 3600.0


class OnceModels:
    """The enabled learned models for one `run --once`: :meth:`load` before the scan, :meth:`finish` after it."""

    def __init__(self, config: "Config", writer: "StoreWriter", pipeline: "Pipeline", *, err: TextIO | None = None):
        self.config = config
        self.writer = writer
        self.pipeline = pipeline
        self.err = err or sys.stderr
        self.manager: "ModelManager | None" = None
        self.summary: list["ModelOutcome"] = []

    def load(self) -> bool:
        """Load every enabled model, printing each outcome as it comes; ready scorers join the
        pipeline. False when ``models.strict`` is set and one could not be had."""
        enabled = list(self.config.models.enabled)
        if not enabled:
            return True
        try:
            from ..hub import ModelHub
            from ..scoring.preload import ModelManager

            hub = ModelHub(self.config, self.writer)
        except Exception as exc:  # noqa: BLE001 - a broken catalog must not stop the built-in scorers
            self._say(f"the model catalog could not be read ({exc}); scoring with the built-in scorers only")
            return not self.config.models.strict
        self.manager = ModelManager(self.config, hub, self.writer, add_scorer=self.pipeline.add_scorer)
        self._say(f"loading {len(enabled)} learned model(s): {', '.join(enabled)}")
        started = time.monotonic()
        future = self.manager.start()
        told: set[str] = set()
        next_note = started + STILL_LOADING_SECONDS
        while True:
            try:
                self.summary = future.result(timeout=0.5)
                break
            except FutureTimeout:
                pass
            finally:
                told |= self._tell(enabled, told)
            if time.monotonic() >= next_note:
                waiting = [n for n in enabled if n not in told]
                self._say(f"  still loading {', '.join(waiting)} ({time.monotonic() - started:.0f} s)")
                next_note += STILL_LOADING_SECONDS
        failed = self.failed()
        if failed:
            self._say(f"scoring without {', '.join(o.name for o in failed)}"
                      + (f"; with {', '.join(self.ready())}" if self.ready() else "") + " and the built-in scorers")
        return not (failed and self.config.models.strict)

    def _tell(self, enabled: list[str], told: set[str]) -> set[str]:
        outcomes = self.manager.outcomes() if self.manager else {}
        newly = {n for n in enabled if n not in told and outcomes.get(n) is not None and outcomes[n].state != "pending"}
        for name in enabled:
            if name in newly:
                self._say(f"  {outcomes[name].describe()}")
        return newly

    def failed(self) -> list["ModelOutcome"]:
        return [o for o in self.summary if o.state in ("failed", "offline-unavailable")]

    def ready(self) -> list[str]:
        return [o.name for o in self.summary if o.state == "ready"]

    def comparator(self) -> Any | None:
        """The ready pairwise comparator (for the album), or None."""
        return self.manager.comparator() if self.manager else None

    def finish(self) -> None:
        """After the pipeline drained: the photos scored before without a model get its score (and
        composite), photos without an embedding get one, as the daemon's backfill does; then stop."""
        if self.manager is None:
            return
        try:
            for future in self.manager.embed_new_photos():
                future.result(FINISH_TIMEOUT_SECONDS)
            self.manager.wait_idle(FINISH_TIMEOUT_SECONDS)
        finally:
            self.manager.stop()
        added: dict[str, list[int]] = {}
        for result in self.manager.backfills:
            counts = added.setdefault(result.model, [0, 0])
            counts[0] += result.scored
            counts[1] += result.failed
        for model, (scored, failed) in added.items():
            if scored or failed:
                self._say(f"{model}: added to {scored} photo(s) scored before without it" + (f", {failed} failed" if failed else ""))

    def close(self) -> None:
        """Stop loading and backfilling (a run that ends early)."""
        if self.manager is not None:
            self.manager.stop()

    def _say(self, line: str) -> None:
        print(line, file=self.err, flush=True)


__all__ = ["OnceModels"]
