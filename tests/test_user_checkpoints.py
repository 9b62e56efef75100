"""The user's own AVA ResNet-50 and Siamese comparator checkpoints, exactly as
their training code writes them (tests/fixtures_models/user_training.py),
loaded through the shipped catalog with nothing but a local path."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

from PIL import Image, ImageEnhance  # noqa: E402

from daemon.album.choose import Member, choose_cluster  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.hub import ModelHub  # noqa: E402
from daemon.imaging.decode import decode_image  # noqa: E402
from daemon.imaging.demo import scene_image  # noqa: E402
from daemon.scoring.models import ModelLoadError, UnsafeCheckpoint, load_adapter  # noqa: E402
from fixtures_models import save_malicious_checkpoint  # noqa: E402
from fixtures_models.user_training import AVAModel, SiameseNetwork, save_best_model, transform  # noqa: E402

pytestmark = pytest.mark.torch

WIDTH = 4  # ResNet-50 at 1/16 of its width: the real key layout, 128 features instead of 2048
SCENES = ("astronaut", "coffee", "chelsea", "rocket")


def load_local(tmp_path: Path, name: str, checkpoint: Path) -> Any:
    """``name`` from the shipped catalog, its source set to ``checkpoint`` and nothing else."""
    config_file = tmp_path / f"keepers-{name}.yaml"
    config_file.write_text(yaml.safe_dump({"database": str(tmp_path / "keepers.db"), "photos": [], "models": {
        "enabled": [name], "threads": 1, "sources": {name: [{"kind": "local", "path": str(checkpoint)}]}}}))
    hub = ModelHub(load_config(config_file, check_folders=False))
    return load_adapter(hub.spec(name), hub.fetch(name).path, threads=1)


def reference_batch(paths: list[Path], config: dict[str, Any]) -> torch.Tensor:
    """The training code's evaluation transform of each photo, stacked."""
    def one(path: Path) -> torch.Tensor:
        with Image.open(path) as im:
            return transform(im.convert("RGB"), config)

    return torch.stack([one(p) for p in paths])


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real photos as PNGs (no JPEG decoder differences), plus a near-duplicate: coffee 3 % brighter."""
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in SCENES:
        out[name] = folder / f"{name}.png"
        scene_image(name).save(out[name])
    out["coffee-bright"] = folder / "coffee-bright.png"
    ImageEnhance.Brightness(scene_image("coffee")).enhance(1.03).save(out["coffee-bright"])
    return out


def directional_head(module: torch.nn.Sequential, w: torch.Tensor, out_rows: list[list[float]], bias: list[float]) -> None:
    """Set an MLP of Linear, ReLU, Dropout, ... so its output follows ``w . features`` linearly: the first
    Linear gives (w.f, -w.f), the middle ones pass those two on, ReLU keeps relu(w.f) and relu(-w.f),
    whose difference is w.f, and the last Linear mixes them with ``out_rows`` (on those two inputs)."""
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer in linears:
            layer.weight.zero_()
            layer.bias.zero_()
        linears[0].weight[:2] = torch.stack([w, -w])
        for layer in linears[1:-1]:
            layer.weight[0, 0] = layer.weight[1, 1] = 1.0
        linears[-1].weight[:, :2] = torch.tensor(out_rows)
        linears[-1].bias.copy_(torch.tensor(bias))


@pytest.fixture(scope="module")
def ava_regression(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]) -> dict[str, Any]:
    """An AVA regression model whose score is a linear function of the features, scaled so the
    photos' ratings spread over 2..9; its backbone and direction ``w`` are shared with the
    ResNet comparator below, so that comparator's expected verdict is known."""
    config = {"model": {"pretrained": True, "mlp_hidden_dims": [2], "activation": "relu", "dropout": 0.2,
                        "output_mode": "regression"},
              "transform": {"resize_size": 256, "crop_size": 224}, "training": {"lr": 1e-4, "epochs": 20}}
    torch.manual_seed(11)
    model = AVAModel(config, width=WIDTH).eval()
    w = torch.nn.functional.normalize(torch.randn(model.head[0].in_features), dim=0)
    with torch.inference_mode():
        projections = model.backbone(reference_batch(list(photos.values()), config)) @ w
    scale = 7.0 / float(projections.max() - projections.min())
    directional_head(model.head, w * scale, [[1.0, -1.0]], [2.0 - scale * float(projections.min())])
    path = save_best_model(tmp_path_factory.mktemp("ava") / "best_model.pt", model, config, "val_spearman", 0.6831)
    return {"path": path, "model": model, "config": config, "w": w}


@pytest.fixture(scope="module")
def ava_distribution(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = {"model": {"pretrained": False, "mlp_hidden_dims": [64, 32], "activation": "tanh", "dropout": 0.1,
                        "output_mode": "distribution"}, "transform": {"resize_size": 256, "crop_size": 224}}
    torch.manual_seed(12)
    model = AVAModel(config, width=WIDTH).eval()
    with torch.no_grad():  # spread the rating distribution so the expected rating moves between photos
        model.head[0].weight.mul_(20.0)
        model.head[-1].weight.mul_(40.0)
    path = save_best_model(tmp_path_factory.mktemp("ava10") / "best_model.pt", model, config, "val_spearman", 0.59)
    return {"path": path, "model": model, "config": config}


@pytest.fixture(scope="module")
def resnet_comparator(tmp_path_factory: pytest.TempPathFactory, ava_regression: dict[str, Any]) -> dict[str, Any]:
    """The Siamese comparator on the AVA model's backbone; its mlp says img1 is better exactly when
    the AVA model rates img1 higher (index 1 = img1 better, index 0 = img2 better)."""
    config = {"model": {"cnn_backbone": "resnet50", "pretrained": True, "mlp_hidden_dims": [2], "activation": "relu",
                        "dropout": 0.5}, "transform": {"resize_size": 256, "crop_size": 224}}
    model = SiameseNetwork(config, width=WIDTH).eval()
    model.backbone.load_state_dict(ava_regression["model"].backbone.state_dict())
    directional_head(model.mlp, ava_regression["w"] * 4.0, [[-1.0, 1.0], [1.0, -1.0]], [0.0, 0.0])
    path = save_best_model(tmp_path_factory.mktemp("siamese") / "best_model.pt", model, config, "val_acc", 0.71)
    return {"path": path, "model": model, "config": config}


@pytest.fixture(scope="module")
def vgg_comparator(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A VGG16 comparator with the default mlp (128, 64), set to prefer img1 when ``w . feat1 > w . feat2``."""
    config = {"model": {"cnn_backbone": "vgg16", "pretrained": True, "activation": "relu", "dropout": 0.5},
              "transform": {"crop_size": 224, "use_paper_preprocessing": True}}
    torch.manual_seed(13)
    model = SiameseNetwork(config, vgg_divisor=16, vgg_fc=64).eval()
    w = torch.nn.functional.normalize(torch.randn(64), dim=0) * 50.0
    directional_head(model.mlp, w, [[-1.0, 1.0], [1.0, -1.0]], [0.0, 0.0])
    path = save_best_model(tmp_path_factory.mktemp("vgg") / "best_model.pt", model, config, "val_acc", 0.68)
    return {"path": path, "model": model, "config": config, "w": w}


# ------------------------------------------------------------------------------------------- AVA


def test_ava_checkpoint_as_saved_needs_numpy_globals_and_nothing_else(ava_regression: dict[str, Any]) -> None:
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(ava_regression["path"]))
    assert sorted(unsafe) == ["numpy._core.multiarray.scalar", "numpy.dtype"]
    with pytest.raises(Exception, match="Unsupported global"):  # plain weights_only refuses it, as it did users
        torch.load(str(ava_regression["path"]), weights_only=True)


@pytest.mark.parametrize("fixture, spread", [("ava_regression", 5.0), ("ava_distribution", 0.2)])
def test_ava_checkpoint_scores_like_the_training_code(tmp_path: Path, photos: dict[str, Path], request: pytest.FixtureRequest,
                                                      fixture: str, spread: float) -> None:
    """Both output modes: regression (the output clamped to 1..10), distribution (the mean rating under the softmax)."""
    ava = request.getfixturevalue(fixture)
    scorer = load_local(tmp_path, "ava-resnet50", ava["path"])
    paths = list(photos.values())
    scores = [s for (s,) in scorer.score_batch([decode_image(p) for p in paths])]
    with torch.inference_mode():
        expected = ava["model"].predict_score(reference_batch(paths, ava["config"])).tolist()
    assert all(1.0 <= s.raw <= 10.0 for s in scores)
    assert [s.raw for s in scores] == pytest.approx(expected, abs=2e-3)
    assert max(expected) - min(expected) > spread  # the photos really differ
    assert all(s.normalised == pytest.approx((s.raw - 1.0) / 9.0) for s in scores)
    assert scorer.layout.startswith("AVA ResNet-50")


def test_the_readmes_two_lines_point_keepers_at_ones_own_best_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photos: dict[str, Path], ava_regression: dict[str, Any]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = next(block.split("```", 1)[0] for block in readme.split("```yaml")[1:] if "best_model.pt" in block)
    assert len([line for line in snippet.strip().splitlines() if line.startswith("  ")]) == 2
    settings = yaml.safe_load(snippet)
    monkeypatch.setenv("HOME", str(tmp_path))
    (path,) = [Path(s["path"]).expanduser() for s in settings["models"]["sources"]["ava-resnet50"]]
    path.parent.mkdir(parents=True)
    path.write_bytes(ava_regression["path"].read_bytes())
    config_file = tmp_path / "keepers.yaml"
    config_file.write_text(snippet + f"database: {tmp_path / 'keepers.db'}\n")
    config = load_config(config_file, check_folders=False)
    assert config.models.enabled == ("ava-resnet50",)
    hub = ModelHub(config)
    scorer = load_adapter(hub.spec("ava-resnet50"), hub.fetch("ava-resnet50").path, threads=1)
    assert 1.0 <= scorer.score(decode_image(photos["coffee"]))[0].raw <= 10.0


@pytest.mark.slow
def test_a_full_size_ava_checkpoint_loads_and_scores(tmp_path: Path, photos: dict[str, Path]) -> None:
    """The real ResNet-50 (2048 features, the default 256-unit head; a 100 MB file)."""
    config = {"model": {"pretrained": True, "activation": "relu", "dropout": 0.3, "output_mode": "regression"},
              "transform": {"resize_size": 256, "crop_size": 224}}
    torch.manual_seed(21)
    model = AVAModel(config).eval()
    with torch.no_grad():
        model.head[-1].bias.fill_(5.5)
    path = save_best_model(tmp_path / "best_model.pt", model, config, "val_spearman", 0.74)
    assert path.stat().st_size > 90e6 and model.head[0].in_features == 2048
    scorer = load_local(tmp_path, "ava-resnet50", path)
    paths = [photos["astronaut"], photos["coffee"]]
    scores = [s.raw for (s,) in scorer.score_batch([decode_image(p) for p in paths])]
    with torch.inference_mode():
        expected = model.predict_score(reference_batch(paths, config)).tolist()
    assert scores == pytest.approx(expected, abs=2e-3) and all(1.0 <= s <= 10.0 for s in scores)


@pytest.mark.parametrize("bias, clamped", [(60.0, 10.0), (-60.0, 1.0)])
def test_ava_regression_output_is_clamped_to_1_10(tmp_path: Path, photos: dict[str, Path], bias: float, clamped: float) -> None:
    config = {"model": {"mlp_hidden_dims": [8], "activation": "relu", "dropout": 0.2, "output_mode": "regression"}}
    torch.manual_seed(3)
    model = AVAModel(config, width=WIDTH)
    with torch.no_grad():
        model.head[-1].bias.fill_(bias)
    path = save_best_model(tmp_path / "best_model.pt", model, config, "val_spearman", 0.1)
    scorer = load_local(tmp_path, "ava-resnet50", path)
    (score,) = scorer.score(decode_image(photos["chelsea"]))
    assert score.raw == clamped


# ------------------------------------------------------------------------------------ comparators


@pytest.fixture(scope="module")
def near_tie(tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path], ava_regression: dict[str, Any],
             resnet_comparator: dict[str, Any]) -> dict[str, Any]:
    """coffee and coffee 3 % brighter: AVA ratings a few hundredths apart, so which one is better is
    known; and the ResNet comparator loaded from its checkpoint."""
    folder = tmp_path_factory.mktemp("near-tie")
    ava = load_local(folder, "ava-resnet50", ava_regression["path"])
    a, b = photos["coffee"], photos["coffee-bright"]
    (sa,), (sb,) = ava.score_batch([decode_image(a), decode_image(b)])
    assert sa.raw != sb.raw and abs(sa.raw - sb.raw) < 1.0, (sa.raw, sb.raw)
    return {"comparator": load_local(folder, "siamese-comparator", resnet_comparator["path"]), "pair": (a, b),
            "better": 0 if sa.raw > sb.raw else 1}


def test_resnet_comparator_follows_index_1_means_first_is_better_in_a_near_tie(near_tie: dict[str, Any]) -> None:
    (a, b), better, comparator = near_tie["pair"], near_tie["better"], near_tie["comparator"]
    winner, confidence = comparator.compare(a, b)
    assert winner == better and 0.5 < confidence < 1.0
    winner, confidence_swapped = comparator.compare(b, a)
    assert winner == 1 - better and confidence_swapped == pytest.approx(confidence, abs=1e-4)


@pytest.mark.slow
def test_a_torchscript_export_of_the_comparator_keeps_its_direction(
        tmp_path: Path, photos: dict[str, Path], resnet_comparator: dict[str, Any]) -> None:
    """The same network exported with torch.jit.trace: log-probabilities, index 1 = img1 better, by default.
    (A TorchScript file carries no config: the catalog's input decides its preprocessing, so only the
    verdicts are compared.)"""
    x = reference_batch([photos["coffee"]], resnet_comparator["config"])
    exported = tmp_path / "comparator.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated upstream, still what people export
        torch.jit.trace(resnet_comparator["model"], (x, x)).save(str(exported))
    from_checkpoint = load_local(tmp_path, "siamese-comparator", resnet_comparator["path"])
    from_torchscript = load_local(tmp_path, "siamese-comparator", exported)
    assert from_torchscript.layout == "TorchScript archive"
    for a, b in (("coffee", "coffee-bright"), ("coffee-bright", "coffee"), ("astronaut", "rocket")):
        expected = from_checkpoint.compare(photos[a], photos[b])
        winner, confidence = from_torchscript.compare(photos[a], photos[b])
        assert winner == expected[0] and confidence > 0.5


def test_album_near_tie_goes_to_the_photo_the_comparator_prefers(near_tie: dict[str, Any]) -> None:
    a, b = near_tie["pair"]
    better, worse = (a, b) if near_tie["better"] == 0 else (b, a)
    # the composite puts the other photo first, by less than the tie-break margin
    members = [Member(1, str(worse), composite=0.80), Member(2, str(better), composite=0.79)]
    pick = choose_cluster(7, members, tiebreak_margin=0.05, comparator=near_tie["comparator"])
    assert [c.image_id for c in pick.choices] == [2]
    assert pick.choices[0].reason["decided_by"] == "comparator"


def test_vgg16_comparator_with_paper_preprocessing_agrees_with_the_training_code(
        tmp_path: Path, photos: dict[str, Path], vgg_comparator: dict[str, Any]) -> None:
    comparator = load_local(tmp_path, "siamese-comparator", vgg_comparator["path"])
    assert comparator.preprocess.pad_square and comparator.preprocess.size == (224, 224)
    pairs = [("astronaut", "chelsea"), ("chelsea", "astronaut"), ("coffee", "rocket"), ("coffee", "coffee-bright")]
    verdicts = set()
    for first, second in pairs:
        x1, x2 = (reference_batch([photos[n]], vgg_comparator["config"]) for n in (first, second))
        with torch.inference_mode():
            log_probs = vgg_comparator["model"](x1, x2)[0]
            backbone = vgg_comparator["model"].backbone
            img1_better = bool(float((backbone(x1) - backbone(x2))[0] @ vgg_comparator["w"]) > 0)
        assert img1_better == bool(log_probs[1] > log_probs[0])  # the training code's own convention
        winner, confidence = comparator.compare(photos[first], photos[second])
        assert winner == (0 if img1_better else 1), (first, second, log_probs)
        assert confidence == pytest.approx(float(log_probs.exp().max()), abs=2e-3)
        verdicts.add(winner)
    assert verdicts == {0, 1}  # both directions occurred


def test_real_size_backbones_have_the_training_codes_keys_and_shapes() -> None:
    """Built on the meta device (no memory): keepers' ResNet-50 and VGG16 backbones at full size
    have exactly the keys and shapes of the training code's, e.g. backbone.fc6 25088 -> 4096."""
    from daemon.scoring.models.resnet import resnet50_backbone
    from daemon.scoring.models.vgg import vgg16_backbone
    from fixtures_models.user_training import resnet50_backbone as user_resnet
    from fixtures_models.user_training import vgg16_backbone as user_vgg

    with torch.device("meta"):
        ours = {"resnet50": resnet50_backbone(), "vgg16": vgg16_backbone()}
        theirs = {"resnet50": user_resnet(64)[0], "vgg16": user_vgg(1, 4096)[0]}
    for name in ours:
        mine = {k: tuple(v.shape) for k, v in ours[name].state_dict().items()}
        assert mine == {k: tuple(v.shape) for k, v in theirs[name].state_dict().items()}, name
    vgg = {k: tuple(v.shape) for k, v in ours["vgg16"].state_dict().items()}
    assert vgg["fc6.weight"] == (4096, 25088) and vgg["fc7.weight"] == (4096, 4096) and "28.weight" in vgg
    assert sorted({int(k.split(".")[0]) for k in vgg if k[0].isdigit()}) == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    resnet = ours["resnet50"].state_dict()
    assert sorted({int(k.split(".")[0]) for k in resnet}) == [0, 1, 4, 5, 6, 7]
    assert tuple(resnet["7.2.conv3.weight"].shape) == (2048, 512, 1, 1)


# ---------------------------------------------------------------------------------- what is refused


def test_checkpoint_written_by_numpy_1_loads(tmp_path: Path, photos: dict[str, Path], ava_distribution: dict[str, Any]) -> None:
    """numpy 1.x named the scalar reconstructor numpy.core.multiarray.scalar."""
    old = tmp_path / "best_model.pt"
    with zipfile.ZipFile(ava_distribution["path"]) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                assert b"cnumpy._core.multiarray\nscalar\n" in data
                data = data.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
            dst.writestr(item, data)
    assert "numpy.core.multiarray.scalar" in torch.serialization.get_unsafe_globals_in_checkpoint(str(old))
    scorer = load_local(tmp_path, "ava-resnet50", old)
    assert 1.0 <= scorer.score(decode_image(photos["rocket"]))[0].raw <= 10.0


def test_anything_beyond_numpy_scalars_is_still_refused(tmp_path: Path, ava_distribution: dict[str, Any]) -> None:
    model = AVAModel(ava_distribution["config"], width=WIDTH)
    with_array = tmp_path / "array.pt"
    torch.save({"epoch": 1, "model_state_dict": model.state_dict(), "config": ava_distribution["config"],
                "val_spearman": np.float64(0.5), "val_curve": np.array([0.1, 0.2])}, with_array)
    with pytest.raises(UnsafeCheckpoint, match="weights_only"):
        load_local(tmp_path, "ava-resnet50", with_array)
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pt"
    save_malicious_checkpoint(hostile, marker)
    with pytest.raises(UnsafeCheckpoint, match="exec"):
        load_local(tmp_path, "ava-resnet50", hostile)
    assert not marker.exists()


def test_a_file_of_no_known_layout_says_what_was_tried_and_what_it_holds(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4, 1))
    path = tmp_path / "best_model.pt"
    torch.save({"epoch": 3, "model_state_dict": {f"encoder.{k}": v for k, v in net.state_dict().items()},
                "config": {"model": {}}, "val_acc": np.float64(0.5)}, path)
    with pytest.raises(ModelLoadError) as info:
        load_local(tmp_path, "ava-resnet50", path)
    message = str(info.value)
    for tried in ("TorchScript", "input.arch", "AVA ResNet-50 training checkpoint", "Siamese comparator training checkpoint",
                  "torchvision ResNet-50"):
        assert tried in message, tried
    assert "encoder (4)" in message and "encoder.0.weight [4, 3, 3, 3]" in message and "val_acc" in message
    assert "options." not in message and "input: {arch:" in message


def test_an_ava_checkpoint_given_to_the_comparator_says_where_it_belongs(tmp_path: Path, ava_regression: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match="ava-resnet50 for the AVA scorer"):
        load_local(tmp_path, "siamese-comparator", ava_regression["path"])


def test_a_backbone_the_config_contradicts_is_refused(tmp_path: Path, resnet_comparator: dict[str, Any]) -> None:
    raw = torch.load(str(resnet_comparator["path"]), weights_only=False)
    raw["config"] = {**raw["config"], "model": {**raw["config"]["model"], "cnn_backbone": "vgg16"}}
    path = tmp_path / "best_model.pt"
    buffer = io.BytesIO()
    torch.save(raw, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelLoadError, match="config\\['model'\\] says 'vgg16'"):
        load_local(tmp_path, "siamese-comparator", path)


def test_a_head_with_layers_other_than_linear_is_named(tmp_path: Path) -> None:
    config = {"model": {"mlp_hidden_dims": [8], "output_mode": "regression"}}
    model = AVAModel(config, width=WIDTH)
    state = {**model.state_dict(), "head.1.weight": torch.ones(8), "head.1.bias": torch.zeros(8)}  # a BatchNorm1d
    path = tmp_path / "best_model.pt"
    torch.save({"epoch": 1, "model_state_dict": state, "config": config, "val_spearman": np.float64(0.2)}, path)
    with pytest.raises(ModelLoadError, match=r"its head holds layers other than Linear \(head.1.weight, head.1.bias\)"):
        load_local(tmp_path, "ava-resnet50", path)
