"""What every learned-model adapter shares: the spec it is built from, range
normalisation, thread settings, and the errors a load can end in."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np

from ...errors import KeepersError
from ..base import Score

if TYPE_CHECKING:
    from ...imaging.decode import Decoded

log = logging.getLogger(__name__)


class SpecLike(Protocol):
    """The part of the hub's ``ModelSpec`` an adapter reads."""

    name: str
    task: str
    framework: str
    adapter: str
    output_range: tuple[float, float]


def options_of(spec: Any) -> Mapping[str, Any]:
    """The adapter options of a spec: the catalog's ``input`` mapping (the
    hub's ModelSpec) or ``options`` (an AdapterSpec)."""
    opts = getattr(spec, "options", None)
    if opts is None:
        opts = getattr(spec, "input", None)
    return opts or {}


@dataclass(frozen=True)
class AdapterSpec:
    """A stand-alone spec for building an adapter without the hub's catalog
    (the hub's ``ModelSpec`` has the same fields and works too)."""

    name: str
    task: str
    framework: str
    adapter: str
    output_range: tuple[float, float] = (0.0, 1.0)
    options: Mapping[str, Any] = field(default_factory=dict)


class ModelLoadError(KeepersError):
    """A fetched model file could not be turned into a working scorer."""

    def __init__(self, model: str, path: Path | str, problem: str, hint: str):
        self.model = model
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        super().__init__(f"model {model!r} ({self.path}): {problem}. {hint}")


class UnsafeCheckpoint(ModelLoadError):
    """A checkpoint that only loads by unpickling arbitrary Python objects.

    keepers never does that: unpickling runs whatever code the file names.
    """


def normalise(raw: float, output_range: Sequence[float]) -> float:
    """Map ``raw`` from the model's (lo, hi) range to 0..1, clipped."""
    lo, hi = float(output_range[0]), float(output_range[1])
    if hi == lo:
        raise ValueError(f"output range {output_range!r} is empty")
    value = (float(raw) - lo) / (hi - lo)
    if not np.isfinite(value):
        raise ValueError(f"model output {raw!r} is not a finite number")
    return min(1.0, max(0.0, value))


class LearnedScorer:
    """Base of the scoring adapters: subclasses implement ``_raw_batch``
    (decoded images -> one raw value each); this turns raws into Scores."""

    name: str
    task: str
    version: str

    def __init__(self, spec: SpecLike, version: str | None = None):
        self.spec = spec
        self.name = spec.name
        self.task = spec.task
        self.options = options_of(spec)
        self.version = version or str(self.options.get("version", "1"))
        self.output_range = tuple(float(v) for v in spec.output_range)
        self.batch_size = int(self.options.get("batch_size", 8))
        # One call at a time: TF/torch already use every intra-op thread they
        # were given; two worker threads calling in parallel only thrash.
        self._lock = threading.Lock()

    def _raw_batch(self, images: Sequence["Decoded"]) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, image: "Decoded") -> list[Score]:
        return self.score_batch([image])[0]

    def score_batch(self, images: Sequence["Decoded"]) -> list[list[Score]]:
        out: list[list[Score]] = []
        for start in range(0, len(images), max(1, self.batch_size)):
            chunk = images[start : start + max(1, self.batch_size)]
            with self._lock:
                raws = self._raw_batch(chunk)
            if len(raws) != len(chunk):
                raise RuntimeError(f"model {self.name!r} returned {len(raws)} values for {len(chunk)} images")
            out.extend([self._to_score(r)] for r in raws)
        return out

    def _to_score(self, raw: float) -> Score:
        return Score(self.name, self.task, float(raw), normalise(raw, self.output_range), self.version)

    def close(self) -> None:
        """Drop the framework objects (the model is garbage once unreferenced)."""


def thread_count(threads: int) -> int:
    """``models.threads`` in effect: 0 means one per core."""
    return threads if threads > 0 else max(1, os.cpu_count() or 1)


_configured: dict[str, int] = {}
_configure_lock = threading.Lock()


def configure_torch_threads(threads: int) -> None:
    """Give torch ``threads`` intra-op threads and one inter-op thread, once."""
    import torch

    n = thread_count(threads)
    with _configure_lock:
        if _configured.get("torch") == n:
            return
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work already ran: keep what is there
            pass
        _configured["torch"] = n
    log.debug("torch uses %d intra-op threads", n)


def configure_tf_threads(threads: int) -> None:
    """Give TensorFlow ``threads`` intra-op threads and one inter-op thread.

    TF accepts this only before its runtime starts; later calls keep the
    first setting (logged at debug)."""
    import tensorflow as tf

    n = thread_count(threads)
    with _configure_lock:
        if "tf" in _configured:
            return
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as exc:
            log.debug("TensorFlow threads already fixed: %s", exc)
        _configured["tf"] = n


def single_file(model: str, path: Path, suffixes: Sequence[str]) -> Path:
    """The model file at ``path``: the path itself, or the one file with one
    of ``suffixes`` inside the folder ``path`` (what a hub snapshot holds)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if len(found) == 1:
            return found[0]
        if not found:
            raise ModelLoadError(model, path, f"the folder holds no file ending in {', '.join(suffixes)}",
                                 "Point the model's source at the checkpoint file itself.")
        raise ModelLoadError(model, path, f"the folder holds {len(found)} candidate files ({', '.join(p.name for p in found[:4])})",
                             "Set the catalog entry's input.file to the one to load (input: {file: NAME}).")
    raise ModelLoadError(model, path, "does not exist", "Check the model's source path, or fetch it again.")
