"""The built-in scorers tell the truth: sharp beats blurred, good exposure beats
over- and under-exposure, clean beats noisy, a blurred or noisy face is a worse
portrait (finding faces: test_faces.py), and BRISQUE matches the reference
implementation's features."""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from daemon.config import load_config
from daemon.errors import ConfigError
from daemon.imaging.decode import Decoded, decode_image
from daemon.scoring.builtin import BUILTIN, builtin_scorers
from daemon.scoring.builtin.brisque import Brisque, features
from daemon.scoring.builtin.faces import Faces
from daemon.scoring.builtin.technical import Exposure, Noise, Sharpness, _median
from daemon.scoring.composite import group_scores
from fixtures_photos import exposed, scene

COLOUR_SCENES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def via_jpeg(img: Image.Image, tmp_path: Path, name: str, quality: int = 92) -> Decoded:
    path = tmp_path / f"{name}.jpg"
    img.save(path, "JPEG", quality=quality)
    return decode_image(path)


def crops() -> list[tuple[str, Image.Image]]:
    """24 varied photos: whole scenes and their opposite quarters, at camera-like aspect."""
    out = []
    for name in COLOUR_SCENES + ("camera", "moon"):
        img = scene(name)
        w, h = img.size
        out.append((name, img.resize((640, 480))))
        out.append((f"{name}-tl", img.crop((0, 0, w * 2 // 3, h * 2 // 3)).resize((480, 360))))
        if len(out) < 24:
            out.append((f"{name}-br", img.crop((w // 3, h // 3, w, h)).resize((480, 360))))
    return out[:24]


def technical(scores: list) -> float:
    return group_scores((s.task, s.normalised) for s in scores)["technical"]


def test_sharp_beats_blurred_in_at_least_95_percent_of_pairs(tmp_path: Path) -> None:
    config = load_config(None, check_folders=False)
    scorers = builtin_scorers(config)
    rng = np.random.default_rng(3)
    pairs = crops()
    sharper = tech_better = 0
    for name, img in pairs:
        radius = float(rng.uniform(1.5, 4.0))
        sharp = via_jpeg(img, tmp_path, f"{name}-sharp")
        soft = via_jpeg(img.filter(ImageFilter.GaussianBlur(radius)), tmp_path, f"{name}-soft")
        s_scores = [x for sc in scorers for x in sc.score(sharp)]
        b_scores = [x for sc in scorers for x in sc.score(soft)]
        by_name = lambda ss: {x.name: x.normalised for x in ss}  # noqa: E731
        sharper += by_name(s_scores)["sharpness"] > by_name(b_scores)["sharpness"]
        tech_better += technical(s_scores) > technical(b_scores)
    assert len(pairs) >= 20
    assert sharper / len(pairs) >= 0.95, f"sharpness ranked the sharp photo higher in {sharper} of {len(pairs)} pairs"
    assert tech_better / len(pairs) >= 0.95, f"the technical group ranked the sharp photo higher in {tech_better} of {len(pairs)} pairs"


def test_a_sharp_subject_on_a_soft_background_counts_as_sharp() -> None:
    img = scene("astronaut", (640, 480))
    soft = np.asarray(img.filter(ImageFilter.GaussianBlur(5))).copy()
    subject = np.asarray(img)[160:320, 240:400]
    soft[160:320, 240:400] = subject  # a sharp subject in a quarter of the frame
    all_soft = Sharpness().score(Decoded.from_array(np.asarray(img.filter(ImageFilter.GaussianBlur(5)))))[0]
    portrait = Sharpness().score(Decoded.from_array(soft))[0]
    # edge acuity is a ratio, not an amount of detail: a sharp subject on a twelfth of the frame
    # among strongly blurred edges lifts the whole frame's by about 0.07 (Laplacian variance: 0.15)
    assert portrait.normalised > all_soft.normalised + 0.05


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera", "immunohistochemistry"])
def test_over_and_under_exposed_copies_score_lower_exposure(name: str, tmp_path: Path) -> None:
    img = scene(name, (480, 360))
    original = Exposure().score(via_jpeg(img, tmp_path, "o"))[0]
    over = Exposure().score(via_jpeg(ImageEnhance.Brightness(img).enhance(2.8), tmp_path, "over"))[0]   # +1.5 EV
    under = Exposure().score(via_jpeg(ImageEnhance.Brightness(img).enhance(0.35), tmp_path, "under"))[0]  # -1.5 EV
    assert over.normalised < original.normalised and under.normalised < original.normalised
    assert over.detail["clipped_highlights"] > original.detail["clipped_highlights"]
    assert under.raw < original.raw < over.raw


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_exposure_keeps_falling_as_more_of_the_frame_blows_out(name: str, tmp_path: Path) -> None:
    """Each further half stop over (in linear light, the highlights clipped) scores lower: the
    measure does not bottom out at 0 after the first clipped level, where every worse
    frame would tie with it."""
    img = scene(name, (480, 360))
    values, blown = [], []
    for ev in (0.0, 0.7, 1.4, 2.1, 3.0):
        score = Exposure().score(via_jpeg(exposed(img, ev), tmp_path, f"ev{ev}"))[0]
        values.append(score.normalised)
        blown.append(score.detail["clipped_highlights"])
    assert blown == sorted(blown) and blown[-1] > 0.3, blown
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[-1] > 0.0  # still a measurement, not a floor


@pytest.mark.parametrize("name", ["astronaut", "coffee", "gravel", "grass", "camera"])
def test_noisy_copies_score_lower_noise_and_texture_is_not_noise(name: str, tmp_path: Path) -> None:
    img = scene(name, (480, 360))
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(np.clip(np.asarray(img, float) + rng.normal(0, 20, (360, 480, 3)), 0, 255).astype(np.uint8))
    clean = Noise().score(via_jpeg(img, tmp_path, "c"))[0]
    loud = Noise().score(via_jpeg(noisy, tmp_path, "n"))[0]
    assert clean.normalised >= 0.95, f"{name}: clean photo read as noisy (sigma {clean.raw:.2f})"
    assert loud.normalised < 0.5 and loud.raw > 3 * max(clean.raw, 0.5)


def test_a_blurred_face_is_a_worse_portrait_than_a_sharp_one(tmp_path: Path) -> None:
    img = scene("astronaut")
    sharp = {s.name: s for s in Faces().score(via_jpeg(img, tmp_path, "s"))}
    soft = {s.name: s for s in Faces().score(via_jpeg(img.filter(ImageFilter.GaussianBlur(3)), tmp_path, "b"))}
    assert "faces" in soft and sharp["faces"].normalised > soft["faces"].normalised + 0.2


def test_a_noisy_face_is_a_worse_portrait_than_a_clean_one(tmp_path: Path) -> None:
    """High-ISO colour noise raises the Laplacian of a face as much as detail does; the
    face score must not take it for sharpness (it picked the noisy frame of a burst)."""
    img = scene("astronaut")
    rng = np.random.default_rng(3)
    noisy_px = np.clip(np.asarray(img, dtype=np.float32) + rng.normal(0.0, 22.0, (img.height, img.width, 3)), 0, 255)
    clean = {s.name: s for s in Faces().score(via_jpeg(img, tmp_path, "c"))}
    noisy = {s.name: s for s in Faces().score(via_jpeg(Image.fromarray(noisy_px.astype(np.uint8)), tmp_path, "n"))}
    assert "faces" in noisy and noisy["faces"].detail["face_sharpness"] > clean["faces"].detail["face_sharpness"]
    assert clean["faces"].detail["noise_quality"] > 0.9 and noisy["faces"].detail["noise_quality"] < 0.5
    assert clean["faces"].normalised > noisy["faces"].normalised + 0.2


def test_a_blown_out_face_is_a_worse_portrait_than_a_well_exposed_one(tmp_path: Path) -> None:
    """Equalising what is left of a face whose skin is clipped white lifts its Laplacian
    (the astronaut's rose from 0.71 to 0.87 at +1.4 EV): blown skin is detail gone."""
    clean = {s.name: s for s in Faces().score(via_jpeg(scene("astronaut"), tmp_path, "c"))}
    blown = {s.name: s for s in Faces().score(via_jpeg(exposed(scene("astronaut"), 1.4), tmp_path, "b"))}
    assert "faces" in blown, "the over-exposed face was not found: the test needs it found"
    assert clean["faces"].detail["face_blown"] < 0.05 and blown["faces"].detail["face_blown"] > 0.5
    assert blown["faces"].detail["face_sharpness"] > clean["faces"].detail["face_sharpness"]  # what the discount is for
    assert clean["faces"].normalised > blown["faces"].normalised + 0.2


def test_the_noise_measures_median_is_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    responses = np.abs(rng.normal(0, 3, (190, 254))).astype(np.float32)
    for values in (responses, responses[1:-1, 1:-1], responses[1:, 1:], responses.ravel()[:999],
                   np.round(responses * 2) / 2, np.float64(responses[:5, :5])):
        assert _median(values) == float(np.median(values))


def test_brisque_features_match_the_brisque_package() -> None:
    from brisque import BRISQUE

    grey = np.asarray(scene("coffee", (192, 128)).convert("L"), dtype=np.float64) / 255.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = BRISQUE(url=False).calculate_brisque_features(grey, kernel_size=7, sigma=7 / 6)
    reference = np.array([float(np.asarray(v).ravel()[0]) for v in reference])
    ours = np.array(features(grey.astype(np.float32)))
    assert np.allclose(ours, reference, rtol=5e-3, atol=1e-4), np.c_[ours, reference]


def test_brisque_mscn_is_numpys_formula_to_the_bit() -> None:
    from daemon.scoring.builtin.brisque import aggd_fit, mscn

    for name, size in (("astronaut", (384, 288)), ("coffee", (192, 144)), ("hubble_deep_field", (384, 256))):
        grey = np.asarray(scene(name, size).convert("L"), np.float32) / 255.0
        mu = cv2.GaussianBlur(grey, (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_CONSTANT)
        var = cv2.GaussianBlur(grey * grey, (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_CONSTANT)
        expected = (grey - mu) / (np.sqrt(np.abs(var - mu * mu)) + 1.0 / 255.0)
        assert np.array_equal(mscn(grey), expected)
        m = expected
        pairs = (m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:])
        assert features(grey)[2:] == [v for pair in pairs for v in aggd_fit(pair)]  # the products too


def test_brisque_model_in_numpy_predicts_what_libsvm_predicts() -> None:
    from daemon.scoring.builtin.brisque import _Model

    model = _Model.get()
    assert model.rbf is not None  # the shipped model is an RBF epsilon-SVR: the numpy path is the one taken
    rng = np.random.default_rng(0)
    for grey in (np.asarray(scene(n, (384, 256)).convert("L"), np.float32) / 255.0 for n in ("astronaut", "coffee")):
        half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        feats = features(grey) + features(half)
        scaled = -1.0 + 2.0 * (np.asarray(feats) - model.low) / (model.high - model.low)
        assert abs(model.predict(feats) - model.predict_libsvm(scaled)) < 1e-9
    for _ in range(20):  # anywhere in the features' range
        feats = list(model.low + (model.high - model.low) * rng.random(model.low.size))
        scaled = -1.0 + 2.0 * (np.asarray(feats) - model.low) / (model.high - model.low)
        assert abs(model.predict(feats) - model.predict_libsvm(scaled)) < 1e-9


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_brisque_rises_with_blur_noise_and_compression(name: str) -> None:
    img = scene(name)
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=5)
    degraded = {
        "blur": img.filter(ImageFilter.GaussianBlur(3)),
        "noise": Image.fromarray(np.clip(np.asarray(img, float) + rng.normal(0, 25, np.asarray(img).shape), 0, 255).astype(np.uint8)),
        "jpeg q5": Image.open(buf).convert("RGB"),
    }
    brisque = Brisque()
    base = brisque.score(Decoded.from_array(np.asarray(img)))[0]
    for kind, bad in degraded.items():
        worse = brisque.score(Decoded.from_array(np.asarray(bad)))[0]
        assert worse.raw > base.raw + 3, f"{name} {kind}: BRISQUE {worse.raw:.1f} vs original {base.raw:.1f}"
        assert worse.normalised < base.normalised


def test_every_builtin_scorer_maps_into_0_1_and_keeps_its_raw_value(tmp_path: Path) -> None:
    decoded = via_jpeg(scene("astronaut"), tmp_path, "a")
    for name, make in BUILTIN.items():
        for s in make().score(decoded):
            assert 0.0 <= s.normalised <= 1.0 and np.isfinite(s.raw), (name, s)
            assert s.version


def test_an_unknown_scorer_name_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    file = tmp_path / "k.yaml"
    file.write_text("scorers: [sharpness, sharpnes]\n")
    config = load_config(file, check_folders=False)
    with pytest.raises(ConfigError, match=r"scorers\[1\].*sharpnes.*sharpness, exposure"):
        builtin_scorers(config)


def test_scorers_give_the_same_answer_from_several_threads(tmp_path: Path) -> None:
    images = [via_jpeg(scene(n), tmp_path, n) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    scorers = builtin_scorers(load_config(None, check_folders=False))

    def run(d: Decoded) -> list[tuple[str, float]]:
        return [(s.name, round(s.raw, 6)) for sc in scorers for s in sc.score(d)]

    sequential = [run(d) for d in images]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, images * 3))
    assert parallel == sequential * 3
