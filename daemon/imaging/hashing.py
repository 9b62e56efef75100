"""Fingerprints: a perceptual hash for near-duplicates, a content hash for moves."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .decode import Decoded

CHUNK = 1 << 20


def phash(image: Decoded | np.ndarray, bits: int = 8) -> str:
    """64-bit perceptual hash (imagehash's pHash) as 16 hex digits.

    The signs of the low-frequency DCT coefficients of a 32x32 grey thumbnail:
    blur, noise and exposure changes move few bits while a different scene
    moves about half of them. pHash rather than dHash because dHash's bits
    turn to noise on underexposed frames: on generated bursts a dark frame was
    23 bits from its own burst with dHash (16 with pHash) while two different
    scenes came within 13 (18). The album's ``hash_distance`` default is
    calibrated on this hash in tests/test_album_thresholds.py."""
    import imagehash
    from PIL import Image

    if isinstance(image, Decoded):
        grey = image.grey()
    else:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return str(imagehash.phash(Image.fromarray(grey), hash_size=bits))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def content_hash(path: Path | str) -> str:
    """blake2b-128 of the file's bytes: the same photo moved or renamed keeps it."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
