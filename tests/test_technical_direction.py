"""The technical measures point the right way on real photos.

For each kind of damage bench/quality.py grades (blur, camera shake, JPEG, noise,
under- and over-exposure, haze), at its worst level, on two of scikit-image's
photos saved and decoded as the daemon reads them: the undamaged photo outranks
the damaged one on the composite and on the measure meant for that defect, and
no measure the default config counts rises with a defect it is not about (more
than 0.03: a measure blind to a defect may move by a few hundredths).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from daemon.config import load_config
from daemon.imaging.decode import decode_image
from daemon.scoring.builtin import builtin_scorers
from daemon.scoring.composite import composite, group_scores
from fixtures_photos import exposed, scene

PHOTOS = ("coffee", "chelsea")
QUALITY = 92
TOLERANCE = 0.03


def shake(px: np.ndarray, length: int) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    c = length // 2
    dx, dy = round(math.cos(math.radians(20)) * c), round(math.sin(math.radians(20)) * c)
    cv2.line(kernel, (c - dx, c - dy), (c + dx, c + dy), 1.0, 1, cv2.LINE_AA)
    return cv2.filter2D(px, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


# family -> (how the worst level is made, the measure meant for it); JPEG's is its save quality
DAMAGE = {
    "gaussian blur": (lambda px: cv2.GaussianBlur(px, (0, 0), 6.0), "sharpness"),
    "motion blur": (lambda px: shake(px, 35), "sharpness"),
    "jpeg quality 4": (4, "compression"),
    "gaussian noise": (lambda px: np.clip(px + np.random.default_rng(1).normal(0, 35, px.shape), 0, 255).astype(np.uint8), "noise"),
    "under-exposure -3 EV": (lambda px: np.asarray(exposed(Image.fromarray(px), -3.0)), "exposure"),
    "over-exposure +3 EV": (lambda px: np.asarray(exposed(Image.fromarray(px), 3.0)), "exposure"),
    "haze": (lambda px: np.clip(px * 0.2 + 205 * 0.8 + 0.5, 0, 255).astype(np.uint8), "contrast"),
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[dict[str, float], dict[str, float]]]:
    """(photo, family) -> (undamaged, damaged), each {measure: normalised, "composite": value}."""
    folder = tmp_path_factory.mktemp("damage")
    config = load_config(None, check_folders=False)
    scorers = builtin_scorers(config)

    def measure(px: np.ndarray, name: str, quality: int = QUALITY) -> dict[str, float]:
        path = folder / f"{name}.jpg"
        Image.fromarray(px).save(path, "JPEG", quality=quality)
        scores = [s for sc in scorers for s in sc.score(decode_image(path))]
        out = {s.name: s.normalised for s in scores if s.task == "technical"}
        out["composite"] = composite(group_scores((s.task, s.normalised) for s in scores), config.weights.as_dict()).value
        return out

    out = {}
    for photo in PHOTOS:
        px = np.asarray(scene(photo))
        clean = measure(px, photo)
        for family, (damage, _) in DAMAGE.items():
            name = f"{photo}-{family}".replace(" ", "_")
            out[(photo, family)] = (clean, measure(px, name, damage) if isinstance(damage, int) else measure(damage(px), name))
    return out


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("family", DAMAGE)
def test_the_undamaged_photo_outranks_its_most_damaged_version(scored, photo: str, family: str) -> None:
    clean, damaged = scored[(photo, family)]
    meant = DAMAGE[family][1]
    assert clean["composite"] > damaged["composite"], f"{photo}, {family}: composite {clean['composite']:.3f} vs {damaged['composite']:.3f}"
    assert clean[meant] > damaged[meant] + 0.2, f"{photo}, {family}: {meant} {clean[meant]:.3f} vs {damaged[meant]:.3f}"


@pytest.mark.parametrize("photo", PHOTOS)
@pytest.mark.parametrize("family", DAMAGE)
def test_no_measure_rises_with_a_defect_it_is_not_about(scored, photo: str, family: str) -> None:
    clean, damaged = scored[(photo, family)]
    meant = DAMAGE[family][1]
    risen = {m: round(damaged[m] - clean[m], 3) for m in clean if m not in (meant, "composite") and damaged[m] > clean[m] + TOLERANCE}
    assert not risen, f"{photo}, {family}: {risen} rose (undamaged {clean})"


def test_sharpness_ignores_noise_blocks_and_brightness_on_a_photo_with_a_black_backdrop(tmp_path: Path) -> None:
    """The astronaut's black sky: noise and a veil move pixels off the clipped limits, which
    must not hand the sharpness measure the suit's edges against the sky as new detail."""
    from daemon.scoring.builtin.technical import Sharpness

    px = np.asarray(scene("astronaut"))
    sharpness = Sharpness()

    def measure(pixels: np.ndarray, name: str, quality: int = QUALITY) -> float:
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=quality)
        return sharpness.score(decode_image(path))[0].normalised

    clean = measure(px, "clean")
    for family in ("gaussian noise", "under-exposure -3 EV", "over-exposure +3 EV", "haze", "jpeg quality 4"):
        damage = DAMAGE[family][0]
        worse = measure(px, family.replace(" ", "_"), damage) if isinstance(damage, int) else measure(damage(px), family.replace(" ", "_"))
        assert worse <= clean + TOLERANCE, f"sharpness rose with {family}: {clean:.3f} -> {worse:.3f}"


@pytest.mark.parametrize("photo", ["moon", "text", "brick"])
def test_a_darker_copy_of_a_flat_photo_has_no_more_contrast(photo: str, tmp_path: Path) -> None:
    """Flat and high-key photos (the moon's grey surface, print on paper, a brick wall) have
    no tones near black; darkened, they get some, which a black-level haze measure took for
    a veil lifted and let the darkened frame of a burst beat its original."""
    from PIL import ImageEnhance

    from daemon.scoring.builtin.technical import Contrast

    contrast = Contrast()
    img = scene(photo)

    def measure(im: Image.Image, name: str) -> float:
        path = tmp_path / f"{name}.jpg"
        im.convert("RGB").save(path, "JPEG", quality=QUALITY)
        return contrast.score(decode_image(path))[0].normalised

    clean = measure(img, photo)
    for factor in (0.7, 0.4):
        darker = measure(ImageEnhance.Brightness(img).enhance(factor), f"{photo}-{factor}")
        assert darker <= clean + 0.01, f"{photo} darkened to {factor}: contrast {clean:.3f} -> {darker:.3f}"
