"""Photo builders shared by the tests: real pixels from scikit-image's bundled
photos, large JPEGs made cheaply, EXIF capture times, and a corpus of hostile files."""

from __future__ import annotations

import os
import struct
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.imaging.demo import scene_image

SCENES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def scene(name: str, size: tuple[int, int] | None = None) -> Image.Image:
    """One of scikit-image's bundled photos as an RGB image, optionally resized (w, h)."""
    img = scene_image(name)
    return img.resize(size, Image.Resampling.BILINEAR) if size else img


def exposed(img: Image.Image, ev: float) -> Image.Image:
    """``ev`` stops more (or, negative, fewer) light, in linear light; what goes past white
    clips (bench/quality.py's over- and under-exposure too)."""
    px = np.asarray(img, dtype=np.float64) / 255.0
    lin = np.clip(np.where(px <= 0.04045, px / 12.92, ((px + 0.055) / 1.055) ** 2.4) * 2.0**ev, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return Image.fromarray((srgb * 255 + 0.5).astype(np.uint8))


def exif_for(taken: datetime | None = None, *, orientation: int | None = None, make: str | None = None,
             model: str | None = None, bias: float | None = None, offset: str | None = None) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    sub = exif.get_ifd(0x8769)
    if taken is not None:
        sub[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if offset:
        sub[0x9011] = offset
    if bias is not None:
        sub[0x9204] = bias
    return exif


def save_jpeg(img: Image.Image, path: Path, *, quality: int = 90, exif: Image.Exif | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=quality, **({"exif": exif} if exif is not None else {}))
    return path


def twelve_megapixel_jpegs(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 4000x3000 JPEGs: one upscaled base per scene, each copy
    shifted and tinted a little so no two files are identical."""
    folder.mkdir(parents=True, exist_ok=True)
    bases = [np.asarray(scene(n, (4000, 3000))) for n in SCENES[:3]]
    out = []
    for i in range(count):
        base = bases[i % len(bases)]
        shifted = np.roll(base, shift=(i * 7) % 50, axis=1)
        tinted = np.clip(shifted.astype(np.int16) + (i % 11) - 5, 0, 255).astype(np.uint8)
        out.append(save_jpeg(Image.fromarray(tinted), folder / f"IMG_{i:04d}.jpg", quality=85))
    return out


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = 50_000) -> Path:
    """A tiny PNG whose header claims side x side pixels (2.5 gigapixels): a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b""))
    return path


#: hostile name -> what keepers must do with it: "error" (an error row with a reason),
#: "scored" (a valid if unusual image: scored), "absent" (no row; the reason is logged)
HOSTILE_EXPECTED = {
    "empty.jpg": "error",
    "truncated.jpg": "error",
    "text.jpg": "error",
    "bomb.png": "error",
    "one_pixel.png": "error",       # 1x1 is a tracking pixel, not a photo: rejected as too small
    "deep16.png": "scored",         # a valid 16-bit photo: scored from its scaled-down 8-bit version
    "cmyk.jpg": "scored",           # a valid print-ready JPEG: converted to RGB and scored
    "animated.gif": "error",        # an animation is not a still photo
    "fifo.jpg": "error",            # not a regular file (stands in for unreadable when running as root)
    "broken_link.jpg": "error",
    "loop_link.jpg": "error",
    "folder.jpg": "error",          # a directory named like a photo
    b"caf\xe9.jpg": "error",        # a name that is not UTF-8
}


def build_hostile_corpus(folder: Path) -> dict[str | bytes, Path]:
    """Write every hostile file into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    good = scene("coffee", (320, 213))
    paths: dict[str | bytes, Path] = {}

    def p(name: str | bytes) -> Path:
        path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else name.encode())))
        paths[name] = path
        return path

    p("empty.jpg").write_bytes(b"")
    full = save_jpeg(good, folder / "full.tmp.jpg")
    p("truncated.jpg").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    p("text.jpg").write_text("this is a shopping list, not a photo\n")
    bomb_png(p("bomb.png"))
    Image.new("RGB", (1, 1), (200, 10, 10)).save(p("one_pixel.png"))
    deep = (np.linspace(0, 65535, 256 * 192, dtype=np.uint32).reshape(192, 256)).astype(np.uint16)
    Image.fromarray(deep).save(p("deep16.png"))
    good.convert("CMYK").save(p("cmyk.jpg"), "JPEG", quality=90)
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(p("animated.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    os.mkfifo(p("fifo.jpg"))
    os.symlink(folder / "nowhere.jpg", p("broken_link.jpg"))
    os.symlink("loop_link.jpg", p("loop_link.jpg"))
    p("folder.jpg").mkdir()
    save_jpeg(good, p(b"caf\xe9.jpg"))
    return paths


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    build_hostile_corpus(folder)
    for name in ("good_1.jpg", "good_2.jpg"):
        save_jpeg(scene("chelsea", (300, 200)), folder / name)
    return folder


@pytest.fixture(scope="session")
def jpegs_12mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 generated 12-megapixel JPEGs (made once per test session)."""
    folder = tmp_path_factory.mktemp("twelve-mp")
    twelve_megapixel_jpegs(folder, 200)
    return folder
