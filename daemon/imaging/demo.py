"""The demo set: real photos from scikit-image's bundled images, in bursts.

Each scene is one sharp, well-exposed photo followed by variants a
photographer's burst would hold: blurred (camera shake), noisy (high ISO),
dark (under-exposed) and shifted (the subject moved). Frames of a burst are a
second apart in their EXIF capture time; scenes are ten minutes apart, so
keepers' album sees one moment per scene and should pick the sharp frame.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

log = logging.getLogger(__name__)

SCENES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "camera", "retina")
VARIANTS = ("sharp", "blurred", "noisy", "dark", "shifted")
START = datetime(2024, 6, 1, 9, 0, 0)
MARKER = ".keepers-demo.json"


@dataclass(frozen=True)
class DemoPhoto:
    scene: str
    variant: str
    taken: datetime
    path: Path


def scene_image(name: str) -> Image.Image:
    """A scikit-image bundled photo as RGB (a few need a fetch; those are skipped by the caller)."""
    from skimage import data

    pixels = np.asarray(getattr(data, name)())
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    return Image.fromarray(pixels.astype(np.uint8)).convert("RGB")


def make_variant(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One burst frame: ``sharp`` (the original), ``blurred``, ``noisy``, ``dark`` or ``shifted``."""
    if kind == "sharp":
        return img
    if kind == "blurred":
        return img.filter(ImageFilter.GaussianBlur(max(2.0, img.width / 160)))
    if kind == "noisy":
        noisy = np.asarray(img, dtype=np.float32) + rng.normal(0.0, 22.0, (img.height, img.width, 3))
        return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if kind == "dark":
        return ImageEnhance.Brightness(img).enhance(0.35)
    if kind == "shifted":
        w, h = img.size
        dx, dy = max(2, w // 40), max(2, h // 60)
        return img.crop((dx, dy, w, h)).resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(1.2))
    raise ValueError(f"unknown variant {kind!r}; expected one of {', '.join(VARIANTS)}")


def exif_with_time(taken: datetime) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "keepers"
    exif[0x0110] = "demo set"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    return exif


def plan(folder: Path, count: int | None = None) -> list[DemoPhoto]:
    """What the demo set holds (``count`` caps the number of photos)."""
    photos = []
    for s, scene in enumerate(SCENES):
        for v, variant in enumerate(VARIANTS):
            taken = START + timedelta(minutes=10 * s, seconds=v)
            photos.append(DemoPhoto(scene, variant, taken, folder / f"{s + 1:02d}_{scene}_{v + 1}_{variant}.jpg"))
    return photos[:count] if count else photos


def write_demo_set(folder: Path, *, count: int | None = None) -> list[Path]:
    """Write the demo set into ``folder`` (created); returns the photos' paths.

    Idempotent: when a complete set from an earlier call is there, nothing is
    rewritten (the daemon would otherwise rescore it on every start)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = plan(folder, count)
    marker = folder / MARKER
    if marker.is_file() and all(p.path.is_file() for p in wanted):
        return [p.path for p in wanted]
    rng = np.random.default_rng(7)
    written: list[Path] = []
    cache: dict[str, Image.Image | None] = {}
    for photo in wanted:
        if photo.scene not in cache:
            try:
                cache[photo.scene] = scene_image(photo.scene)
            except Exception as exc:  # noqa: BLE001 - some scikit-image photos need a download; skip those
                log.info("demo set: skipping %s (%s)", photo.scene, exc)
                cache[photo.scene] = None
        base = cache[photo.scene]
        if base is None:
            continue
        make_variant(base, photo.variant, rng).save(photo.path, "JPEG", quality=92, exif=exif_with_time(photo.taken))
        written.append(photo.path)
    marker.write_text(json.dumps({"photos": len(written), "count": count}))
    return written
