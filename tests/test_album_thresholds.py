"""The default near-duplicate threshold, justified on generated bursts.

Each burst is one of scikit-image's bundled photos and variants a camera
burst produces (blur, sensor noise, underexposure, a small reframing). The
default ``hash_distance`` must keep every variant with its original and keep
every two different scenes apart.
"""

from __future__ import annotations

import itertools

import imagehash
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from daemon.imaging.demo import scene_image
from daemon.config import AlbumConfig

SCENES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "clock",
          "hubble_deep_field", "immunohistochemistry", "horse", "grass", "gravel", "brick", "cell", "colorwheel", "retina", "logo")


def scene(name: str) -> Image.Image:
    return scene_image(name).resize((320, 240))


def burst_variants(img: Image.Image, seed: int) -> dict[str, Image.Image]:
    rng = np.random.default_rng(seed)
    w, h = img.size
    noisy = np.asarray(img, dtype=np.float64) + rng.normal(0, 25, (h, w, 3))
    return {
        "blurred": img.filter(ImageFilter.GaussianBlur(4)),
        "noisy": Image.fromarray(noisy.clip(0, 255).astype(np.uint8)),
        "dark": ImageEnhance.Brightness(img).enhance(0.4),
        "shifted": img.crop((int(w * 0.04), 0, w, h)).resize((w, h)),
    }


def phash(img: Image.Image) -> imagehash.ImageHash:
    return imagehash.phash(img, hash_size=8)  # 64 bits, as images.phash stores them


def test_default_hash_distance_keeps_bursts_together_and_scenes_apart() -> None:
    threshold = AlbumConfig().hash_distance
    originals = {name: scene(name) for name in SCENES}
    hashes = {name: phash(img) for name, img in originals.items()}
    within = {
        (name, kind): hashes[name] - phash(variant)
        for i, (name, img) in enumerate(originals.items())
        for kind, variant in burst_variants(img, i).items()
    }
    between = {(a, b): hashes[a] - hashes[b] for a, b in itertools.combinations(SCENES, 2)}
    worst_within = max(within.values())
    closest_between = min(between.values())
    assert worst_within <= threshold < closest_between, (
        f"hash_distance {threshold}: worst burst variant {worst_within} bits "
        f"({max(within, key=within.get)}), closest two scenes {closest_between} bits ({min(between, key=between.get)})"
    )


def test_readme_quotes_the_default_hash_distance() -> None:
    """README said 14 while the default was 16: the number a reader tunes from must be the real one."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"`hash_distance` \((\d+) of 64\)", readme)
    assert quoted is not None, "README no longer quotes hash_distance's default"
    assert int(quoted.group(1)) == AlbumConfig().hash_distance
