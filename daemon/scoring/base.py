"""The scorer interface every built-in measure and learned model implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from ..imaging.decode import Decoded

Task = Literal["aesthetic", "technical", "portrait", "comparator", "embedding"]
GROUPS: tuple[str, ...] = ("aesthetic", "technical", "portrait")


@dataclass(frozen=True)
class Score:
    """One measurement of one photo.

    ``raw`` is what was measured, in the scorer's own unit (kept for the
    record); ``normalised`` maps it to 0..1 where 1 is better. ``detail``
    carries extra measured facts (e.g. number of faces) for pick reasons.
    """

    name: str
    task: str
    raw: float
    normalised: float
    version: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 <= self.normalised <= 1.0):
            raise ValueError(f"{self.name}: normalised score {self.normalised!r} is outside 0..1")


@runtime_checkable
class Scorer(Protocol):
    """Measures photos. ``score`` returns the scores it measured, or an empty
    list when the measure does not apply to this photo (no face found: no
    portrait score). It raises for a real failure; the pipeline records it.

    A scorer whose scores are named other than itself lists them in
    ``outputs`` (see :func:`outputs`); ``version`` changes whenever what it
    measures or how it maps to 0..1 changes, and photos scored by an older
    version are scored again."""

    name: str
    task: str
    version: str

    def score(self, image: "Decoded") -> list[Score]: ...


class BatchScorer(Protocol):
    """A scorer that is faster on several photos at once (learned models)."""

    name: str
    task: str
    version: str

    def score(self, image: "Decoded") -> list[Score]: ...

    def score_batch(self, images: Sequence["Decoded"]) -> list[list[Score]]: ...


def outputs(scorer: object) -> tuple[str, ...]:
    """The score names a scorer writes: its ``outputs``, else its own name."""
    return tuple(getattr(scorer, "outputs", None) or (getattr(scorer, "name"),))
