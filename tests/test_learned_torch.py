"""Torch adapters: ResNet-50 state dicts, TorchScript, module:Class
architectures, the comparator, embeddings, and refusing unsafe pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from daemon.scoring.base import Score  # noqa: E402
from daemon.scoring.models import AdapterSpec, ModelLoadError, UnsafeCheckpoint, load_adapter  # noqa: E402
from daemon.scoring.models.common import configure_torch_threads  # noqa: E402
from daemon.scoring.models.resnet import resnet50  # noqa: E402
from fixtures_models import (decoded, flat_image, save_malicious_checkpoint, save_resnet50_checkpoint,  # noqa: E402
                             save_state_dict, save_torchscript)

pytestmark = pytest.mark.torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def normalised_mean(rgb: np.ndarray) -> float:
    """What TinyRegressor averages: the ImageNet-normalised pixels of a 224x224 image."""
    return float((((rgb.astype(np.float64) / 255.0) - IMAGENET_MEAN) / IMAGENET_STD).mean())


def spec(name: str, adapter: str, framework: str = "torch-state-dict", task: str = "aesthetic",
         output_range: tuple[float, float] = (1.0, 10.0), **options: object) -> AdapterSpec:
    return AdapterSpec(name, task, framework, adapter, output_range, options)


def test_resnet50_matches_torchvision_layout() -> None:
    net = resnet50()
    state = net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == 25_557_032  # torchvision resnet50's count
    assert len(state) == 320
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                "layer3.5.conv3.weight", "layer4.2.bn3.num_batches_tracked", "fc.weight", "fc.bias"):
        assert key in state, key
    assert tuple(state["layer4.0.conv2.weight"].shape) == (512, 512, 3, 3)
    assert tuple(state["fc.weight"].shape) == (1000, 2048)


def test_torchvision_resnet50_state_dict_loads_and_scores(tmp_path: Path) -> None:
    ckpt = save_resnet50_checkpoint(tmp_path / "best_model.pt", width=4, outputs=1)
    model = load_adapter(spec("ava-resnet50", "ava-resnet50"), ckpt, threads=1)
    images = [decoded(flat_image(60, (224, 224))), decoded(flat_image(200, (224, 224)))]
    scores = model.score_batch(images)

    # the same weights, built independently, give the same raw value
    torch.manual_seed(1)
    reference = resnet50(1, width=4).eval()
    batch = torch.stack([torch.from_numpy(((im.rgb / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)).permute(2, 0, 1)
                         for im in images])
    with torch.inference_mode():
        expected = reference(batch)[:, 0].tolist()
    assert [s[0].name for s in scores] == ["ava-resnet50", "ava-resnet50"]
    for got, want in zip(scores, expected):
        (score,) = got
        assert isinstance(score, Score) and score.task == "aesthetic"
        assert score.raw == pytest.approx(want, rel=1e-4, abs=1e-5)
        assert score.normalised == pytest.approx(min(1.0, max(0.0, (want - 1.0) / 9.0)), abs=1e-6)
    assert model.score(images[1])[0].raw == pytest.approx(scores[1][0].raw, rel=1e-5)


def test_torchvision_resnet50_with_ten_outputs_scores_expected_rating(tmp_path: Path) -> None:
    ckpt = save_resnet50_checkpoint(tmp_path / "ava10.pt", width=4, outputs=10, wrapped=False)
    model = load_adapter(spec("ava-resnet50", "ava-resnet50"), ckpt, threads=1)
    (score,) = model.score(decoded(flat_image(120, (96, 128))))
    assert 1.0 < score.raw < 10.0  # the mean of a softmax over ratings 1..10
    assert score.normalised == pytest.approx((score.raw - 1.0) / 9.0)


def test_torchscript_file_scores(tmp_path: Path) -> None:
    ts = save_torchscript(tmp_path / "regressor.ts", "TinyRegressor", scale=2.0, offset=5.0)
    model = load_adapter(spec("my-ts", "torchscript", framework="torchscript"), ts, threads=1)
    dark, bright = flat_image(40, (224, 224)), flat_image(220, (224, 224))
    (s_dark,), (s_bright,) = model.score_batch([decoded(dark), decoded(bright)])
    assert s_dark.raw == pytest.approx(2.0 * normalised_mean(dark) + 5.0, abs=1e-4)
    assert s_bright.raw == pytest.approx(2.0 * normalised_mean(bright) + 5.0, abs=1e-4)
    assert s_bright.normalised > s_dark.normalised


def test_torchscript_detected_in_a_folder_without_framework_hint(tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    save_torchscript(folder / "model.pt", "TinyRegressor", scale=1.0, offset=3.0)
    model = load_adapter(spec("ts-in-folder", "torch", framework="torch-state-dict"), folder, threads=1)
    img = flat_image(128, (224, 224))
    assert model.score(decoded(img))[0].raw == pytest.approx(normalised_mean(img) + 3.0, abs=1e-4)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_module_class_architecture_loads_weights(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        from fixtures_models.torch_nets import TinyRegressor

        save_file(TinyRegressor(scale=-3.0, offset=4.0).state_dict(), str(path))
    else:
        save_state_dict(path, "TinyRegressor", scale=-3.0, offset=4.0)
    model = load_adapter(spec("mine", "torch", framework="safetensors" if suffix == ".safetensors" else "torch-state-dict",
                              arch="fixtures_models.torch_nets:TinyRegressor"), path, threads=1)
    img = flat_image(90, (224, 224))
    # the checkpoint's weights (not the constructor defaults 2 and 5) decide the score
    assert model.score(decoded(img))[0].raw == pytest.approx(-3.0 * normalised_mean(img) + 4.0, abs=1e-4)


def test_comparator_from_module_class_picks_the_brighter_photo(tmp_path: Path) -> None:
    ckpt = save_state_dict(tmp_path / "siamese.pt", "TinySiamese", gain=8.0)
    comparator = load_adapter(spec("siamese", "siamese-comparator", task="comparator", output_range=(0.0, 1.0),
                                   arch="fixtures_models.torch_nets:TinySiamese"), ckpt, threads=1)
    bright, dark = decoded(flat_image(210, (64, 64))), decoded(flat_image(50, (64, 64)))
    winner, confidence = comparator.compare_decoded(bright, dark)
    assert winner == 0 and 0.5 < confidence <= 1.0
    winner2, confidence2 = comparator.compare_decoded(dark, bright)
    assert winner2 == 1 and confidence2 == pytest.approx(confidence, abs=1e-6)


def test_comparator_compares_files(tmp_path: Path) -> None:
    pytest.importorskip("daemon.imaging.decode")
    from PIL import Image

    ckpt = save_state_dict(tmp_path / "siamese.pt", "TinySiamese", gain=8.0)
    comparator = load_adapter(spec("siamese", "comparator", task="comparator", output_range=(0.0, 1.0),
                                   arch="fixtures_models.torch_nets:TinySiamese"), ckpt, threads=1)
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    Image.fromarray(flat_image(30, (80, 120))).save(a)
    Image.fromarray(flat_image(230, (80, 120))).save(b)
    winner, confidence = comparator.compare(a, b)
    assert winner == 1 and confidence > 0.5


def test_embedder_returns_unit_vectors(tmp_path: Path) -> None:
    ckpt = save_state_dict(tmp_path / "embed.pt", "TinyEmbedder", dim=8)
    embedder = load_adapter(spec("embed", "embedding", task="embedding", output_range=(-1.0, 1.0),
                                 arch="fixtures_models.torch_nets:TinyEmbedder", arch_kwargs={"dim": 8}), ckpt, threads=1)
    rng = np.random.default_rng(3)
    images = [decoded(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)) for _ in range(3)]
    vectors = embedder.embed_batch(images)
    assert [v.shape for v in vectors] == [(8,)] * 3
    assert all(v.dtype == np.dtype("<f4") for v in vectors)
    assert all(np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5) for v in vectors)
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(embedder.embed_batch(images[1:2])[0], vectors[1], atol=1e-5)


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    ckpt = save_malicious_checkpoint(tmp_path / "best_model.pt", marker)
    # prove the file is really hostile: an unsafe load runs its payload
    probe_marker = tmp_path / "probe"
    probe = save_malicious_checkpoint(tmp_path / "probe.pt", probe_marker)
    torch.load(str(probe), weights_only=False)
    assert probe_marker.exists()

    with pytest.raises(UnsafeCheckpoint) as info:
        load_adapter(spec("ava-resnet50", "ava-resnet50"), ckpt, threads=1)
    message = str(info.value)
    assert "ava-resnet50" in message and str(ckpt) in message
    assert "weights_only" in message and "exec" in message  # names the global it refused
    assert "state_dict" in message  # says what to do
    assert not marker.exists()


def test_whole_pickled_module_is_refused(tmp_path: Path) -> None:
    from fixtures_models.torch_nets import TinyRegressor

    path = tmp_path / "whole_model.pt"
    torch.save(TinyRegressor(), path)
    with pytest.raises(UnsafeCheckpoint, match="TinyRegressor"):
        load_adapter(spec("whole", "torch", arch="fixtures_models.torch_nets:TinyRegressor"), path, threads=1)


def test_weights_that_do_not_fit_name_the_architecture(tmp_path: Path) -> None:
    ckpt = save_state_dict(tmp_path / "siamese.pt", "TinySiamese")
    with pytest.raises(ModelLoadError, match="TinyRegressor") as info:
        load_adapter(spec("mismatch", "torch", arch="fixtures_models.torch_nets:TinyRegressor"), ckpt, threads=1)
    assert "input.arch" in str(info.value) and "options." not in str(info.value)


def test_state_dict_without_architecture_says_what_to_set(tmp_path: Path) -> None:
    ckpt = save_state_dict(tmp_path / "w.pt", "TinyRegressor")
    with pytest.raises(ModelLoadError) as info:
        load_adapter(spec("anon", "torch"), ckpt, threads=1)
    message = str(info.value)
    assert "input: {arch: package.module:Class}" in message and "options." not in message
    assert "head (2)" in message and "top-level keys" not in message  # a bare state dict: its keys are the tensors


def test_missing_checkpoint_and_bad_framework_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_adapter(spec("gone", "ava-resnet50"), tmp_path / "nope.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no file ending in"):
        load_adapter(spec("empty", "ava-resnet50"), empty)
    with pytest.raises(ModelLoadError, match="ONNX"):
        load_adapter(spec("onnx", "x", framework="onnx"), empty)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelLoadError, match="garbage.pt"):
        load_adapter(spec("garbage", "ava-resnet50"), garbage)


def test_threads_setting_limits_torch(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        configure_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        from daemon.scoring.models import common

        common._configured.pop("torch", None)


def test_hub_catalog_spec_works_with_adapters(tmp_path: Path) -> None:
    catalog = pytest.importorskip("daemon.hub.catalog")
    ckpt = save_resnet50_checkpoint(tmp_path / "ava.pt", width=4)
    hub_spec = catalog.ModelSpec("ava-resnet50", "aesthetic", "torch-state-dict", "ava-resnet50", (1.0, 10.0), {"size": 64})
    model = load_adapter(hub_spec, ckpt, threads=1)
    assert model.preprocess.size == (64, 64)
    assert 0.0 <= model.score(decoded(flat_image(100)))[0].normalised <= 1.0
