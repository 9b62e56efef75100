"""Decoding: small and oriented, EXIF facts, HEIC, RAW, and the fingerprints."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter

from daemon.errors import ImageRejected
from daemon.imaging.decode import Decoded, decode_image
from daemon.imaging.hashing import CONTENT_PREFIX, ContentMatch, content_hash, hamming, legacy_content_hash, phash
from fixtures_photos import exif_for, save_jpeg, scene


def test_a_12mp_jpeg_decodes_small_through_dct_scaling(tmp_path: Path) -> None:
    path = save_jpeg(scene("coffee", (4000, 3000)), tmp_path / "big.jpg")
    d = decode_image(path, size=1024)
    assert max(d.rgb.shape[:2]) <= 1024 and max(d.rgb.shape[:2]) >= 768
    assert d.rgb.dtype == np.uint8 and d.rgb.shape[2] == 3
    assert (d.meta.width, d.meta.height, d.meta.format) == (4000, 3000, "JPEG")


@pytest.mark.parametrize("orientation,expected_shape", [(1, (150, 300)), (3, (150, 300)), (6, (300, 150)), (8, (300, 150))])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, expected_shape: tuple[int, int]) -> None:
    # left half dark, right half bright: after rotating, where the bright half lands tells the rotation
    pixels = np.zeros((150, 300, 3), np.uint8)
    pixels[:, 150:] = 255
    path = save_jpeg(Image.fromarray(pixels), tmp_path / f"o{orientation}.jpg", exif=exif_for(orientation=orientation))
    d = decode_image(path)
    assert d.rgb.shape[:2] == expected_shape
    assert (d.meta.width, d.meta.height) == (expected_shape[1], expected_shape[0])
    grey = d.grey().astype(float)
    bright_half = {1: grey[:, 150:], 3: grey[:, :150], 6: grey[150:, :], 8: grey[:150, :]}[orientation]
    assert bright_half.mean() > 200 and grey.mean() < 160


def test_capture_time_camera_and_exposure_bias_come_from_exif(tmp_path: Path) -> None:
    taken = datetime(2024, 5, 1, 10, 0, 0)
    path = save_jpeg(scene("chelsea", (300, 200)), tmp_path / "e.jpg",
                     exif=exif_for(taken, make="Canon", model="Canon EOS R5", bias=-1.0, offset="+02:00"))
    d = decode_image(path)
    assert d.meta.taken_at == datetime(2024, 5, 1, 8, 0, 0, tzinfo=timezone.utc).timestamp()
    assert d.meta.camera == "Canon EOS R5"
    assert d.meta.exif["ExposureBiasValue"] == -1.0


def test_a_photo_without_exif_has_no_capture_time(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    scene("rocket", (200, 120)).save(path)
    d = decode_image(path)
    assert d.meta.taken_at is None and d.meta.camera is None and d.meta.format == "PNG"


def test_heic_decodes_through_pillow_heif(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    if not pillow_heif.libheif_info().get("HEIF", True):
        pytest.skip("this libheif build has no HEVC encoder to write the test file")
    pillow_heif.register_heif_opener()
    path = tmp_path / "phone.heic"
    scene("astronaut", (320, 320)).save(path, quality=80)
    d = decode_image(path)
    assert d.rgb.shape == (320, 320, 3) and d.meta.format == "HEIF"
    assert abs(float(d.rgb.mean()) - float(np.asarray(scene("astronaut", (320, 320))).mean())) < 8


def test_a_raw_file_that_is_not_raw_is_rejected_with_the_reason(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    path = tmp_path / "IMG_0001.CR2"
    path.write_bytes(b"II*\x00" + b"\x00" * 512)
    with pytest.raises(ImageRejected, match="cannot decode RAW"):
        decode_image(path)


def test_raw_without_the_raw_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rawpy", None)  # as if rawpy were not installed
    path = tmp_path / "IMG_0001.NEF"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ImageRejected, match=r"RAW support needs the raw extra; install the raw extra: .* -m pip install -e '.*\[raw\]'"):
        decode_image(path)  # from the checkout: keepers is not on the package index


def test_views_are_box_averages_of_the_decode_where_an_integer_factor_is_near_enough() -> None:
    rgb = np.asarray(scene("coffee", (1001, 750)))  # a last column that fills no box
    d = Decoded.from_array(rgb)
    for edge, k in ((512, 2), (256, 4)):
        view = d.resized(edge)
        crop = rgb[: 750 - 750 % k, : 1001 - 1001 % k].astype(np.float64)
        box = crop.reshape(750 // k, k, 1001 // k, k, 3).mean(axis=(1, 3))
        assert view.shape == (750 // k, 1001 // k, 3)
        assert np.abs(view - box).max() <= 1.0  # rounding only (the 4 x 4 one is two 2 x 2 steps)
        assert d.grey_resized(edge).shape == view.shape[:2]
    # no integer factor within 5 %: resampled to the size asked, as before
    assert Decoded.from_array(rgb).resized(384).shape == (288, 384, 3)
    assert Decoded.from_array(np.asarray(scene("coffee", (816, 612)))).resized(512).shape == (384, 512, 3)
    # a model's input: exactly the size asked even where a box view is near
    assert d.resized(128, exact=True).shape == (96, 128, 3) and d.resized(128).shape == (93, 125, 3)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "hubble_deep_field"])
def test_fractional_grey_views_are_what_opencv_area_resampling_makes(name: str) -> None:
    from daemon.imaging.decode import _area_grey

    rng = np.random.default_rng(0)
    for w, h in ((1000, 750), (750, 1000), (1000, 872), (1008, 756)):
        grey = np.asarray(scene(name, (w, h)).convert("L"), np.float64)
        grey = np.clip(grey + rng.normal(0, 4, grey.shape), 0, 255).astype(np.uint8)
        for edge in (512,):
            size = (round(w * edge / max(w, h)), round(h * edge / max(w, h)))
            ours = _area_grey(grey, size)
            theirs = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            assert ours.shape == theirs.shape and ours.flags.c_contiguous
            apart = np.abs(ours.astype(int) - theirs)
            # rounding only: the sums go in another order (a few pixels in 100 000, one level)
            assert apart.max() <= 1 and np.count_nonzero(apart) <= apart.size // 10_000


def test_phash_keeps_a_burst_close_and_tells_scenes_apart(tmp_path: Path) -> None:
    base = scene("coffee", (400, 300))
    variants = [base, base.filter(ImageFilter.GaussianBlur(3)), Image.eval(base, lambda v: int(v * 0.6))]
    hashes = [phash(Decoded.from_array(np.asarray(v))) for v in variants]
    other = phash(Decoded.from_array(np.asarray(scene("rocket", (400, 300)))))
    assert all(len(h) == 16 for h in hashes)
    assert max(hamming(hashes[0], h) for h in hashes[1:]) <= 12
    assert min(hamming(other, h) for h in hashes) >= 16


def test_content_hash_follows_the_bytes_not_the_name(tmp_path: Path) -> None:
    a = save_jpeg(scene("coffee", (100, 80)), tmp_path / "a.jpg")
    b = tmp_path / "renamed.jpg"
    b.write_bytes(a.read_bytes())
    c = save_jpeg(scene("coffee", (100, 80)), tmp_path / "c.jpg", quality=50)
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_a_stored_hash_of_either_form_is_matched_each_form_computed_once(tmp_path: Path) -> None:
    """Rows stored before the blake3 hash carry blake2b-128 of the same bytes: a file moved
    since still finds its row. Each form is computed only when a row asks for it, once."""
    import hashlib

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8" + bytes(range(256)) * 9000)  # over 2 MiB: first and last MiB
    data = photo.read_bytes()
    mib = 1 << 20
    legacy = hashlib.blake2b(len(data).to_bytes(8, "little") + data[:mib] + data[-mib:], digest_size=16).hexdigest()
    assert legacy_content_hash(photo) == legacy
    current = content_hash(photo)
    assert current.startswith(CONTENT_PREFIX) and len(current) == len(CONTENT_PREFIX) + 32
    content = ContentMatch(photo)
    assert content.matches(current) and not content.matches(CONTENT_PREFIX + "0" * 32)
    assert not content.matches(None) and not content.matches("")
    photo.unlink()
    assert content.matches(current)  # computed once, not read again
    with pytest.raises(OSError):
        content.matches(legacy)  # the older form is read only when a row asks for it


def test_fractional_views_are_opencvs_area_resampling_to_the_bit() -> None:
    """The fractional step of a shrink (BRISQUE's 384-px view from the 512-px one, the face
    detector's 128-px view from the 250-px one) sums in OpenCV's order: the same pixels."""
    from daemon.imaging.decode import _area

    rng = np.random.default_rng(1)
    sizes = [((384, 512), (384, 288)), ((187, 250, 3), (128, 96)), ((750, 1000), (700, 525)), ((300, 200, 3), (150, 199))]
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(16, 400, 2))
        factor = rng.uniform(1.02, 1.98)
        shape = (h, w, 3) if rng.random() < 0.5 else (h, w)
        sizes.append((shape, (max(1, min(w, round(w / factor))), max(1, min(h, round(h / factor / rng.uniform(0.9, 1.1)))))))
    for shape, size in sizes:
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
        for pixels in (noise, cv2.GaussianBlur(noise, (0, 0), 2.0)):  # smooth content has more near-ties
            theirs = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            ours = _area(pixels, size)
            assert ours.shape == theirs.shape and ours.dtype == np.uint8
            assert np.array_equal(ours, theirs), (shape, size)
