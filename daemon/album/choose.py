"""Choosing the pick of one cluster: composite, comparator tie-break, floors, manual choices.

``choose_cluster`` is pure apart from the comparator it is handed; it returns
the photos the cluster puts in the album and, for each, the reason as a
JSON-ready dict (``decided_by`` is ``composite``, ``comparator``, ``pin`` or
``set``).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

from ..config import Floors
from ..scoring.base import GROUPS
from ..scoring.composite import composite

log = logging.getLogger(__name__)

ClusterKind = Literal["cluster", "bracket", "panorama"]


@runtime_checkable
class Comparator(Protocol):
    """A pairwise model: ``compare(a, b)`` returns (0 when ``a`` is the better
    photo, 1 when ``b`` is; confidence 0..1)."""

    name: str

    def compare(self, a: Path, b: Path) -> tuple[int, float]: ...


class Member(NamedTuple):
    """One photo of a cluster as the chooser sees it (a tuple: a full reselection makes one a photo)."""

    id: int
    path: str
    taken_at: float = 0.0
    composite: float | None = None
    groups: Mapping[str, float] = MappingProxyType({})
    coverage: tuple[str, ...] = ()
    floor_scores: Mapping[str, float] = MappingProxyType({})  # eyes_open, sharpness (normalised)
    manual: str | None = None  # 'pin', 'reject' or None
    companions: tuple[str, ...] = ()  # RAW/JPEG files of the same photo


class Choice(NamedTuple):
    image_id: int
    rank: int
    composite: float | None
    reason: dict[str, Any]
    forced: bool = False


class ClusterPick(NamedTuple):
    """What one cluster contributes to the album (possibly nothing)."""

    cluster: int
    kind: ClusterKind
    choices: tuple[Choice, ...]
    unit_score: float | None


#: what falling below each floor means, in the words the reason uses
FLOOR_WORDS = {"eyes_open": "eyes closed", "sharpness": "not sharp enough"}


def floor_vetoes(member: Member, floors: Floors) -> dict[str, dict[str, Any]]:
    """The floors this photo falls below: {name: {floor, value, says}} (says: 'eyes closed'
    for eyes_open); a missing score is never vetoed."""
    out: dict[str, dict[str, float]] = {}
    for name in ("eyes_open", "sharpness"):
        floor = getattr(floors, name)
        value = member.floor_scores.get(name)
        if floor is not None and value is not None and not math.isnan(value) and value < floor:
            out[name] = {"floor": floor, "value": round(float(value), 4), "says": FLOOR_WORDS[name]}
    return out


def _base_reason(member: Member, size: int, kind: ClusterKind) -> dict[str, Any]:
    reason: dict[str, Any] = {
        "composite": None if member.composite is None else round(member.composite, 4),
        "groups": {k: round(float(v), 4) for k, v in member.groups.items()},
        "coverage": list(member.coverage),
        "cluster_size": size,
        "kind": kind,
    }
    if member.manual:
        reason["manual"] = member.manual
    if member.companions:
        reason["companions"] = list(member.companions)
    return reason


def rank_key(member: Member) -> tuple[float, int]:
    """Best first: highest composite, then lowest id (a photo without a composite comes last)."""
    return (-(member.composite if member.composite is not None else -1.0), member.id)


def _name(member: Member) -> str:
    return os.path.basename(member.path)


def _shared_groups(members: Sequence[Member], weights: Mapping[str, float] | None) -> tuple[str, ...]:
    """The weighted score groups every member has, when the members' groups differ and
    they share at least one; else () (compare the composites as they are)."""
    if not weights or len(members) < 2:
        return ()
    keys = members[0].groups.keys()
    if all(m.groups.keys() == keys for m in members) and all(
        v is not None and v == v for m in members for v in m.groups.values()  # v == v: not NaN
    ):
        return ()  # every member has the same groups
    have = [{g for g, v in m.groups.items() if weights.get(g, 0.0) > 0 and v is not None and not math.isnan(v)} for m in members]
    common = set.intersection(*have)
    if not common or all(h == common for h in have):
        return ()
    return tuple(g for g in GROUPS if g in common)


def compared_values(members: Sequence[Member], weights: Mapping[str, float] | None) -> tuple[dict[int, float | None], tuple[str, ...]]:
    """Each member's score as the chooser ranks them, and the groups it was taken on: the
    stored composites when the members have the same score groups (groups ``()``), else
    each one's composite over the groups they all share (see :func:`choose_cluster`)."""
    shared = _shared_groups(members, weights)
    if shared and weights is not None:
        return {m.id: composite({g: m.groups[g] for g in shared}, weights).value for m in members}, shared
    return {m.id: m.composite for m in members}, shared


def choose_cluster(
    cluster: int,
    members: Sequence[Member],
    *,
    kind: ClusterKind = "cluster",
    floors: Floors = Floors(),
    tiebreak_margin: float = 0.05,
    comparator: Comparator | None = None,
    weights: Mapping[str, float] | None = None,
) -> ClusterPick:
    """The photos this cluster puts in the album, with their reasons.

    - A rejected photo is never chosen. A pinned one always is, in addition
      to the cluster's own pick: a pin means "also keep this one" (to replace
      the pick, pin one photo and reject the other).
    - A bracket or panorama is chosen whole (rejected frames left out).
    - Otherwise the highest composite among the photos no floor vetoes; when
      the runner-up is within ``tiebreak_margin`` and a comparator is given,
      the comparator decides between them.
    - With ``weights``, photos that do not all have the same score groups are
      compared on the groups they share (reason: ``compared_on``): a frame
      where no face was found is not ahead of the one where it was only
      because its missing portrait group left its technical scores to count
      alone.

    Reasons name the other photos by file (``path``) beside their ids, so they
    read as photos, not rows.
    """
    size = len(members)
    live = [m for m in members if m.manual != "reject"]
    pinned = sorted((m for m in live if m.manual == "pin"), key=rank_key)
    if kind != "cluster":
        frames = sorted(live, key=lambda m: (m.taken_at, m.id))
        scores = [m.composite for m in frames if m.composite is not None]
        unit = max(scores) if scores else None
        choices = []
        for rank, m in enumerate(frames, 1):
            reason = _base_reason(m, size, kind)
            reason["decided_by"] = "set"
            reason["set"] = {"kind": kind, "frames": len(frames)}
            choices.append(Choice(m.id, rank, m.composite, reason, forced=bool(pinned)))
        return ClusterPick(cluster, kind, tuple(choices), unit)
    chosen: list[tuple[Member, dict[str, Any], bool]] = []
    best = _best_by_score(cluster, live, size, kind, floors, tiebreak_margin, comparator, weights)
    if best is not None:
        chosen.append((best[0], best[1], best[0].manual == "pin"))
    for m in pinned:
        if best is None or m.id != best[0].id:
            reason = _base_reason(m, size, kind)
            reason["decided_by"] = "pin"
            chosen.append((m, reason, True))
    if not chosen:
        return ClusterPick(cluster, kind, (), None)
    chosen.sort(key=lambda c: rank_key(c[0]))
    choices = tuple(Choice(m.id, rank, m.composite, reason, forced=forced) for rank, (m, reason, forced) in enumerate(chosen, 1))
    scores = [m.composite for m, _, _ in chosen if m.composite is not None]
    return ClusterPick(cluster, kind, choices, max(scores) if scores else None)


def _best_by_score(
    cluster: int,
    live: list[Member],
    size: int,
    kind: ClusterKind,
    floors: Floors,
    tiebreak_margin: float,
    comparator: Comparator | None,
    weights: Mapping[str, float] | None = None,
) -> tuple[Member, dict[str, Any]] | None:
    """The cluster's own pick among ``live`` (composite, floors, tie-break) with its reason; None when none is eligible."""
    vetoed: dict[int, dict[str, dict[str, Any]]] = {}
    eligible: list[Member] = []
    if floors.eyes_open is None and floors.sharpness is None:  # no floor set: nothing to veto
        eligible = [m for m in live if m.composite is not None]
    else:
        for m in live:
            v = floor_vetoes(m, floors)
            if v:
                vetoed[m.id] = v
            elif m.composite is not None:
                eligible.append(m)
    if not eligible:
        return None
    value, shared = compared_values(eligible, weights)
    eligible.sort(key=lambda m: (-(value[m.id] if value[m.id] is not None else -1.0), m.id))
    best = eligible[0]
    decided_by = "composite"
    tiebreak: dict[str, Any] | None = None
    contenders = [m for m in eligible[1:] if value[best.id] - value[m.id] <= tiebreak_margin]  # type: ignore[operator]
    if contenders:
        tiebreak = {"margin": tiebreak_margin, "contenders": [m.id for m in contenders],
                    "contender_paths": [m.path for m in contenders]}
        exact = [m for m in contenders if m.composite == best.composite]
        if comparator is None:
            tiebreak["comparator"] = None
            if exact:
                tiebreak["note"] = (f"exact tie with {', '.join(_name(m) for m in exact)} (composite {best.composite:.4f}); "
                                    f"no comparator ready, kept {_name(best)}, the one keepers found first")
            else:
                tiebreak["note"] = (f"near tie with {', '.join(_name(m) for m in contenders)} (within {tiebreak_margin:g}); "
                                    f"no comparator ready, kept the higher composite")
        else:
            champion = best
            bouts = []
            try:
                for other in contenders:
                    winner, confidence = comparator.compare(Path(champion.path), Path(other.path))
                    won = champion if winner == 0 else other
                    bouts.append({"a": champion.id, "b": other.id, "winner": won.id, "winner_path": won.path,
                                  "confidence": round(float(confidence), 4)})
                    if winner == 1:
                        champion = other
                best = champion
                decided_by = "comparator"
                tiebreak["comparator"] = comparator.name
                tiebreak["bouts"] = bouts
            except Exception as exc:  # a failing model must not stop the album; say what happened
                log.warning("comparator %s failed on cluster %d: %s; keeping the composite order", comparator.name, cluster, exc)
                tiebreak["comparator"] = comparator.name
                tiebreak["error"] = f"{type(exc).__name__}: {exc}"
    reason = _base_reason(best, size, kind)
    reason["decided_by"] = decided_by
    if shared:
        reason["compared_on"] = list(shared)
    if tiebreak is not None:
        reason["tiebreak"] = tiebreak
    if vetoed:
        reason["floors"] = {str(pid): v for pid, v in sorted(vetoed.items())}
        paths = {m.id: m.path for m in live}
        reason["floor_paths"] = {str(pid): paths[pid] for pid in sorted(vetoed)}
    runner_up = next((m for m in eligible if m.id != best.id), None)
    if runner_up is not None:
        reason["runner_up"] = {"id": runner_up.id, "path": runner_up.path, "composite": runner_up.composite}
    return best, reason
