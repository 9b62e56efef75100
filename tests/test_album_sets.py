"""Brackets and panoramas are kept whole; pins and rejects still apply to them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image
from skimage import data

from daemon.album import run_selection
from daemon.album.manual import set_choice
from daemon.album.sets import SetCandidate, exposure_bias, find_brackets, find_panoramas
from daemon.album.synthetic import SyntheticPhoto, insert_photo
from daemon.config import AlbumConfig, Config
from daemon.store.writer import StoreWriter

T0 = 1_700_000_000.0


@pytest.fixture
def writer(db_path: Path):
    w = StoreWriter(db_path)
    yield w
    w.close()


def add(writer: StoreWriter, photo: SyntheticPhoto) -> int:
    return writer.call(lambda db: insert_photo(db, photo))


def picked(writer: StoreWriter) -> dict[int, dict]:
    return {r[0]: json.loads(r[1]) for r in writer.db.conn.execute("SELECT image_id, reason FROM picks")}


def write_photo(path: Path, pixels: np.ndarray) -> str:
    img = Image.fromarray(pixels)
    img.save(path, quality=90)
    return f"{imagehash.phash(img, hash_size=8)}"


@pytest.mark.parametrize("value", [-2, "-2/1", "\u22122", [-4, 2], "-2.0 EV"])
def test_exposure_bias_reads_the_forms_exif_tools_write(value: object) -> None:
    assert exposure_bias({"ExposureBiasValue": value}) == -2.0


def test_bracket_at_the_same_second_is_kept_whole(writer: StoreWriter) -> None:
    h = "3c3c3c3c3c3c3c3c"  # the frames look alike to the hash: without bracket detection they would be culled to one
    frames = [
        add(writer, SyntheticPhoto(f"/p/b/IMG_{i}.jpg", T0, {"aesthetic": s, "technical": s}, h, exif={"ExposureBiasValue": ev, "ExposureMode": 2}))
        for i, (ev, s) in enumerate([(-2, 0.3), (0, 0.8), (2, 0.4)])
    ]
    lone = add(writer, SyntheticPhoto("/p/b/IMG_9.jpg", T0 + 30, {"aesthetic": 0.5}, h))
    run_selection(writer, Config())
    chosen = picked(writer)
    assert set(frames) <= set(chosen)
    assert lone in chosen  # 30 s later: not part of the bracket, its own cluster
    for image_id in frames:
        assert chosen[image_id]["decided_by"] == "set"
        assert chosen[image_id]["set"] == {"kind": "bracket", "frames": 3}
    clusters = {c for (c,) in writer.db.conn.execute("SELECT DISTINCT cluster FROM images WHERE id IN (?, ?, ?)", frames)}
    assert clusters == {frames[0]}


def test_a_burst_at_one_exposure_is_not_a_bracket() -> None:
    frames = [SetCandidate(i, f"/x/{i}.jpg", T0 + 0.2 * i, {"ExposureBiasValue": 0, "ExposureMode": 0}) for i in range(5)]
    assert find_brackets(frames, 2.0) == []


def _panorama(folder: Path) -> list[tuple[str, str]]:
    scene = np.asarray(Image.fromarray(data.astronaut()).resize((768, 384)))
    out = []
    for i, x in enumerate((0, 160, 320)):  # three 448-wide frames, each shifted by ~36 % of its width
        path = folder / f"PANO_{i}.jpg"
        out.append((str(path), write_photo(path, np.ascontiguousarray(scene[:, x : x + 448]))))
    return out


def test_panorama_frames_are_found_by_their_overlap(photo_dir: Path) -> None:
    frames = _panorama(photo_dir)
    cands = [SetCandidate(i, p, T0 + 2 * i, {}, 448, 384) for i, (p, _) in enumerate(frames)]
    other = photo_dir / "cat.jpg"
    write_photo(other, np.asarray(Image.fromarray(data.chelsea()).resize((448, 384))))
    cands.append(SetCandidate(3, str(other), T0 + 7, {}, 448, 384))
    assert find_panoramas(cands, 10.0) == [[0, 1, 2]]
    assert find_panoramas(cands, 1.0) == []  # too far apart in time to be one sweep


def test_panorama_is_kept_whole_and_a_rejected_frame_never_picked(writer: StoreWriter, photo_dir: Path) -> None:
    frames = [
        add(writer, SyntheticPhoto(path, T0 + 2 * i, {"aesthetic": 0.3 + 0.2 * i}, h, width=448, height=384))
        for i, (path, h) in enumerate(_panorama(photo_dir))
    ]
    config = Config(album=dataclasses.replace(AlbumConfig(), hash_distance=20))
    run_selection(writer, config)
    chosen = picked(writer)
    assert set(chosen) == set(frames)
    assert all(chosen[f]["set"]["kind"] == "panorama" for f in frames)
    writer.call(lambda db: set_choice(db, frames[1], "reject"))
    for full in (False, True):
        run_selection(writer, config, full=full)
        assert set(picked(writer)) == {frames[0], frames[2]}
