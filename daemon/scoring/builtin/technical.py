"""Classic image measures, each on a small fixed-size view of the photo so the
numbers do not depend on the camera's resolution.

Every scorer keeps what it measured as ``raw`` and maps it to 0..1 (1 = better)
by a fixed formula documented on the class; nothing is normalised per batch,
so a photo's score never depends on the other photos scored with it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..base import Score

VERSION = "1"
SHARPNESS_EDGE = 512  # long edge of the grey view sharpness is measured on
TONE_EDGE = 256  # long edge of the view for exposure and contrast
COLOUR_EDGE = 64  # colourfulness on a median-filtered, area-averaged view: sensor noise averages out
COLOUR_VIEW_EDGE = 4 * COLOUR_EDGE  # the RGB view noise and colourfulness measure
TILES = 4  # sharpness: a TILES x TILES grid; the sharpest tiles stand for the subject

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _saturate(value: float, half: float) -> float:
    """0..1, 0.5 at ``half``: value / (value + half)."""
    return float(value / (value + half)) if value > 0 else 0.0


class Sharpness:
    """Variance of the Laplacian on a 512-px grey view: the global value, and the
    mean of the three sharpest tiles of a 4x4 grid (a sharp subject on a soft
    background is a sharp photo). raw = the larger of the two.
    normalised = (log10(raw) - 1.5) / 3.5, clipped to 0..1: on this view a crisp
    photo measures 3 000-50 000 (0.57-0.92), a slightly soft one (Gaussian blur
    radius 2) 500-2 000 (0.34-0.52), a visibly blurred one (radius 4) under 300
    (< 0.28). The log scale keeps differences between sharp frames visible."""

    name, task, version = "sharpness", "technical", VERSION
    LOW, SPAN = 1.5, 3.5

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey = image.grey_resized(SHARPNESS_EDGE)
        lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
        overall = float(lap.var())
        h, w = lap.shape
        th, tw = max(1, h // TILES), max(1, w // TILES)
        tiles = sorted((float(lap[y : y + th, x : x + tw].var()) for y in range(0, h - th + 1, th) for x in range(0, w - tw + 1, tw)),
                       reverse=True)
        top = float(np.mean(tiles[:3])) if tiles else overall
        raw = max(overall, top)
        value = (math.log10(raw) - self.LOW) / self.SPAN if raw > 0 else 0.0
        return [Score(self.name, self.task, raw, min(1.0, max(0.0, value)), self.version,
                      {"global": round(overall, 2), "top_tiles": round(top, 2)})]


class Exposure:
    """Mean luminance and clipping on a 256-px grey view. raw = mean luminance
    (0-255). normalised = 0.6 x closeness of the mean to mid-grey 118
    (1 at 118, 0 at black or white) + 0.4 x (1 - 3 x the clipped fraction beyond
    the first 2 %, pixels at <= 4 or >= 251, floored at 0): a few specular
    highlights or deep shadows are normal; large clipped areas are not."""

    name, task, version = "exposure", "technical", VERSION
    MID = 118.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey = image.grey_resized(TONE_EDGE)
        mean = float(grey.mean())
        n = grey.size
        shadows = float(np.count_nonzero(grey <= 4)) / n
        highlights = float(np.count_nonzero(grey >= 251)) / n
        mid = 1.0 - min(1.0, abs(mean - self.MID) / self.MID)
        clip = max(0.0, 1.0 - 3.0 * max(0.0, shadows + highlights - 0.02))
        value = 0.6 * mid + 0.4 * clip
        return [Score(self.name, self.task, mean, min(1.0, max(0.0, value)), self.version,
                      {"clipped_shadows": round(shadows, 4), "clipped_highlights": round(highlights, 4)})]


class Contrast:
    """RMS contrast: the standard deviation of luminance (0-1) on a 256-px view.
    normalised = min(1, raw / 0.25): flat, hazy photos score low; 0.25 and above
    (a full tonal range) score 1."""

    name, task, version = "contrast", "technical", VERSION
    FULL = 0.25

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        rms = float(image.grey_resized(TONE_EDGE).std()) / 255.0
        return [Score(self.name, self.task, rms, min(1.0, rms / self.FULL), self.version)]


class Noise:
    """Sensor noise, measured in the colour-difference channels (R-G and
    (R+G)/2-B) on a 256-px view (half the 512-px one, where JPEG's 4:2:0 chroma lives), with
    Immerkaer's noise operator and a median. Fine texture (grass, gravel,
    fabric) is nearly colourless detail and is not mistaken for noise; sensor
    noise is strongly colourful. raw = the estimated chroma sigma in grey
    levels: 0-0.8 for clean photos, about 6 for heavy high-ISO noise (sigma 25
    per channel) after JPEG compression. Noise left in luminance only is what
    BRISQUE sees.
    normalised = 1 / (1 + (max(0, sigma - 1.5) / 1.5)^2): 1 up to 1.5, 0.5 at 3, 0.1 at 6."""

    name, task, version = "noise", "technical", VERSION
    CLEAN, SCALE = 1.5, 1.5

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        sigma = chroma_noise(image)
        return [Score(self.name, self.task, sigma, noise_quality(sigma), self.version)]


def chroma_noise(image: "Decoded") -> float:  # noqa: F821
    """The chroma noise sigma of :class:`Noise`, measured once per photo (the face
    scorer uses it too)."""

    def measure() -> float:
        h, w = image.rgb.shape[:2]
        if max(h, w) > 2 * COLOUR_VIEW_EDGE:
            view = colour_view(image)
        else:  # half the photo, as for larger ones half their 512-px view
            view = cv2.resize(image.rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        rgb = view.astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        sigmas = []
        for channel in (r - g, 0.5 * (r + g) - b):
            response = np.abs(cv2.filter2D(channel, cv2.CV_32F, _NOISE_KERNEL))[1:-1, 1:-1]
            # the median of |operator| over Gaussian noise is 0.6745 x 6 sigma: scale back to sigma
            sigmas.append(float(np.median(response)) / (0.6745 * 6.0))
        return float(np.mean(sigmas))

    return image.shared("chroma_noise", measure)


def colour_view(image: "Decoded") -> np.ndarray:  # noqa: F821
    """The 256-px RGB view of noise and colourfulness, area-averaged from the decode in one
    step and shared with every scorer that asks for ``image.resized(256)``.

    One step, not the decoded image's usual halvings: chroma noise depends on the filter
    that averages it, and this step measures what the 512-px view halved again measured
    (on 30 photos, clean and noisy: the same noise quality, sigma within 0.12) at 4.2 ms
    instead of 5.8 (1000x750; the halving path would read the noisy ones 17 % lower)."""
    h, w = image.rgb.shape[:2]
    if max(h, w) <= COLOUR_VIEW_EDGE:
        return image.rgb

    def make() -> np.ndarray:
        scale = COLOUR_VIEW_EDGE / max(h, w)
        view = cv2.resize(image.rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        view.setflags(write=False)
        return view

    return image.shared(("rgb", COLOUR_VIEW_EDGE), make)


def noise_quality(sigma: float) -> float:
    """:class:`Noise`'s 0..1 mapping of a chroma noise sigma (1 = clean)."""
    excess = max(0.0, sigma - Noise.CLEAN) / Noise.SCALE
    return 1.0 / (1.0 + excess * excess)


class Colourfulness:
    """Hasler and Suesstrunk's colourfulness metric M on a 64-px view made by a
    5x5 median, area averaging and a Gaussian (sigma 1.5 px): colour that spans
    the scene counts, sensor noise (colourful pixel by pixel) does not. On that
    view a grey photo with heavy colour noise measures M ~ 2; M ~ 15 is slightly,
    33 moderately, 59 quite and 82 highly colourful.
    normalised = (M - 3) / 87, clipped to 0..1."""

    # technical, not aesthetic: it measures the photo's colour statistics, and between
    # near-identical frames of a burst its small content-driven changes must not
    # outweigh sharpness. The aesthetic group belongs to the learned models.
    name, task, version = "colourfulness", "technical", VERSION
    GREY, FULL = 3.0, 90.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        small = cv2.resize(cv2.medianBlur(colour_view(image), 5), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        rgb = cv2.GaussianBlur(small, (0, 0), 1.5).astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        rg = r - g
        yb = 0.5 * (r + g) - b
        m = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
        value = (m - self.GREY) / (self.FULL - self.GREY)
        return [Score(self.name, self.task, m, min(1.0, max(0.0, value)), self.version)]
