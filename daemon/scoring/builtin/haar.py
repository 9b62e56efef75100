"""Faces, open eyes and smiles with OpenCV's bundled Haar cascades: what the
``faces`` scorer falls back to when MediaPipe's face models cannot be had (see
faces.py). They find fewer faces (none turned much from the camera) and cannot
tell a blink from an open eye reliably.

Detection runs on a 256-px equalised grey view (scaleFactor 1.25, 2 neighbours,
faces at least 12 % of the short edge): 10-20 ms a photo here, against ~100 ms
for OpenCV's usual 640x480 / 1.1 settings. Faces up to 48 px are looked for on
that view and larger ones on its half: OpenCV scans every pixel position once
a window is twice its base size, so the large faces cost as much as the small
ones on the full view; on the half they cost a quarter, and the 96 faces and 25
face-less photos of the measurement below came out the same (14.2 ms against
16.2 ms with one pass, on one core). Each candidate must be confirmed by a
second cascade (frontalface_alt2) on its 128-px crop, which removes face-like
textures (coins, bark, fabric, gravel), so the first pass can be permissive.
Measured on a face pasted into four scenes at 10-40 % of the short edge
(tests/test_scorers.py builds the same set): these settings find it in 23 of
32 (every one from 17 % up, 3 of 4 at 14 %), against 6 of 32 with 1.2 / 7
neighbours, and none of ten face-less photos (landscapes, textures) gets a
face. Eyes are looked for in the upper 60 % of each face and
smiles in the lower half, on the face cut from the full decoded image.

No face: no portrait score at all (an empty list), so a landscape is not
judged as a bad portrait. With faces, three scores of task ``portrait``:

- ``faces``: raw = number of faces; normalised = how sharp the largest face is
  (variance of the Laplacian of the face at 128 px, v / (v + 300)), times the
  photo's chroma-noise quality (the noise scorer's 0..1 value). Noise adds to
  the Laplacian as much as detail does: on the demo's astronaut burst the
  high-ISO frame's face measured 3 300 against the clean frame's 625 and won
  the album; discounted, a noisy face is the worse portrait it looks.
- ``eyes_open``: raw = the fraction of faces with two eyes found; the Haar eye
  cascade finds open eyes, rarely closed ones. normalised = raw.
- ``smile``: raw = the fraction of faces with a smile found. normalised = raw.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from ..base import Score
from .technical import chroma_noise, noise_quality

VERSION = "5"  # 4: its 256-px view from the box-averaged 512-px one; 5: from the resampled one again; the scores keep this version: photos scored by the cascades before are not redone
DETECT_EDGE = 256
FACE_EDGE = 128
MIN_FACE_FRACTION = 0.12
SCALE_FACTOR = 1.25
NEIGHBOURS = 2  # permissive: the confirming cascade rejects what is not a face
SPLIT_FACE = 48  # px on the detection view: larger faces are looked for on its half
SHARP_HALF = 300.0

_local = threading.local()


def _cascades() -> tuple[cv2.CascadeClassifier, ...]:
    """One set of classifiers per thread: detectMultiScale is not safe to share across threads."""
    sets = getattr(_local, "cascades", None)
    if sets is None:
        root = cv2.data.haarcascades
        sets = []
        for name in ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml", "haarcascade_smile.xml",
                     "haarcascade_frontalface_alt2.xml"):
            path = os.path.join(root, name)
            clf = cv2.CascadeClassifier(path)
            if clf.empty():
                raise RuntimeError(f"OpenCV's Haar cascade {path} is missing; install opencv-python-headless<5 (5 dropped them)")
            sets.append(clf)
        _local.cascades = sets = tuple(sets)
    return sets  # type: ignore[return-value]


def _detect(clf: cv2.CascadeClassifier, eq: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face candidates on the equalised detection view, small ones there and large ones
    on its half (see the module text), one box per face."""
    side = max(20, int(min(eq.shape) * MIN_FACE_FRACTION))
    small = clf.detectMultiScale(eq, scaleFactor=SCALE_FACTOR, minNeighbors=NEIGHBOURS, minSize=(side, side),
                                 maxSize=(SPLIT_FACE, SPLIT_FACE))
    half = cv2.resize(eq, (eq.shape[1] // 2, eq.shape[0] // 2), interpolation=cv2.INTER_AREA)
    large = clf.detectMultiScale(half, scaleFactor=SCALE_FACTOR, minNeighbors=NEIGHBOURS,
                                 minSize=(SPLIT_FACE // 2, SPLIT_FACE // 2))
    boxes: list[tuple[int, int, int, int]] = []
    for x, y, w, h in sorted([tuple(int(v) * 2 for v in r) for r in large] + [tuple(int(v) for v in r) for r in small],
                             key=lambda b: -b[2] * b[3]):
        cx, cy = x + w / 2, y + h / 2
        if not any(bx <= cx <= bx + bw and by <= cy <= by + bh for bx, by, bw, bh in boxes):
            boxes.append((x, y, w, h))  # a face near the split size can be found by both passes
    return boxes


class HaarFaces:
    """See the module text."""

    name, task, version = "faces", "portrait", VERSION
    outputs = ("faces", "eyes_open", "smile")

    def __init__(self) -> None:
        _cascades()  # fail at start-up, not on the first photo, when the cascades are missing

    def prepare_thread(self) -> None:
        """Load this thread's classifiers (~15 ms) before its first photo."""
        _cascades()

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        face_clf, eye_clf, smile_clf, confirm_clf = _cascades()
        grey_full = image.grey()
        small = image.grey_resized(DETECT_EDGE, exact=True)  # the cascades' calibration size
        scale = grey_full.shape[1] / small.shape[1]
        eq = cv2.equalizeHist(small)
        found = _detect(face_clf, eq)
        if not found:
            return []
        eyes_open = smiles = 0
        largest, largest_area = None, 0
        boxes = []
        for x, y, w, h in found:
            x0, y0, x1, y1 = (int(round(v * scale)) for v in (x, y, x + w, y + h))
            face = grey_full[y0:y1, x0:x1]
            if face.size == 0:
                continue
            face = cv2.equalizeHist(cv2.resize(face, (FACE_EDGE, FACE_EDGE), interpolation=cv2.INTER_AREA))
            padded = cv2.copyMakeBorder(face, 16, 16, 16, 16, cv2.BORDER_REPLICATE)
            if not len(confirm_clf.detectMultiScale(padded, scaleFactor=1.1, minNeighbors=3, minSize=(FACE_EDGE * 2 // 3,) * 2)):
                continue  # the second cascade disagrees: texture that looked like a face
            boxes.append([x0, y0, x1 - x0, y1 - y0])
            upper = face[: FACE_EDGE * 3 // 5]
            eyes = eye_clf.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=4, minSize=(FACE_EDGE // 10, FACE_EDGE // 10))
            if len(eyes) >= 2:
                eyes_open += 1
            lower = face[FACE_EDGE // 2 :]
            smile = smile_clf.detectMultiScale(lower, scaleFactor=1.1, minNeighbors=20, minSize=(FACE_EDGE // 4, FACE_EDGE // 10))
            if len(smile):
                smiles += 1
            area = (x1 - x0) * (y1 - y0)
            if area > largest_area:
                largest, largest_area = face, area
        if not boxes or largest is None:
            return []
        n = len(boxes)
        variance = float(cv2.Laplacian(largest, cv2.CV_32F).var())
        clean = noise_quality(chroma_noise(image))
        detail = {"faces": n, "boxes": boxes[:10], "face_sharpness": round(variance, 1), "noise_quality": round(clean, 3)}
        return [
            Score("faces", self.task, float(n), variance / (variance + SHARP_HALF) * clean, self.version, detail),
            Score("eyes_open", self.task, eyes_open / n, eyes_open / n, self.version, {"faces": n, "eyes_open": eyes_open}),
            Score("smile", self.task, smiles / n, smiles / n, self.version, {"faces": n, "smiles": smiles}),
        ]
