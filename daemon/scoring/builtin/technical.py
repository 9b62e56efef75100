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
SHARPNESS_EDGE = 512  # long edge of the grey view sharpness and noise are measured on
TONE_EDGE = 256  # long edge of the view for exposure and contrast
COLOUR_EDGE = 128  # colourfulness on an area-averaged view: sensor noise averages out
TILES = 4  # sharpness: a TILES x TILES grid; the sharpest tiles stand for the subject

_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _saturate(value: float, half: float) -> float:
    """0..1, 0.5 at ``half``: value / (value + half)."""
    return float(value / (value + half)) if value > 0 else 0.0


class Sharpness:
    """Variance of the Laplacian on a 512-px grey view: the global value, and the
    mean of the three sharpest tiles of a 4x4 grid (a sharp subject on a soft
    background is a sharp photo). raw = the larger of the two.
    normalised = raw / (raw + 1000): on this view a crisp photo measures
    3 000-20 000 (0.75-0.95), a slightly soft one (Gaussian blur radius 2) about
    500-2 000 (0.33-0.67) and a visibly blurred one (radius 4) under 300."""

    name, task, version = "sharpness", "technical", VERSION
    HALF = 1000.0

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
        return [Score(self.name, self.task, raw, _saturate(raw, self.HALF), self.version,
                      {"global": round(overall, 2), "top_tiles": round(top, 2)})]


class Exposure:
    """Mean luminance and clipping on a 256-px grey view. raw = mean luminance
    (0-255). normalised = 0.6 x closeness of the mean to mid-grey 118
    (1 at 118, 0 at black or white) + 0.4 x (1 - 3 x the clipped fraction,
    pixels at <= 4 or >= 251, floored at 0)."""

    name, task, version = "exposure", "technical", VERSION
    MID = 118.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey = image.grey_resized(TONE_EDGE)
        mean = float(grey.mean())
        n = grey.size
        shadows = float(np.count_nonzero(grey <= 4)) / n
        highlights = float(np.count_nonzero(grey >= 251)) / n
        mid = 1.0 - min(1.0, abs(mean - self.MID) / self.MID)
        clip = max(0.0, 1.0 - 3.0 * (shadows + highlights))
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
    """Sensor noise: Immerkaer's fast estimate of the noise sigma (grey levels)
    on the 512-px view, over the flat 80 % of the photo (the strongest edges are
    left out so detail is not mistaken for noise).
    normalised = 1 / (1 + (sigma / 4)^2): 0.8 at sigma 2 (clean), 0.5 at 4, 0.14 at 10."""

    name, task, version = "noise", "technical", VERSION
    SCALE = 4.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grey = image.grey_resized(SHARPNESS_EDGE).astype(np.float32)
        response = np.abs(cv2.filter2D(grey, cv2.CV_32F, _NOISE_KERNEL))[1:-1, 1:-1]
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1]
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1]
        grad = np.abs(gx) + np.abs(gy)
        flat = grad <= np.percentile(grad, 80)
        values = response[flat] if np.count_nonzero(flat) > 64 else response.ravel()
        sigma = float(values.mean()) * math.sqrt(math.pi / 2.0) / 6.0
        return [Score(self.name, self.task, sigma, 1.0 / (1.0 + (sigma / self.SCALE) ** 2), self.version)]


class Colourfulness:
    """Hasler and Suesstrunk's colourfulness metric M on a 128-px area-averaged view
    (so noise does not read as colour). M ~ 15 slightly, 33 moderately, 59 quite,
    82 highly colourful. normalised = min(1, M / 90)."""

    name, task, version = "colourfulness", "aesthetic", VERSION
    FULL = 90.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        rgb = image.resized(COLOUR_EDGE).astype(np.float32)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        rg = r - g
        yb = 0.5 * (r + g) - b
        m = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
        return [Score(self.name, self.task, m, min(1.0, m / self.FULL), self.version)]
