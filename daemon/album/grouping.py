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
    """
    n = len(ids)
    if n == 0:
        return []
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    ids_sorted = [int(ids[i]) for i in order]
    hashes_sorted = [hashes[i] for i in order]
    # distance in [0, 1]: hash bits / 64, or 1 - cosine; > 1 means "not linked"
    dist = np.full((n, n), 2.0, dtype=np.float64)
    have_hash = np.array([h is not None for h in hashes_sorted])
    if have_hash.sum() > 1:
        idx = np.nonzero(have_hash)[0]
        ham = hamming_matrix([hashes_sorted[i] for i in idx]).astype(np.float64)
        sub = np.where(ham <= max_distance, ham / 64.0, 2.0)
        dist[np.ix_(idx, idx)] = sub
    if embeddings is not None:
        emb_sorted = [embeddings[i] for i in order]
        have_emb = np.array([e is not None for e in emb_sorted])
        if have_emb.sum() > 1:
            idx = np.nonzero(have_emb)[0]
            vectors = np.stack([np.asarray(emb_sorted[i], dtype=np.float64) for i in idx])
            cos = cosine_matrix(vectors)
            sub = np.where(cos >= min_similarity, 1.0 - cos, 2.0)
            block = dist[np.ix_(idx, idx)]
            dist[np.ix_(idx, idx)] = np.minimum(block, sub)
    rows, cols = np.nonzero(np.triu(dist <= 1.0, k=1))
    parent = list(range(n))
    size = [1] * n

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if len(rows):
        weights = dist[rows, cols]
        for k in np.lexsort((cols, rows, weights)):
            a, b = find(int(rows[k])), find(int(cols[k]))
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
