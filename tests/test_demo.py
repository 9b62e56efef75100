"""`keepers demo DIR` writes a usable sample set: readable JPEGs with EXIF capture
times, grouped into bursts whose sharp frame really is the sharpest, written once."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image

from daemon.cli import main
from daemon.imaging.decode import decode_image
from daemon.imaging.demo import VARIANTS, write_demo_set
from daemon.scoring.builtin.technical import Sharpness

KEEPERS = Path(sys.executable).with_name("keepers")


def test_keepers_demo_writes_readable_jpegs_with_capture_times_in_bursts(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run([str(KEEPERS), "demo", str(folder), "--count", "10"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    photos = sorted(folder.glob("*.jpg"))
    assert len(photos) == 10 and f"wrote 10 photos to {folder}" in done.stdout

    bursts: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for path in photos:
        with Image.open(path) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and min(img.size) >= 256
            img.load()
            taken = img.getexif().get_ifd(0x8769).get(0x9003)
        assert taken, f"{path.name} has no EXIF DateTimeOriginal"
        decoded = decode_image(path)
        assert decoded.meta.taken_at is not None
        scene = path.stem.split("_")[1]
        bursts[scene].append((decoded.meta.taken_at, path.stem.rsplit("_", 1)[1]))

    assert len(bursts) == 2, f"10 photos should be two scenes of {len(VARIANTS)} frames: {dict(bursts)}"
    spans = []
    for scene, frames in bursts.items():
        times = sorted(t for t, _ in frames)
        assert {v for _, v in frames} == set(VARIANTS), scene
        assert times[-1] - times[0] <= 10, f"{scene}: a burst should share a moment, spans {times[-1] - times[0]} s"
        spans.append((times[0], times[-1]))
    spans.sort()
    assert spans[1][0] - spans[0][1] >= 300, "scenes should be minutes apart"


def test_the_sharp_frame_of_each_demo_burst_is_the_sharpest(tmp_path: Path) -> None:
    paths = write_demo_set(tmp_path, count=15)
    by_scene: dict[str, dict[str, float]] = defaultdict(dict)
    for path in paths:
        _, scene, _, variant = path.stem.split("_", 3)
        by_scene[scene][variant] = Sharpness().score(decode_image(path))[0].normalised
    assert len(by_scene) == 3
    for scene, frames in by_scene.items():
        assert frames["sharp"] > frames["blurred"] and frames["sharp"] > frames["shifted"], (scene, frames)


def test_writing_the_demo_set_again_rewrites_nothing(tmp_path: Path, capsys) -> None:
    assert main(["demo", str(tmp_path), "--count", "5"]) == 0
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.jpg")}
    assert len(before) == 5
    assert main(["demo", str(tmp_path), "--count", "5"]) == 0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.jpg")} == before
    assert "wrote 5 photos" in capsys.readouterr().out


def test_a_count_below_one_is_refused_with_a_reason(tmp_path: Path, capsys) -> None:
    assert main(["demo", str(tmp_path / "d"), "--count", "0"]) != 0
    assert "--count must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_the_demo_album_picks_the_sharp_frame_of_every_burst(tmp_path: Path, capsys) -> None:
    """What `make run` shows a new user first: one pick per burst, and it is the clean, sharp frame
    (the noisy one used to win the astronaut's burst on its noise-inflated face sharpness)."""
    import json

    folder, db = tmp_path / "demo", tmp_path / "keepers.db"
    write_demo_set(folder)
    assert main(["run", "--once", "--photos", str(folder), "--db", str(db)]) == 0
    assert main(["reselect", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["picks", "--db", str(db), "--json"]) == 0
    picks = json.loads(capsys.readouterr().out)
    scenes = {Path(p).stem.split("_")[1] for p in folder.glob("*.jpg")}
    assert len(picks) == len(scenes) and all(Path(p["path"]).stem.endswith("_sharp") for p in picks), \
        [(Path(p["path"]).name, p["reason"]["decided_by"]) for p in picks]
