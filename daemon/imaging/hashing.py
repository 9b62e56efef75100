"""Fingerprints: a perceptual hash for near-duplicates, a content hash for moves."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .decode import Decoded

CHUNK = 1 << 20


def dhash(image: Decoded | np.ndarray, bits: int = 8) -> str:
    """64-bit difference hash as 16 hex digits (imagehash's dhash layout).

    Each bit says whether a pixel is brighter than its right neighbour on a
    9x8 area-averaged grey thumbnail, so small blur, noise and exposure changes
    move few bits while a different scene moves about half of them."""
    grey = image.grey() if isinstance(image, Decoded) else image
    if grey.ndim == 3:
        grey = cv2.cvtColor(grey, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (bits + 1, bits), interpolation=cv2.INTER_AREA).astype(np.int16)
    diff = small[:, 1:] > small[:, :-1]
    value = 0
    for bit in diff.flatten():
        value = (value << 1) | int(bit)
    return f"{value:0{bits * bits // 4}x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def content_hash(path: Path | str) -> str:
    """blake2b-128 of the file's bytes: the same photo moved or renamed keeps it."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
