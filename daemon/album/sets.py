"""Shots that belong together: exposure brackets and panorama sequences.

A bracket is a run of frames taken within ``bracket_seconds`` of each other
whose EXIF exposure bias differs (−2/0/+2), or that EXIF marks as an
auto-exposure-bracket sequence. A panorama is a run of frames taken within
``panorama_seconds`` of each other where each frame overlaps the next one
shifted by 10–90 % of its width or height (found by phase correlation on
small greyscale copies). Both are kept whole by the selection.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

log = logging.getLogger(__name__)

#: EXIF ExposureMode 2 = "Auto bracket"
AUTO_BRACKET = 2
PANORAMA_MIN_SHIFT = 0.10
PANORAMA_MAX_SHIFT = 0.90
PANORAMA_MIN_RESPONSE = 0.15
_PREVIEW_EDGE = 256


class SetCandidate(NamedTuple):
    """What set detection needs of a photo (a tuple: a full reselection makes one a photo)."""

    id: int
    path: str
    taken_at: float
    exif: dict[str, Any]
    width: int | None = None
    height: int | None = None
    fingerprint: str | None = None  # changes when the file does (its perceptual hash)


def parse_exif(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def exposure_bias(exif: dict[str, Any]) -> float | None:
    """ExposureBiasValue as a float (accepts numbers, "−2/3", "+1.0 EV", [num, den])."""
    value = exif.get("ExposureBiasValue", exif.get("ExposureCompensation"))
    if value is None:
        return None
    try:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return float(value[0]) / float(value[1]) if float(value[1]) else None
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).replace("\u2212", "-").replace("EV", "").strip()
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError, TypeError):
        return None


def is_auto_bracket(exif: dict[str, Any]) -> bool:
    mode = exif.get("ExposureMode")
    if isinstance(mode, str):
        return "bracket" in mode.lower() or mode.strip() == str(AUTO_BRACKET)
    return mode == AUTO_BRACKET


def _runs(photos: Sequence[SetCandidate], seconds: float) -> list[list[SetCandidate]]:
    ordered = sorted(photos, key=lambda p: (p.taken_at, p.id))
    runs: list[list[SetCandidate]] = []
    for photo in ordered:
        if runs and photo.taken_at - runs[-1][-1].taken_at <= seconds:
            runs[-1].append(photo)
        else:
            runs.append([photo])
    return runs


def find_brackets(photos: Sequence[SetCandidate], seconds: float) -> list[list[int]]:
    """Exposure brackets among one moment's photos, as sorted id lists."""
    brackets: list[list[int]] = []
    for run in _runs(photos, seconds):
        if len(run) < 2:
            continue
        biases = {b for b in (exposure_bias(p.exif) for p in run) if b is not None}
        auto = sum(1 for p in run if is_auto_bracket(p.exif))
        if len(biases) >= 2 or auto >= 2:
            members = [p for p in run if exposure_bias(p.exif) is not None or is_auto_bracket(p.exif)]
            if len(members) >= 2:
                brackets.append(sorted(p.id for p in members))
    return brackets


def _preview(path: str) -> np.ndarray | None:
    """A small greyscale float32 copy of the photo, or None when it cannot be read."""
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as img:
            img.draft("L", (_PREVIEW_EDGE, _PREVIEW_EDGE))
            img = ImageOps.exif_transpose(img).convert("L")
            img.thumbnail((_PREVIEW_EDGE, _PREVIEW_EDGE))
            return np.asarray(img, dtype=np.float32)
    except Exception as exc:  # unreadable, moved, RAW without a decoder: not a panorama frame
        log.debug("panorama check: cannot read %s: %s", path, exc)
        return None


def frame_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy) of ``b`` against ``a`` as fractions of the frame, and the correlation response."""
    import cv2

    h = min(a.shape[0], b.shape[0])
    w = min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a - a.mean(), b - b.mean(), window)
    return abs(dx) / w, abs(dy) / h, float(response)


def is_panorama_pair(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    fx, fy, response = frame_shift(a, b)
    shift = max(fx, fy)
    return response >= PANORAMA_MIN_RESPONSE and PANORAMA_MIN_SHIFT <= shift <= PANORAMA_MAX_SHIFT


#: verdicts of frame pairs already compared, so a daemon re-picking a moment
#: does not decode the same files again: (path a, hash a, path b, hash b) -> panorama?
_PAIR_VERDICTS: dict[tuple[str, str | None, str, str | None], bool] = {}
_PAIR_VERDICTS_MAX = 200_000


def find_panoramas(
    photos: Sequence[SetCandidate],
    seconds: float,
    *,
    linked: Callable[[int, int], bool] = lambda a, b: False,
    preview: Callable[[str], np.ndarray | None] = _preview,
) -> list[list[int]]:
    """Panorama sequences among one moment's photos, as sorted id lists.

    Consecutive frames are compared only when they were taken within
    ``seconds``, have the same size, and are not already near-duplicates
    (``linked``); the files are read only for those pairs.
    """
    ordered = sorted(photos, key=lambda p: (p.taken_at, p.id))
    cache: dict[int, np.ndarray | None] = {}

    def image(p: SetCandidate) -> np.ndarray | None:
        if p.id not in cache:
            cache[p.id] = preview(p.path)
        return cache[p.id]

    sequences: list[list[int]] = []
    current: list[int] = []
    for prev, nxt in zip(ordered, ordered[1:]):
        joined = False
        if (
            nxt.taken_at - prev.taken_at <= seconds
            and (prev.width, prev.height) == (nxt.width, nxt.height)
            and not linked(prev.id, nxt.id)
        ):
            key = (prev.path, prev.fingerprint, nxt.path, nxt.fingerprint)
            cached = _PAIR_VERDICTS.get(key) if preview is _preview else None
            if cached is None:
                a, b = image(prev), image(nxt)
                cached = a is not None and b is not None and is_panorama_pair(a, b)
                if preview is _preview and a is not None and b is not None:
                    if len(_PAIR_VERDICTS) >= _PAIR_VERDICTS_MAX:
                        _PAIR_VERDICTS.clear()
                    _PAIR_VERDICTS[key] = cached
            joined = cached
        if joined:
            if not current:
                current = [prev.id]
            current.append(nxt.id)
        elif current:
            sequences.append(sorted(current))
            current = []
    if current:
        sequences.append(sorted(current))
    return sequences
