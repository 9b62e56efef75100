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
    groups: dict[str, float]  # group -> mean of its normalised scores


def group_scores(scores: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Mean normalised score per group from (task, normalised) pairs; other tasks are ignored.

    Every score of a group weighs the same. For the technical group that was chosen
    on bench/quality.py: each built-in measure answers one defect, so the plain mean
    falls with every defect the bench grades, and a person reads it off the scores
    the dashboard's detail pane lists."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for task, value in scores:
        if task in GROUPS and value is not None and not math.isnan(value):
            sums[task] = sums.get(task, 0.0) + float(value)
            counts[task] = counts.get(task, 0) + 1
    return {g: sums[g] / counts[g] for g in GROUPS if g in counts}


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
