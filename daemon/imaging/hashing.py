"""Fingerprints: a perceptual hash for near-duplicates, a content hash for moves."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import blake3
import numpy as np

from .decode import Decoded

CHUNK = 1 << 20


#: Stored beside each image's phash. Change it whenever the same pixels would hash
#: differently: photos hashed the older way are then hashed again (see
#: scan.outdated_photos), so the album never compares hashes made two ways.
PHASH_VERSION = "4"  # 3: from the box-averaged 256-px view (decode.box_factor); 4: from the 128-px one
PHASH_EDGE = 128  # the hash is taken from the photo's 128-px grey view


def phash(image: Decoded | np.ndarray, bits: int = 8) -> str:
    """64-bit perceptual hash (imagehash's pHash) as 16 hex digits.

    The signs of the low-frequency DCT coefficients of a 32x32 grey thumbnail:
    blur, noise and exposure changes move few bits while a different scene
    moves about half of them. pHash rather than dHash because dHash's bits
    turn to noise on underexposed frames: on generated bursts a dark frame was
    23 bits from its own burst with dHash (16 with pHash) while two different
    scenes came within 13 (18). The album's ``hash_distance`` default is
    calibrated on this hash in tests/test_album_thresholds.py.

    The thumbnail is made from the 128-px grey view rather than from the whole
    decoded photo: on a 1000-px decode that view is the 8 x 8 box average (125 px; see
    decode.box_factor), and the hash costs 0.35 ms instead of 0.7 from the 256-px view
    (imagehash's Lanczos filter reads every pixel it is given) and 2.3 from the whole
    decode. A 32x32 thumbnail needs no more: on 72 photos and damaged versions decoded
    at 1000 px, against the 256-px view, 57 hashed the same, 13 were 2 bits apart, 2
    were 4 and 6; the album's ``hash_distance`` tests pass unchanged.
    """
    import imagehash
    from PIL import Image

    if not isinstance(image, Decoded):
        image = Decoded.from_array(image)  # grey or RGB pixels; its grey() is the same luma
    return str(imagehash.phash(Image.fromarray(image.grey_resized(PHASH_EDGE)), hash_size=bits))


def warm() -> None:
    """Import what :func:`phash` needs (imagehash and scipy: ~65 ms here) ahead of the first photo."""
    import imagehash  # noqa: F401


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


#: a content hash as keepers stores it: this prefix and blake3-128; rows stored before it
#: carry blake2b-128 of the same bytes (32 hex digits, no prefix), which still match
CONTENT_PREFIX = "b3:"


def content_hash(path: Path | str) -> str:
    """``b3:`` and blake3-128 of the file's size, first MiB and last MiB: the same photo
    moved or renamed keeps it. A camera file's first MiB holds its EXIF (capture time
    to the second, serial numbers) and the start of its image data, so two
    different photos do not share it; reading 2 MiB instead of a whole 50 MB RAW
    keeps move detection cheap. blake3 rather than blake2b (hashlib's, which earlier
    versions stored): 0.30 ms for the 2 MiB instead of 2.36 here, a tenth of a 24 MP
    JPEG's reduced decode; both are cryptographic, so two files that share one share
    their bytes."""
    return CONTENT_PREFIX + _sampled(path, blake3.blake3()).hexdigest(16)


def legacy_content_hash(path: Path | str) -> str:
    """The content hash as keepers stored it before ``b3:``: blake2b-128 of the same bytes."""
    return _sampled(path, hashlib.blake2b(digest_size=16)).hexdigest()


def _sampled(path: Path | str, h: Any) -> Any:
    """``h`` fed the file's size (8 bytes, little-endian), then the whole file up to 2 MiB, else its first and last MiB."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        if size <= 2 * CHUNK:
            h.update(fh.read())
        else:
            h.update(fh.read(CHUNK))
            fh.seek(size - CHUNK)
            h.update(fh.read(CHUNK))
    return h


class ContentMatch:
    """Whether a file holds the content a stored row's hash names, in whichever form the
    row stored it (each form computed at most once, and only when a row asks for it).
    Raises OSError when the file cannot be read."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._digests: dict[bool, str] = {}

    def matches(self, stored: str | None) -> bool:
        if not stored:
            return False
        current = stored.startswith(CONTENT_PREFIX)
        if current not in self._digests:
            self._digests[current] = content_hash(self.path) if current else legacy_content_hash(self.path)
        return self._digests[current] == stored
