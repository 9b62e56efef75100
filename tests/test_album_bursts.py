"""Acceptance: 30 generated bursts scored by the real pipeline, then selected.

Each burst is one sharp, well-exposed photo and 2-6 variants of it (blurred,
noisy, dark, shifted), with EXIF capture times; five bursts share a moment
(40 s apart) so the hashes, not the clock, must tell them apart. The sharp
original must be picked in at least 28 of 30 bursts, every burst must be one
cluster, and every pick's reason must come back from `keepers picks --json`.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from daemon.imaging.demo import scene_image

#: (colorwheel and logo are left out: drawn images, with nothing a lens blurred and a white
#: ground that reads as blown highlights, so no measure of a photo's damage can rank their frames)
WHOLE = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "clock",
         "hubble_deep_field", "immunohistochemistry", "horse", "grass", "gravel", "brick", "cell", "retina")
#: large photos whose opposite quarters make further, different scenes
QUARTERED = ("astronaut", "coffee", "rocket", "hubble_deep_field", "retina", "chelsea")
VARIANTS = ("blurred", "noisy", "dark", "shifted")
SIZE = (320, 240)
START = datetime(2024, 5, 1, 10, 0, 0)


def scenes() -> list[Image.Image]:
    out = [scene_image(n).resize(SIZE) for n in WHOLE]
    for name in QUARTERED:
        img = scene_image(name)
        w, h = img.size
        out += [img.crop((0, 0, w // 2, h // 2)).resize(SIZE), img.crop((w // 2, h // 2, w, h)).resize(SIZE)]
    return out


def variant(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    if kind == "blurred":
        return img.filter(ImageFilter.GaussianBlur(4))
    if kind == "noisy":
        noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 25, (h, w, 3))
        return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))
    if kind == "dark":
        return ImageEnhance.Brightness(img).enhance(0.4)
    # the subject moved between frames: reframed by 4 % and softened by the motion.
    # (A pure crop-and-resize is as good a photo as the original; no measure
    # should be asked to prefer one of two equally good frames.)
    dx = int(w * 0.04)
    return img.crop((dx, 0, w, h)).resize((w, h)).filter(ImageFilter.GaussianBlur(1.0))


def save_with_time(img: Image.Image, path: Path, when: datetime) -> None:
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp  # DateTime
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = stamp  # DateTimeOriginal
    ifd[0x9291] = f"{when.microsecond // 10000:02d}"  # SubSecTimeOriginal
    img.save(path, quality=92, exif=exif)
    os.utime(path, (when.timestamp(), when.timestamp()))


def write_bursts(folder: Path, seed: int = 5) -> list[tuple[str, list[str]]]:
    """30 bursts as JPEG files; returns (original path, every path of the burst) per burst."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    bursts = []
    for b, scene in enumerate(scenes()[:30]):
        start = START + timedelta(minutes=10 * (b // 5), seconds=40 * (b % 5))
        kinds = [rng.choice(VARIANTS) for _ in range(rng.randint(2, 6))]
        frames = [("original", scene)] + [(k, variant(scene, k, noise)) for k in kinds]
        order = list(range(len(frames)))
        rng.shuffle(order)  # the original is not always the first frame
        paths = []
        original = ""
        for slot, i in enumerate(order):
            kind, img = frames[i]
            path = folder / f"burst{b:02d}_{slot}_{kind}.jpg"
            save_with_time(img, path, start + timedelta(milliseconds=300 * slot))
            paths.append(str(path))
            if kind == "original":
                original = str(path)
        bursts.append((original, paths))
    return bursts


def keepers(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("keepers")), *argv], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_sharp_original_of_each_generated_burst_is_picked(photo_dir: Path, db_path: Path) -> None:
    pytest.importorskip("daemon.scoring.pipeline", reason="the scoring pipeline (keepers run --once) has not landed yet")
    bursts = write_bursts(photo_dir)
    scored = keepers("run", "--once", "--photos", str(photo_dir), "--db", str(db_path))
    assert scored.returncode == 0, scored.stderr[-3000:]
    selected = keepers("reselect", "--db", str(db_path), "--json")
    assert selected.returncode == 0, selected.stderr[-3000:]
    listed = keepers("picks", "--db", str(db_path), "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    picks = {p["path"]: p for p in json.loads(listed.stdout)}

    import sqlite3

    conn = sqlite3.connect(db_path)
    cluster = {path: (m, c) for path, m, c in conn.execute("SELECT path, moment, cluster FROM images")}
    conn.close()
    cluster_of_burst = []
    for original, paths in bursts:
        assert len({cluster[p] for p in paths}) == 1, f"burst of {original} was split: {[cluster[p] for p in paths]}"
        cluster_of_burst.append(cluster[original])
    assert len(set(cluster_of_burst)) == 30, "two bursts were merged into one cluster"

    originals_picked = [original for original, _ in bursts if original in picks]
    losers = {
        original: [p for p in paths if p in picks]
        for original, paths in bursts
        if original not in picks
    }
    assert len(originals_picked) >= 28, f"only {len(originals_picked)} of 30 originals picked; instead: {losers}"
    assert len(picks) == 30
    for p in picks.values():
        assert p["reason"]["decided_by"] in ("composite", "comparator")
        assert p["reason"]["groups"] and p["reason"]["coverage"]


#: natural photos. Left out: scikit-image's drawn or generated images (haze or clipping on a
#: colour wheel is no defect a camera makes), and the rocket at dusk: a low-key photo 1.3 stops
#: under mid-grey, whose +1.5 EV frame clips under 2 % of the frame and reads as better exposed
#: (bench/quality.py's over-exposure family shows it)
ONE_DEFECT_SCENES = ("astronaut", "camera", "coffee", "chelsea", "coins", "moon", "immunohistochemistry")


def one_defect(img: Image.Image, kind: str) -> Image.Image:
    """The undamaged frame with one more defect: JPEG compression, over-exposure, haze."""
    px = np.asarray(img, dtype=np.float64)
    if kind == "compressed":  # saved once at JPEG quality 8 (the burst's files are then written at 92)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=8)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if kind == "bright":  # +1.5 EV in linear light, the highlights clipped
        return Image.fromarray((np.clip((px / 255.0) ** 2.2 * 2.0**1.5, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8))
    if kind == "hazy":  # a bright veil over half the light
        return Image.fromarray((px * 0.5 + 205 * 0.5 + 0.5).astype(np.uint8))
    raise ValueError(kind)


@pytest.mark.slow
def test_in_bursts_that_differ_in_one_defect_the_undamaged_frame_is_picked(photo_dir: Path, db_path: Path) -> None:
    bursts = []
    for b, name in enumerate(ONE_DEFECT_SCENES):
        scene = scene_image(name).resize(SIZE)
        start = START + timedelta(minutes=10 * b)
        frames = [("original", scene)] + [(k, one_defect(scene, k)) for k in ("compressed", "bright", "hazy")]
        paths = []
        for slot, (kind, img) in enumerate(frames[1:] + frames[:1] if b % 2 else frames):
            path = photo_dir / f"defect{b:02d}_{slot}_{kind}.jpg"
            save_with_time(img, path, start + timedelta(milliseconds=300 * slot))
            paths.append(str(path))
        bursts.append((next(p for p in paths if p.endswith("_original.jpg")), paths))
    scored = keepers("run", "--once", "--no-album", "--photos", str(photo_dir), "--db", str(db_path))
    assert scored.returncode == 0, scored.stderr[-3000:]
    selected = keepers("reselect", "--db", str(db_path), "--json")
    assert selected.returncode == 0, selected.stderr[-3000:]
    listed = keepers("picks", "--db", str(db_path), "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    picks = {p["path"] for p in json.loads(listed.stdout)}
    lost = {original: sorted(set(paths) & picks) for original, paths in bursts if original not in picks}
    assert not lost, f"the damaged frame was picked instead: {lost}"
