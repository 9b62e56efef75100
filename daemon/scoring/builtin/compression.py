"""JPEG compression artefacts: the 8x8 block grid seen in the pixels, and the
quantisation table the file declares.

JPEG codes a photo in 8x8 blocks; coarse quantisation leaves steps at the
block edges that no lens makes. Where the decode kept the original pixel grid
(photos up to the decode size, which libjpeg does not scale), the steps show as
a period-8 excess in the luma differences between neighbouring columns and
rows. Larger photos are decoded at 1/2 to 1/8 scale and their grid is gone from
the pixels the other scorers see; for them the file's own quantisation table is
the evidence (``PhotoMeta.jpeg_quality``, read while decoding).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..base import Score

VERSION = "1"
BLOCK = 8
FLOOR = 2.0  # grey levels added to the in-block steps: a 1-level step on a flat sky is not a visible block edge


@dataclass(frozen=True)
class BlockGrid:
    """The 8x8 grid found in a photo's decoded luma."""

    blockiness: float  # mean over x and y of (difference across the grid line / across other columns - 1)
    phase_x: int  # grid lines lie between columns k and k + 1 for k % 8 == phase_x
    phase_y: int


def _profile(diffs: np.ndarray) -> tuple[float, int]:
    """Excess of the strongest of the 8 phases over the mean of the other 7, and that phase."""
    n = diffs.size - diffs.size % BLOCK
    if n < 4 * BLOCK:
        return 0.0, 0
    phases = diffs[:n].reshape(-1, BLOCK).mean(axis=0)
    k = int(np.argmax(phases))
    rest = (float(phases.sum()) - float(phases[k])) / (BLOCK - 1)
    return (float(phases[k]) - rest) / (rest + FLOOR), k


def block_grid(image: "Decoded") -> BlockGrid:  # noqa: F821
    """The block grid of the decoded luma, measured once per photo (sharpness uses it
    to leave block edges out); none for a photo decoded smaller than it is. Every second
    row (column) is enough for the column (row) profile and halves the cost."""

    def measure() -> BlockGrid:
        if max(image.rgb.shape[:2]) < max(image.meta.width, image.meta.height):
            return BlockGrid(0.0, 0, 0)  # decoded at 1/2-1/8 scale or shrunk: no 8-px grid to see
        grey = image.grey()
        rows, cols = grey[::2], grey[:, ::2]
        across_columns = cv2.reduce(cv2.absdiff(rows[:, 1:], rows[:, :-1]), 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        across_rows = cv2.reduce(cv2.absdiff(cols[1:], cols[:-1]), 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        bx, px = _profile(across_columns)
        by, py = _profile(across_rows)
        return BlockGrid(0.5 * (bx + by), px, py)

    return image.shared("block_grid", measure)


class Compression:
    """Block artefacts of JPEG compression.

    raw = blockiness B: the mean luma step across the strongest of the eight column
    (row) phases minus the mean step across the other seven, over the latter plus
    2 grey levels, the mean of the two directions. On scikit-image's photos saved
    at JPEG quality 92 it measures 0.02-0.08 (chance alone makes one phase the
    largest), at quality 40 0.3-0.4, at 20 0.5-0.7, at 10 about 1, at 4 1.4-3.
    pixels = 1 / (1 + (max(0, B - 0.1) / 0.3)^2).
    A JPEG also declares its quality Q (libjpeg's scale, from its quantisation table):
    table = 1 / (1 + (max(0, 85 - Q) / 30)^2), 1 from Q 85 up, 0.5 at 55, 0.2 at 25.
    normalised = the lower of the two (a photo re-saved at a high quality keeps the
    blocks an earlier low one left; a large JPEG's blocks are too small to see in
    the decode, so only its table speaks)."""

    name, task, version = "compression", "technical", VERSION
    CLEAN, SCALE = 0.1, 0.3
    FINE_Q, Q_SCALE = 85.0, 30.0

    def score(self, image: "Decoded") -> list[Score]:  # noqa: F821
        grid = block_grid(image)
        excess = max(0.0, grid.blockiness - self.CLEAN) / self.SCALE
        value = 1.0 / (1.0 + excess * excess)
        quality = image.meta.jpeg_quality
        if quality is not None:
            short = max(0.0, self.FINE_Q - quality) / self.Q_SCALE
            value = min(value, 1.0 / (1.0 + short * short))
        return [Score(self.name, self.task, grid.blockiness, min(1.0, max(0.0, value)), self.version,
                      {"jpeg_quality": quality, "blockiness": round(grid.blockiness, 4)})]
