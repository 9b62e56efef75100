"""Decode a photo once, small, oriented, with the EXIF facts selection needs.

JPEGs are decoded with ``Image.draft`` so libjpeg's DCT scaling does most of
the shrinking (a 12 MP JPEG costs ~25 ms instead of ~105 ms); HEIC/HEIF goes
through pillow-heif; RAW files through rawpy's embedded preview. Every failure
is an :class:`~daemon.errors.ImageRejected` with a short reason a person can act on.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageRejected
from ..extras import install_hint

log = logging.getLogger(__name__)
T = TypeVar("T")

RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
MIN_EDGE = 16  # below this a file is an icon or a tracking pixel, not a photo

# PIL's guard against decompression bombs stays on: above MAX_IMAGE_PIXELS it
# warns (we log), above twice that it raises (we reject the file).
Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485

_EXIF_IFD = 0x8769
_TAGS_0TH = {0x010F: "Make", 0x0110: "Model", 0x0112: "Orientation"}
_TAGS_EXIF = {
    0x9003: "DateTimeOriginal",
    0x9011: "OffsetTimeOriginal",
    0x9291: "SubSecTimeOriginal",
    0x9204: "ExposureBiasValue",
    0xA402: "ExposureMode",
    0x8822: "ExposureProgram",
    0x920A: "FocalLength",
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8827: "ISOSpeedRatings",
    0xA420: "ImageUniqueID",
}
#: EXIF fields kept in ``PhotoMeta.exif`` (and the database's exif_json)
KEPT_EXIF = ("ExposureBiasValue", "ExposureMode", "ExposureProgram", "FocalLength", "ExposureTime", "FNumber",
             "ISOSpeedRatings", "Orientation")

_heif_lock = threading.Lock()
_heif_registered = False


@dataclass(frozen=True)
class PhotoMeta:
    """Facts about the original file, measured while decoding."""

    width: int  # of the oriented original
    height: int
    taken_at: float | None  # EXIF DateTimeOriginal as unix seconds, None without one
    camera: str | None
    exif: dict[str, Any] = field(default_factory=dict)
    format: str = ""
    #: a JPEG's quality as libjpeg's 1-100 scale would have saved it, estimated from the
    #: luminance quantisation table the file carries (None for other formats)
    jpeg_quality: int | None = None


@dataclass(eq=False)
class Decoded:
    """A decoded photo: RGB pixels (long edge at most the decode size) and its metadata.

    The derived images (grey, resized) are computed once and cached, so
    several scorers asking for the same view share the work."""

    path: Path
    rgb: np.ndarray  # HxWx3 uint8, EXIF-oriented
    meta: PhotoMeta
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # views and shared measurements
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_array(cls, rgb: np.ndarray, path: Path | str = "<array>", meta: PhotoMeta | None = None) -> "Decoded":
        """Wrap pixels already in memory (tests, benches, re-scoring)."""
        arr = np.ascontiguousarray(rgb)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 pixels, got shape {arr.shape} dtype {arr.dtype}")
        h, w = arr.shape[:2]
        return cls(Path(path), arr, meta or PhotoMeta(w, h, None, None))

    def shared(self, key: Any, make: Callable[[], T]) -> T:
        """A view or measurement of these pixels that several scorers use, made once per photo."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
        value = make()
        with self._lock:
            self._cache[key] = value
        return value

    def _cached(self, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        """A derived image, read-only so no scorer changes another's input."""

        def frozen() -> np.ndarray:
            pixels = make()
            pixels.setflags(write=False)
            return pixels

        return self.shared(key, frozen)

    def grey(self) -> np.ndarray:
        """Luma (HxW uint8)."""
        return self._cached("grey", lambda: cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY))

    def resized(self, long_edge: int, *, exact: bool = False) -> np.ndarray:
        """The RGB pixels scaled down (area filter) so the long edge is at most ``long_edge``:
        the decode's exact k x k box average where one lands within 5 % of it (see
        :func:`box_factor`), else resampled to ``long_edge``. ``exact``: always resampled
        to ``long_edge`` (a model's input size), from the smallest view made that is larger."""
        h, w = self.rgb.shape[:2]
        if max(h, w) <= long_edge:
            return self.rgb
        k = None if exact else box_factor(max(h, w), long_edge)
        if k:
            return self._boxed(k)
        return self._cached(("rgb", long_edge), lambda: _shrink(self._source("rgb", long_edge, self.rgb), long_edge))

    def grey_resized(self, long_edge: int, *, exact: bool = False) -> np.ndarray:
        """Luma of :meth:`resized`: at an integer factor, the luma of that colour view (the
        views are box averages and luma a weighted sum, so the order does not matter but
        to rounding, and the full-size luma is then never made)."""
        h, w = self.rgb.shape[:2]
        if max(h, w) <= long_edge:
            return self.grey()
        k = None if exact else box_factor(max(h, w), long_edge)
        if k:
            return self._cached(("grey-box", k), lambda: cv2.cvtColor(self._boxed(k), cv2.COLOR_RGB2GRAY))
        return self._cached(("grey", long_edge), lambda: _shrink(self._source("grey", long_edge, self.grey()), long_edge))

    def _boxed(self, k: int) -> np.ndarray:
        """The k x k box average of the decode (the last rows and columns that do not fill a
        box left out), made from the k / 2 one when k is even: OpenCV's area filter at a
        factor of 2 is its fastest path (1000x750 RGB: 0.2 ms to 500x375, 1.1 ms to
        250x187 in one step, 4 ms to 256x192 by a fractional step)."""

        def make() -> np.ndarray:
            source, factor = self.rgb, k
            if k % 2 == 0 and k > 2:
                source, factor = self._boxed(k // 2), 2
            h, w = source.shape[:2]
            return cv2.resize(source[: h - h % factor, : w - w % factor], (w // factor, h // factor),
                              interpolation=cv2.INTER_AREA)

        return self._cached(("box", k), make)

    def _source(self, kind: str, long_edge: int, full: np.ndarray) -> np.ndarray:
        """The smallest view already made that is still at least ``long_edge``: a
        pyramid, so a 128-px view is not resampled from the full decode again."""
        with self._lock:
            views = [v for k, v in self._cache.items() if isinstance(k, tuple) and isinstance(v, np.ndarray)
                     and k[0] in ((kind, f"{kind}-box") if kind == "grey" else (kind, "box"))
                     and v.ndim == full.ndim and max(v.shape[:2]) >= long_edge]
        return min(views, key=lambda v: v.shape[0], default=full)


#: a view may be up to this share smaller than asked when an integer fraction of the decode
#: gets there: a 1000-px decode gives 500- and 250-px views for 512 and 256
BOX_SLACK = 0.05


def box_factor(long: int, long_edge: int) -> int | None:
    """The integer k >= 2 for which a decode whose long edge is ``long`` divided by k is at most
    ``long_edge`` and no more than BOX_SLACK below it; None when there is none. An exact k x k
    box average is what area resampling does at an integer factor, at a tenth of the cost
    of a fractional step; the measures on views a few per cent smaller move by less than
    their own noise (see the notes of technical.py)."""
    k = -(-long // long_edge)
    return k if k >= 2 and long // k >= (1.0 - BOX_SLACK) * long_edge else None


def _shrink(pixels: np.ndarray, long_edge: int) -> np.ndarray:
    """Area-average ``pixels`` down so the long edge is ``long_edge``.

    OpenCV halves an image 10-20x faster than it area-resamples by a fractional
    factor (1000x750 RGB: 0.2 ms to 500x375, 3.7 ms to 512x384), so the image
    is halved while the rest of the reduction is still 2 or more (an odd last
    row or column is left out), and only the final step is fractional, on the
    smaller image. The result stays close to one fractional step: on twelve
    1000-px test photos the 256-px views differ by 0.5 grey levels on average."""
    h, w = pixels.shape[:2]
    scale = long_edge / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    while w >= 2 * size[0] and h >= 2 * size[1]:
        pixels = cv2.resize(pixels[: h - h % 2, : w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = pixels.shape[:2]
    if (w, h) == size:
        return pixels
    fractional = bool(w % size[0] or h % size[1])  # else OpenCV's fast path for integer factors
    if pixels.ndim == 2 and pixels.dtype == np.uint8 and w >= 1.8 * size[0] and fractional:
        return _area_grey(pixels, size)
    if pixels.dtype == np.uint8 and (pixels.ndim == 2 or pixels.shape[2] in (1, 3)) and fractional:
        return _area(pixels, size)
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def _area_grey(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2.resize(grey, size, interpolation=cv2.INTER_AREA) at a fractional factor of 1.8 or
    more (a 1000-px decode's 512-px view), as two sparse products with OpenCV's own area
    weights: OpenCV's fractional area path is not vectorised (1000x750 to 512x384: 3.0 ms),
    the products are (1.4 ms; at smaller factors they gain little). The same pixels but
    for rounding, as OpenCV sums along rows first and these along columns: on 20 real
    photos at 1000 px at most 3 pixels in 100 000 came out one grey level apart
    (tests/test_imaging.py compares them; at a factor of 1.7 it was one in 3 500). It keeps
    this order, not :func:`_area`'s (OpenCV's to the bit): the sharpness and noise measures
    were calibrated on these pixels."""
    h, w = grey.shape
    rows = _area_weights(h, size[1])
    cols = _area_weights(w, size[0])
    # OpenCV's transposes and its rounding conversion: a third of numpy's time on these sizes;
    # rounded before the last transpose, which then moves a quarter of the bytes
    out = cols @ cv2.transpose(rows @ grey.astype(np.float32))
    return cv2.transpose(cv2.convertScaleAbs(out))  # the weights sum to 1: already 0..255


def _area(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2.resize(pixels, size, interpolation=cv2.INTER_AREA) of uint8 grey or RGB pixels at a
    fractional factor, to the bit, as two sparse products with OpenCV's own area weights in
    OpenCV's own order: each row's horizontal sums first, then those sums down the columns
    (its ResizeArea_Invoker: float32 products added one by one from zero in the order of its
    tables, as the products' rows are, and rounded to nearest). OpenCV's fractional area path
    is not vectorised: 512x384 grey to 384x288 (BRISQUE's view) takes it 0.33 ms, these 0.23;
    250x187 RGB to 128x96 (the face detector's) 0.19 ms against 0.11. tests/test_imaging.py
    checks the pixels are OpenCV's on random sizes and contents."""
    h, w = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    rows = _area_weights(h, size[1])
    cols = _area_weights(w, size[0])
    across = cols @ cv2.transpose(pixels).astype(np.float32).reshape(w, h * channels)  # (w_out, h x channels)
    down = cv2.transpose(across.reshape(size[0], h, channels) if channels > 1 else across)
    out = cv2.convertScaleAbs(rows @ down.reshape(h, size[0] * channels))  # the weights sum to 1: 0..255
    return out.reshape((size[1], size[0]) + pixels.shape[2:])


@functools.lru_cache(maxsize=64)
def _area_weights(n_in: int, n_out: int) -> Any:
    """The (n_out x n_in) sparse matrix of OpenCV's area resampling along one axis: each output
    pixel the mean of the input it covers, the partly covered ends weighted by their share
    (computeResizeAreaTab in OpenCV's imgproc/src/resize.cpp, its 1e-3 cut-off included)."""
    from scipy import sparse

    scale = n_in / n_out
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    for d in range(n_out):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, n_in - f1)
        s2 = min(math.floor(f2), n_in - 1)
        s1 = min(math.ceil(f1), s2)
        if s1 - f1 > 1e-3:
            rows.append(d), cols.append(s1 - 1), weights.append((s1 - f1) / cell)
        for s in range(s1, s2):
            rows.append(d), cols.append(s), weights.append(1.0 / cell)
        if f2 - s2 > 1e-3:
            rows.append(d), cols.append(s2), weights.append(min(f2 - s2, 1.0, cell) / cell)
    return sparse.csr_matrix((np.asarray(weights, np.float32), (rows, cols)), shape=(n_out, n_in))


def decode_image(path: Path | str, *, size: int = 1024) -> Decoded:
    """Decode ``path`` for scoring: oriented RGB with long edge at most ``size``.

    Raises ImageRejected with a short reason for anything that is not a
    readable still photo."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in RAW_EXTENSIONS:
            return _decode_raw(path, size)
        if suffix in HEIF_EXTENSIONS:
            _register_heif()
        return _decode_pil(path, size)
    except ImageRejected:
        raise
    except FileNotFoundError:
        raise ImageRejected(path, "the file disappeared before it could be read") from None
    except PermissionError:
        raise ImageRejected(path, "permission denied: keepers cannot read this file") from None
    except IsADirectoryError:
        raise ImageRejected(path, "a folder, not a file") from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(path, f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected(path, _unidentified_reason(path)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(path, f"cannot decode: {exc}") from None
    except MemoryError:
        raise ImageRejected(path, "too large to decode in the memory available") from None


def _unidentified_reason(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not head:
        return "empty file (0 bytes)"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "not an image: the file holds text"
    return "not an image format keepers can read"


def _decode_pil(path: Path, size: int) -> Decoded:
    if not path.is_file():
        if path.is_dir():
            raise ImageRejected(path, "a folder, not a file")
        if path.exists():
            raise ImageRejected(path, "not a regular file (a pipe, socket or device)")
        raise FileNotFoundError(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im: Image.Image
            if getattr(im, "is_animated", False) and im.format != "MPO":  # MPO: a still with a depth map or preview
                raise ImageRejected(path, f"an animation ({im.n_frames} frames), not a still photo")
            fmt = im.format or ""
            exif = im.getexif()
            orientation = int(exif.get(0x0112, 1) or 1)
            width, height = im.size
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            if min(width, height) < MIN_EDGE:
                raise ImageRejected(path, f"too small to be a photo ({im.size[0]}x{im.size[1]} px)")
            if fmt == "JPEG":
                # DCT scaling: libjpeg decodes at 1/2, 1/4 or 1/8 while staying >= the requested
                # size. Asking for 3/4 of it lets a 4000 px photo take the 1/4 path (1000 px, ~4x
                # cheaper than 1/2 then a resize) at a cost of at most a quarter of the long edge.
                want = size * 3 / 4 / max(im.size)
                im.draft("RGB", (max(1, int(im.size[0] * want)), max(1, int(im.size[1] * want))))
            im.load()
            rgb = _to_rgb(im)
            meta = _meta(exif, width, height, fmt, jpeg_quality(im))
    for w in caught:
        if issubclass(w.category, Image.DecompressionBombWarning):
            log.warning("%s: very large image (%s); decoded anyway", path, w.message)
    rgb = _orient(rgb, orientation)
    if max(rgb.shape[:2]) > size:
        rgb = _shrink(rgb, size)
    return Decoded(path, np.ascontiguousarray(rgb), meta)


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode to HxWx3 uint8: 16-bit is scaled, not clipped; alpha is flattened on white."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        grey = ((arr - lo) / (hi - lo or 1.0) * 255.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im)
    if mode == "CMYK" and im.format == "JPEG" and im.info.get("adobe"):
        # Adobe writes inverted CMYK JPEGs; PIL already handles the inversion on convert
        return np.asarray(im.convert("RGB"))
    return np.asarray(im.convert("RGB"))


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1-8 to decoded pixels (the same as ImageOps.exif_transpose)."""
    if orientation == 2:
        return rgb[:, ::-1]
    if orientation == 3:
        return rgb[::-1, ::-1]
    if orientation == 4:
        return rgb[::-1]
    if orientation == 5:
        return rgb.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(rgb, -1)
    if orientation == 7:
        return np.rot90(rgb, 1)[::-1]  # transverse
    if orientation == 8:
        return np.rot90(rgb, 1)
    return rgb


# libjpeg's standard luminance table (ITU T.81 Annex K), in natural (row) order, and what
# its quality setting q makes of it: the table x 5000/q (q < 50) or x (200 - 2q) %, rounded, 1..255
_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                      14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                      18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
_QUALITIES = np.arange(1, 101)
_SCALED = np.log(np.clip(np.floor((_STD_LUMA[None, :] * np.where(_QUALITIES < 50, 5000.0 / _QUALITIES, 200.0 - 2.0 * _QUALITIES)[:, None]
                                   + 50.0) / 100.0), 1, 255))


def jpeg_quality(im: Image.Image) -> int | None:
    """The libjpeg quality (1-100) whose scaled standard table is nearest, in log terms, to
    the luminance quantisation table of an open JPEG; None when it carries none. Cameras
    and editors use their own tables: this is the libjpeg setting that quantises as
    coarsely, an honest hint of how much the file was compressed, read without decoding."""
    tables = getattr(im, "quantization", None) or {}
    table = tables.get(0)
    if table is None or len(table) != 64:
        return None
    logs = np.log(np.clip(np.asarray(table, dtype=np.float64), 1, 255))
    return int(_QUALITIES[int(np.argmin(np.abs(_SCALED - logs[None, :]).sum(axis=1)))])


def _meta(exif: Image.Exif, width: int, height: int, fmt: str, quality: int | None = None) -> PhotoMeta:
    values: dict[str, Any] = {}
    for tag, name in _TAGS_0TH.items():
        if tag in exif:
            values[name] = exif[tag]
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except (KeyError, ValueError, OSError, SyntaxError):
        sub = {}
    for tag, name in _TAGS_EXIF.items():
        if tag in sub:
            values[name] = sub[tag]
    make = _text(values.get("Make"))
    model = _text(values.get("Model"))
    camera = model if make and model and model.lower().startswith(make.lower().split()[0]) else " ".join(p for p in (make, model) if p) or None
    kept = {k: _plain(values[k]) for k in KEPT_EXIF if k in values}
    return PhotoMeta(width, height, _taken_at(values), camera, kept, fmt, quality)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text or None


def _plain(value: Any) -> Any:
    """EXIF values as JSON-ready numbers or strings (IFDRational -> float)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00")
    if isinstance(value, (int, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return str(value)


def _taken_at(values: dict[str, Any]) -> float | None:
    """DateTimeOriginal (+ sub-seconds, + offset when recorded) as unix seconds."""
    text = _text(values.get("DateTimeOriginal"))
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    sub = _text(values.get("SubSecTimeOriginal"))
    if sub and sub.isdigit():
        moment += timedelta(seconds=float(f"0.{sub}"))
    offset = _text(values.get("OffsetTimeOriginal"))
    if offset and len(offset) >= 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            sign = 1 if offset[0] == "+" else -1
            return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes))).timestamp()
        except ValueError:
            pass
    return moment.timestamp()  # no offset recorded: the camera's clock, read as local time


def _register_heif() -> None:
    global _heif_registered
    with _heif_lock:
        if _heif_registered:
            return
        try:
            from pillow_heif import register_heif_opener
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ImageRejected("<heif>", "HEIC/HEIF support needs pillow-heif: pip install pillow-heif") from exc
        register_heif_opener()
        _heif_registered = True


def _decode_raw(path: Path, size: int) -> Decoded:
    try:
        import rawpy
    except ImportError:
        raise ImageRejected(path, f"RAW support needs the raw extra; {install_hint('raw')}") from None
    if not path.is_file():
        if path.exists():
            raise ImageRejected(path, "not a regular file")
        raise FileNotFoundError(path)
    try:
        with rawpy.imread(str(path)) as raw:
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                with Image.open(io.BytesIO(thumb.data)) as im:
                    exif = im.getexif()
                    orientation = int(exif.get(0x0112, 1) or 1)
                    im.draft("RGB", (size, size))
                    rgb = _to_rgb(im)
                    meta = _meta(exif, *im.size, "RAW")
                rgb = _orient(rgb, orientation)
            elif thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
                rgb = np.asarray(thumb.data, dtype=np.uint8)
                meta = PhotoMeta(rgb.shape[1], rgb.shape[0], None, None, {}, "RAW")
            else:  # no usable preview: a half-size demosaic is the slow but honest fallback
                rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                meta = PhotoMeta(rgb.shape[1], rgb.shape[0], None, None, {}, "RAW")
    except rawpy.LibRawError as exc:
        raise ImageRejected(path, f"cannot decode RAW: {type(exc).__name__}: {exc}") from None
    if max(rgb.shape[:2]) > size:
        rgb = _shrink(rgb, size)
    return Decoded(path, np.ascontiguousarray(rgb), meta)
