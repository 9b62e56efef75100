"""The composite score: weighted groups, renormalised over the groups present."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .base import GROUPS


@dataclass(frozen=True)
class Composite:
    value: float | None  # None when no group has a score
    coverage: tuple[str, ...]  # groups that contributed, in GROUPS order
    groups: dict[str, float]  # group -> its score (group_scores)


def group_scores(scores: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Each group's score from (task, normalised) pairs; other tasks are ignored.

    Aesthetic and portrait: the plain mean (several opinions of one thing; the
    portrait scores are one face's sharpness, eyes and smile, each worth the same).

    Technical: the power mean of exponent -2 (a soft minimum) of its measures, each
    floored at 0.02: ``mean(v ** -2) ** -0.5``. Each built-in measure answers one
    defect, and a photo is as good as its worst one: a frame ruined by camera shake is
    ruined however clean its exposure, noise and compression are, yet a plain mean of
    a sharpness of 0.1 and five measures at 1 still says 0.85. The soft minimum says
    0.24; one measure at 0.5 and five at 1, 0.64 (plain mean 0.92); all at 0.9, 0.9.
    Chosen on bench/quality.py against the plain, geometric and harmonic means, power
    means down to -6 and blends of them with the plain mean. With the measures of the
    same release, the per-photo composite's worst family reads 0.66 with the plain
    mean, 0.77 at -1, 0.83 at -1.5 and 0.86 from -2 down; below -2 the sharp frame's
    median lead in the bench's bursts grows (0.42 at -2, 0.46 at -3) but the lowest
    measure decides more alone, and the demo set's closest burst (a night sky against
    a reframed, softened copy, both held down by exposure) becomes a tie at -3.
    The dashboard's detail pane names the measure that holds a photo's group down most."""
    values: dict[str, list[float]] = {}
    for task, value in scores:
        if task in GROUPS and value is not None and not math.isnan(value):
            values.setdefault(task, []).append(float(value))
    return {g: _technical(values[g]) if g == "technical" else sum(values[g]) / len(values[g]) for g in GROUPS if g in values}


#: the technical group's power mean: its exponent, and the floor each measure is raised to
TECHNICAL_POWER, TECHNICAL_FLOOR = -2.0, 0.02


def _technical(values: list[float]) -> float:
    inverse = sum(max(v, TECHNICAL_FLOOR) ** TECHNICAL_POWER for v in values) / len(values)
    return min(1.0, inverse ** (1.0 / TECHNICAL_POWER))


def composite(groups: Mapping[str, float], weights: Mapping[str, float]) -> Composite:
    """Weighted mean of the groups present, weights renormalised over them.

    A group with weight 0 does not count toward coverage. With no usable group
    the value is None (never a division by zero).
    """
    present = [g for g in GROUPS if g in groups and weights.get(g, 0.0) > 0]
    total = sum(weights[g] for g in present)
    if not present or total <= 0:
        return Composite(None, (), dict(groups))
    value = sum(weights[g] * groups[g] for g in present) / total
    return Composite(min(1.0, max(0.0, value)), tuple(present), dict(groups))


def composite_values(many: Sequence[Mapping[str, Any]], weights: Mapping[str, float]) -> list[tuple[float | None, tuple[str, ...]]]:
    """``(value, coverage)`` of :func:`composite` for many photos at once, computed in numpy
    (a full reselection recomputes a million photos' composites under the current weights).

    Equal, float for float, to ``composite``'s: the same sums in the same order (a group
    that is missing adds 0.0, which changes no sum), the same clamping. A group whose
    value is not a number counts as missing."""
    n = len(many)
    used = [g for g in GROUPS if weights.get(g, 0.0) > 0]
    total = np.zeros(n)
    weighted = np.zeros(n)
    present = []
    for g in used:
        values = [d.get(g) for d in many]
        have = np.fromiter((isinstance(v, (int, float)) for v in values), dtype=bool, count=n)
        x = np.fromiter((v if h else 0.0 for v, h in zip(values, have.tolist())), dtype=np.float64, count=n)
        total = total + np.where(have, weights[g], 0.0)
        weighted = weighted + np.where(have, weights[g] * x, 0.0)
        present.append(have)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = weighted / total
    value = np.where(value > 0.0, value, 0.0)  # max(0.0, value), NaN included
    value = np.where(value < 1.0, value, 1.0)  # min(1.0, ...)
    coverage_of: dict[tuple[bool, ...], tuple[str, ...]] = {}
    out: list[tuple[float | None, tuple[str, ...]]] = []
    flags = np.stack(present, axis=1).tolist() if present else [[]] * n
    for v, t, row in zip(value.tolist(), total.tolist(), flags):
        key = tuple(row)
        coverage = coverage_of.get(key)
        if coverage is None:
            coverage = coverage_of[key] = tuple(g for g, h in zip(used, row) if h)
        out.append((v, coverage) if coverage and t > 0 else (None, ()))
    return out
