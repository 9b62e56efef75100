"""The CLIP image encoder (ViT), with Hugging Face's module names, so the
``model.safetensors`` of a CLIP repository (e.g. openai/clip-vit-base-patch32)
loads key for key without installing transformers. Only the vision tower and
the visual projection are built; text-tower weights in the file are ignored.
Import this module only from the torch adapters (it imports torch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipVisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_attention_heads: int = 12
    num_hidden_layers: int = 12
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    projection_dim: int = 512

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ClipVisionConfig":
        """From a CLIP ``config.json`` (its ``vision_config`` plus top-level ``projection_dim``)."""
        vision = dict(data.get("vision_config") or data)
        fields = {k: vision[k] for k in cls.__dataclass_fields__ if k in vision}
        if "projection_dim" in data:
            fields["projection_dim"] = data["projection_dim"]
        return cls(**fields)


def _activation(name: str) -> nn.Module:
    if name == "quick_gelu":
        return QuickGELU()
    if name in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        return nn.GELU(approximate="tanh" if name != "gelu" else "none")
    raise ValueError(f"unsupported CLIP activation {name!r}")


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ClipEmbeddings(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(cfg.hidden_size))
        self.patch_embedding = nn.Conv2d(3, cfg.hidden_size, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.position_embedding = nn.Embedding((cfg.image_size // cfg.patch_size) ** 2 + 1, cfg.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(pixels.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight.unsqueeze(0)


class ClipAttention(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        out = nn.functional.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class ClipMLP(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.activation_fn = _activation(cfg.hidden_act)
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class ClipEncoderLayer(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.self_attn = ClipAttention(cfg)
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = ClipMLP(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(ClipEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ClipVisionTransformer(nn.Module):
    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.embeddings = ClipEmbeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)  # sic: HF's name
        self.encoder = ClipEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.pre_layrnorm(self.embeddings(pixels)))
        return self.post_layernorm(hidden[:, 0])


class ClipImageEncoder(nn.Module):
    """Pixels (B, 3, S, S), CLIP-normalised -> image embeddings (B, projection_dim)."""

    def __init__(self, cfg: ClipVisionConfig):
        super().__init__()
        self.config = cfg
        self.vision_model = ClipVisionTransformer(cfg)
        self.visual_projection = nn.Linear(cfg.hidden_size, cfg.projection_dim, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model(pixels))


def vision_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The vision-tower and projection tensors of a full CLIP state dict."""
    return {k: v for k, v in state.items()
            if (k.startswith("vision_model.") and not k.endswith("position_ids")) or k.startswith("visual_projection.")}


def read_config(folder: Path) -> ClipVisionConfig:
    file = folder / "config.json"
    return ClipVisionConfig.from_json(json.loads(file.read_text(encoding="utf-8"))) if file.is_file() else ClipVisionConfig()
