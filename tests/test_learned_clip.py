"""The CLIP image encoder loads a Hugging Face CLIP safetensors file (keys as
transformers names them) and writes unit-length embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from daemon.scoring.models import AdapterSpec, ModelLoadError, load_adapter  # noqa: E402
from fixtures_models import decoded, flat_image  # noqa: E402

pytestmark = pytest.mark.torch

HIDDEN, INTER, LAYERS, PATCH, IMAGE, PROJ = 16, 32, 2, 8, 32, 8


def hf_clip_state() -> dict[str, "torch.Tensor"]:
    """A full CLIPModel-style state dict, key names as in transformers' CLIP checkpoints."""
    g = torch.Generator().manual_seed(0)

    def rnd(*shape: int) -> "torch.Tensor":
        return torch.randn(*shape, generator=g) * 0.2

    tokens = (IMAGE // PATCH) ** 2 + 1
    state = {
        "vision_model.embeddings.class_embedding": rnd(HIDDEN),
        "vision_model.embeddings.patch_embedding.weight": rnd(HIDDEN, 3, PATCH, PATCH),
        "vision_model.embeddings.position_embedding.weight": rnd(tokens, HIDDEN),
        "vision_model.embeddings.position_ids": torch.arange(tokens).unsqueeze(0),
        "vision_model.pre_layrnorm.weight": 1 + rnd(HIDDEN), "vision_model.pre_layrnorm.bias": rnd(HIDDEN),
        "vision_model.post_layernorm.weight": 1 + rnd(HIDDEN), "vision_model.post_layernorm.bias": rnd(HIDDEN),
        "visual_projection.weight": rnd(PROJ, HIDDEN),
        "text_model.embeddings.token_embedding.weight": rnd(10, HIDDEN),
        "text_projection.weight": rnd(PROJ, HIDDEN),
        "logit_scale": torch.tensor(2.6592),
    }
    for i in range(LAYERS):
        p = f"vision_model.encoder.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            state[f"{p}self_attn.{proj}.weight"] = rnd(HIDDEN, HIDDEN)
            state[f"{p}self_attn.{proj}.bias"] = rnd(HIDDEN)
        for ln in ("layer_norm1", "layer_norm2"):
            state[f"{p}{ln}.weight"] = 1 + rnd(HIDDEN)
            state[f"{p}{ln}.bias"] = rnd(HIDDEN)
        state[f"{p}mlp.fc1.weight"], state[f"{p}mlp.fc1.bias"] = rnd(INTER, HIDDEN), rnd(INTER)
        state[f"{p}mlp.fc2.weight"], state[f"{p}mlp.fc2.bias"] = rnd(HIDDEN, INTER), rnd(HIDDEN)
    return state


def write_snapshot(folder: Path, state: dict) -> Path:
    from safetensors.torch import save_file

    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "projection_dim": PROJ,
        "vision_config": {"hidden_size": HIDDEN, "intermediate_size": INTER, "num_attention_heads": 2,
                          "num_hidden_layers": LAYERS, "image_size": IMAGE, "patch_size": PATCH, "hidden_act": "quick_gelu"}}))
    (folder / "preprocessor_config.json").write_text("{}")
    return folder


SPEC = AdapterSpec("clip-vit-b32", "embedding", "safetensors", "clip-vision", (-1.0, 1.0), {"size": IMAGE})


def test_clip_snapshot_loads_and_embeds(tmp_path: Path) -> None:
    folder = write_snapshot(tmp_path / "snapshot", hf_clip_state())
    encoder = load_adapter(SPEC, folder, threads=1)
    rng = np.random.default_rng(5)
    images = [decoded(rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)), decoded(flat_image(200, (40, 60)))]
    a, b = encoder.embed_batch(images)
    assert a.shape == (PROJ,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(a, b)
    np.testing.assert_allclose(encoder.embed_batch(images[:1])[0], a, atol=1e-5)
    # the projection really is the checkpoint's: another one in the file gives other vectors
    state = hf_clip_state()
    state["visual_projection.weight"] = torch.eye(PROJ, HIDDEN)
    other = load_adapter(SPEC, write_snapshot(tmp_path / "other", state), threads=1)
    assert not np.allclose(other.embed_batch(images[:1])[0], a)


def test_clip_snapshot_missing_a_layer_is_refused(tmp_path: Path) -> None:
    state = {k: v for k, v in hf_clip_state().items() if ".layers.1." not in k}
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_adapter(SPEC, write_snapshot(tmp_path / "broken", state), threads=1)


def test_clip_snapshot_with_pytorch_model_bin_loads_like_the_safetensors_one(tmp_path: Path) -> None:
    """openai/clip-vit-base-patch32 holds pytorch_model.bin (transformers' torch.save of the state dict,
    text tower included), not model.safetensors: the same weights give the same embeddings."""
    from collections import OrderedDict

    state = hf_clip_state()
    safet = write_snapshot(tmp_path / "safetensors", state)
    binary = tmp_path / "bin"
    binary.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (binary / name).write_bytes((safet / name).read_bytes())
    full = OrderedDict(state)
    full["text_model.embeddings.token_embedding.weight"] = torch.zeros(10, HIDDEN)  # ignored by the vision encoder
    full["vision_model.embeddings.position_ids"] = torch.arange(5).unsqueeze(0)  # a buffer old checkpoints carry
    torch.save(full, binary / "pytorch_model.bin")
    spec = AdapterSpec("clip-vit-b32", "embedding", "torch-state-dict", "clip-vision", (-1.0, 1.0), {"size": IMAGE})
    image = [decoded(flat_image(90, (40, 60)))]
    from_bin = load_adapter(spec, binary, threads=1).embed_batch(image)[0]
    np.testing.assert_allclose(from_bin, load_adapter(SPEC, safet, threads=1).embed_batch(image)[0], atol=1e-5)
