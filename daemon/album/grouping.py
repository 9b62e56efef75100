"""Moments, RAW+JPEG companions and near-duplicate clusters.

Everything here is pure: it takes plain values and returns groupings, so the
selection can run it on any subset of the library (only the moments touched
since the last run) and the property tests can drive it directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: extensions of camera RAW files; a RAW and a JPEG of the same base name are one photo
RAW_EXTENSIONS = frozenset(
    ".cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .raf .orf .rw2 .dng .pef .srw .raw .3fr .iiq .x3f .erf .kdc .mrw .rwl".split()
)


@dataclass(frozen=True)
class TimedPhoto:
    """What moment-splitting needs of a photo."""

    id: int
    folder: str
    taken_at: float


def assign_moments(photos: Sequence[TimedPhoto], gap_seconds: float) -> dict[int, int]:
    """Map each photo id to its moment id.

    Photos are ordered by capture time inside their folder; a gap longer than
    ``gap_seconds`` starts a new moment. A moment's id is the smallest photo id
    in it, so it stays put as long as its oldest photo does.
    """
    ordered = sorted(photos, key=lambda p: (p.folder, p.taken_at, p.id))
    result: dict[int, int] = {}
    current: list[int] = []
    last_folder: str | None = None
    last_time = 0.0
    for photo in ordered:
        if current and (photo.folder != last_folder or photo.taken_at - last_time > gap_seconds):
            moment = min(current)
            for pid in current:
                result[pid] = moment
            current = []
        current.append(photo.id)
        last_folder, last_time = photo.folder, photo.taken_at
    if current:
        moment = min(current)
        for pid in current:
            result[pid] = moment
    return result


def is_raw(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def companion_groups(paths: dict[int, str]) -> list[list[int]]:
    """Groups of photo ids that are one photo: the same folder and base name, at least one a RAW.

    Photos with no companion are not returned. Within a group, ids are sorted.
    """
    by_base: dict[tuple[str, str], list[int]] = {}
    for pid, path in paths.items():
        folder, name = os.path.split(path)
        by_base.setdefault((folder, os.path.splitext(name)[0].lower()), []).append(pid)
    return [sorted(ids) for ids in by_base.values() if len(ids) > 1 and any(is_raw(paths[i]) for i in ids)]


def hash_to_int(phash: str | None) -> int | None:
    """A 16-hex-digit perceptual hash as an integer, or None when missing or malformed."""
    if not phash:
        return None
    try:
        return int(phash, 16) & 0xFFFFFFFFFFFFFFFF
    except ValueError:
        return None


def hamming_matrix(hashes: Sequence[int]) -> np.ndarray:
    """Pairwise Hamming distances of 64-bit hashes (n x n, uint8), vectorised."""
    values = np.asarray(hashes, dtype=np.uint64)
    return np.bitwise_count(values[:, None] ^ values[None, :]).astype(np.uint8)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of row vectors (zero vectors are similar to nothing)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit @ unit.T


def cluster_photos(
    ids: Sequence[int],
    hashes: Sequence[int | None],
    *,
    max_distance: int,
    cap: int,
    embeddings: Sequence[np.ndarray | None] | None = None,
    min_similarity: float = 1.01,
) -> list[list[int]]:
    """Near-duplicate clusters of one moment's photos.

    Two photos are linked when their hashes are at most ``max_distance`` bits
    apart, or their embeddings have cosine similarity at least
    ``min_similarity``. Clusters are single-link, built closest pair first
    (ties by position), and a merge that would make a cluster larger than
    ``cap`` is skipped, so a chain of lookalikes cannot swallow a moment.
    Returns clusters as sorted id lists, ordered by their smallest id. The
    result does not depend on the order of ``ids``.

    Only the linked pairs leave numpy: a full reselection calls this once per
    moment, so the work is a few array operations and a union-find over the
    links, not over every pair.
    """
    n = len(ids)
    if n == 0:
        return []
    order = sorted(range(n), key=ids.__getitem__)  # stable: equal ids keep their order
    ids_sorted = [int(ids[i]) for i in order]
    if n == 1:
        return [ids_sorted]
    hashes_sorted = [hashes[i] for i in order]
    emb_sorted = None if embeddings is None else [embeddings[i] for i in order]
    if n <= SMALL_MOMENT and (emb_sorted is None or sum(e is not None for e in emb_sorted) < 2):
        pairs = _small_links(hashes_sorted, max_distance)
    else:
        rows, cols, weights = _links(hashes_sorted, max_distance, emb_sorted, min_similarity)
        ranked = np.lexsort((cols, rows, weights))
        pairs = list(zip(rows[ranked].tolist(), cols[ranked].tolist()))
    if not pairs:
        return [[i] for i in ids_sorted]
    parent = list(range(n))
    size = [1] * n

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        a, b = find(a), find(b)
        if a == b or size[a] + size[b] > cap:
            continue
        if a > b:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(ids_sorted[i])
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


#: up to this many photos (and no embeddings), the pairs are compared in Python: for the
#: few photos of a typical moment that is several times faster than numpy's set-up
SMALL_MOMENT = 32


def _small_links(hashes: Sequence[int | None], max_distance: int) -> list[tuple[int, int]]:
    """:func:`_links` by hashes alone, pair by pair: the linked (row, col), closest first, then by position."""
    found = []
    for i, a in enumerate(hashes):
        if a is not None:
            for j in range(i + 1, len(hashes)):
                b = hashes[j]
                if b is not None:
                    bits = (a ^ b).bit_count()
                    if bits <= max_distance:
                        found.append((bits, i, j))
    found.sort()
    return [(i, j) for _, i, j in found]


def _links(
    hashes: Sequence[int | None], max_distance: int, embeddings: Sequence[np.ndarray | None] | None, min_similarity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The linked pairs (row < col) of photos in id order, with their distance: hash bits
    (as bits / 64 when embeddings take part, so the two measures compare), or 1 - cosine."""
    n = len(hashes)
    have = np.fromiter((h is not None for h in hashes), dtype=bool, count=n)
    ham = hamming_matrix(np.fromiter((0 if h is None else h for h in hashes), dtype=np.uint64, count=n))
    linked = (ham <= max_distance) & have[:, None] & have[None, :]
    have_emb = None
    if embeddings is not None:
        have_emb = np.fromiter((e is not None for e in embeddings), dtype=bool, count=n)
        if have_emb.sum() < 2:
            have_emb = None
    if have_emb is None:
        rows, cols = np.nonzero(np.triu(linked, k=1))
        return rows, cols, ham[rows, cols]
    # distance in [0, 1]: hash bits / 64, or 1 - cosine; > 1 means "not linked"
    dist = np.where(linked, ham / 64.0, 2.0)
    idx = np.nonzero(have_emb)[0]
    vectors = np.stack([np.asarray(embeddings[i], dtype=np.float64) for i in idx])  # type: ignore[index]
    cos = cosine_matrix(vectors)
    sub = np.where(cos >= min_similarity, 1.0 - cos, 2.0)
    block = dist[np.ix_(idx, idx)]
    dist[np.ix_(idx, idx)] = np.minimum(block, sub)
    rows, cols = np.nonzero(np.triu(dist <= 1.0, k=1))
    return rows, cols, dist[rows, cols]
