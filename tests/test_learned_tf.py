"""MUSIQ/VILA adapters: TF SavedModels called through their serving signature
with the encoded bytes of the decoded image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.scoring.models import AdapterSpec, ModelLoadError, load_adapter
from daemon.scoring.models.tf_savedmodel import encode_jpeg
from fixtures_models import build_musiq_like_savedmodel, decoded, flat_image

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_jpeg_is_reencoded_at_the_models_size() -> None:
    rgb = np.zeros((600, 1800, 3), dtype=np.uint8)
    rgb[:, :900] = 255
    image = Image.open(io.BytesIO(encode_jpeg(rgb, 512)))
    assert image.format == "JPEG" and image.size == (512, 171)
    small = Image.open(io.BytesIO(encode_jpeg(rgb[:100, :200], 512)))
    assert small.size == (200, 100)  # never scaled up


def test_musiq_signature_model_scores_by_its_range(musiq_like_model: Path) -> None:
    spec = AdapterSpec("musiq-spaq", "technical", "tf-savedmodel", "musiq", (0.0, 100.0), {"max_side": 256})
    model = load_adapter(spec, musiq_like_model, threads=1)
    dark, bright = flat_image(51, (300, 400)), flat_image(204, (300, 400))
    (s_dark,), (s_bright,) = model.score_batch([decoded(dark), decoded(bright)])
    # the tiny model returns mean brightness on 0..100: 51 -> 20, 204 -> 80 (JPEG re-encoding costs a little)
    assert s_dark.raw == pytest.approx(20.0, abs=1.0)
    assert s_bright.raw == pytest.approx(80.0, abs=1.0)
    assert s_bright.normalised == pytest.approx(s_bright.raw / 100.0)
    assert (s_dark.name, s_dark.task) == ("musiq-spaq", "technical")


def test_ava_range_and_vila_output_key(tmp_path: Path, musiq_like_model: Path) -> None:
    ava = load_adapter(AdapterSpec("musiq-ava", "aesthetic", "tf-savedmodel", "musiq", (1.0, 10.0)), musiq_like_model, threads=1)
    (score,) = ava.score(decoded(flat_image(255, (64, 64))))  # raw about 100: far above AVA's 10
    assert score.raw > 95 and score.normalised == 1.0
    vila_dir = build_musiq_like_savedmodel(tmp_path / "vila", output_key="predictions", scale=1.0)
    vila = load_adapter(AdapterSpec("vila", "aesthetic", "tf-savedmodel", "vila", (0.0, 1.0)), vila_dir, threads=1)
    (v,) = vila.score(decoded(flat_image(128, (64, 64))))
    assert v.raw == pytest.approx(128 / 255, abs=0.02) and v.normalised == pytest.approx(v.raw)


def test_folder_that_is_not_a_savedmodel_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="saved_model.pb"):
        load_adapter(AdapterSpec("musiq-spaq", "technical", "tf-savedmodel", "musiq", (0.0, 100.0)), tmp_path)


def test_a_single_output_is_used_whatever_its_name(tmp_path: Path) -> None:
    folder = build_musiq_like_savedmodel(tmp_path / "two", output_key="output_0")
    spec = AdapterSpec("musiq-spaq", "technical", "tf-savedmodel", "musiq", (0.0, 100.0), {"output_key": "score"})
    model = load_adapter(spec, folder, threads=1)  # a single output is taken whatever its name
    assert model.output_key == "output_0"


def test_musiq_input_sizes_scale_the_photo_like_the_training_data() -> None:
    rgb = np.zeros((3000, 4000, 3), dtype=np.uint8)
    size = lambda data: Image.open(io.BytesIO(data)).size  # noqa: E731
    assert size(encode_jpeg(rgb, 1024)) == (1024, 768)  # KonIQ: 1024x768
    assert size(encode_jpeg(rgb, None, short_edge=512)) == (683, 512)  # SPAQ: short side 512
    assert size(encode_jpeg(rgb, 640)) == (640, 480)  # PaQ-2-PiQ: 640x480
    assert size(encode_jpeg(np.zeros((300, 400, 3), dtype=np.uint8), None, short_edge=512)) == (400, 300)  # never enlarged


def test_an_unknown_input_key_is_refused_naming_the_keys_the_adapter_reads(tmp_path: Path) -> None:
    spec = AdapterSpec("musiq-spaq", "technical", "tf-savedmodel", "musiq", (0.0, 100.0), {"max_sise": 512})
    with pytest.raises(ModelLoadError) as info:
        load_adapter(spec, tmp_path)
    assert "'max_sise'" in str(info.value) and "input: long_side, short_side" in str(info.value)
