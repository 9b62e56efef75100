"""The composite score: weighted groups, renormalised over the groups present."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

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
