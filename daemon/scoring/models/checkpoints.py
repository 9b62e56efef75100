"""The user's own training checkpoints: the AVA ResNet-50 scorer and the
Siamese pairwise comparator, read the way their training code saves them.

Both files are ``torch.save`` of a dict: ``epoch``, ``model_state_dict``,
``config`` (``config['model']`` the architecture, ``config['transform']``
the preprocessing) and a numpy metric. The weights decide the layer sizes;
the config decides what the weights cannot say (activation, output mode,
preprocessing). ``pretrained`` in the config was about ImageNet
initialisation at training time and is never acted on here.

- AVA: ``backbone = Sequential(*resnet50.children()[:-1], Flatten())`` and
  ``head = Sequential(Linear, act, Dropout, ..., Linear(hk, out))``; the
  score is the output clamped to 1..10 (``output_mode: regression``) or the
  mean rating 1..10 under the softmax (``distribution``).
- Siamese: a ResNet-50 or VGG16 (``cnn_backbone``) ``backbone`` and
  ``mlp = Sequential(Linear, act, Dropout, ..., Linear(hk, 2), LogSoftmax)``
  over ``feat1 - feat2``; index 1 of its output means the first image is better.

Import this module only from the torch adapter (it imports torch).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from .common import ModelLoadError
from .torch_load import Checkpoint, load_into

log = logging.getLogger(__name__)

#: AVA ratings run 1..10
RATINGS = 10
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": lambda: nn.ReLU(inplace=True), "tanh": nn.Tanh}
BACKBONES = ("resnet50", "vgg16")
#: the layouts :func:`layout_of` tells apart, as messages name them
AVA_LAYOUT = "AVA ResNet-50 training checkpoint (backbone.* and head.*)"
SIAMESE_LAYOUT = "Siamese comparator training checkpoint (backbone.* and mlp.*)"
_LINEAR_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def layout_of(state: Mapping[str, torch.Tensor]) -> str | None:
    """'ava', 'siamese' or None, from the checkpoint's top-level module names."""
    groups = {key.split(".", 1)[0] for key in state}
    if "backbone" in groups and "head" in groups:
        return "ava"
    if "backbone" in groups and "mlp" in groups:
        return "siamese"
    return None


class AvaResNet50(nn.Module):
    """The AVA model: ``backbone`` then ``head``; ``forward`` returns one rating 1..10 per image, shape (N, 1)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, output_mode: str):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.output_mode = output_mode

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.head(self.backbone(images))
        if self.output_mode == "distribution":
            ratings = torch.arange(1, out.shape[1] + 1, dtype=out.dtype, device=out.device)
            return (torch.softmax(out, dim=1) * ratings).sum(dim=1, keepdim=True)
        return out[:, :1].clamp(1.0, float(RATINGS))


class SiameseComparator(nn.Module):
    """The comparator: ``mlp(backbone(img1) - backbone(img2))``, log-probabilities (N, 2).

    Index 1 = ``img1`` is the better photo, index 0 = ``img2`` is."""

    first_better_index = 1

    def __init__(self, backbone: nn.Module, mlp: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.mlp = mlp

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.backbone(img1) - self.backbone(img2))


def build_ava(model: str, path: Path, checkpoint: Checkpoint) -> AvaResNet50:
    """The AVA network of ``checkpoint`` with its weights loaded, in eval mode."""
    settings = _model_settings(checkpoint.config)
    backbone, features = _backbone(model, path, checkpoint, settings.get("backbone", "resnet50"))
    head = _mlp(model, path, checkpoint, "head", features, settings)
    outputs = _out_features(head)
    mode = settings.get("output_mode") or ("regression" if outputs == 1 else "distribution")
    expected = {"regression": 1, "distribution": RATINGS}.get(str(mode))
    if expected is None:
        raise ModelLoadError(model, path, f"config['model']['output_mode'] is {mode!r}; keepers knows 'regression' and 'distribution'",
                             "Save the checkpoint with one of those output modes.")
    if outputs != expected:
        raise ModelLoadError(model, path, f"config['model']['output_mode'] is {mode!r}, which has {expected} output(s), "
                             f"but the head's last layer has {outputs}", "Check that config and weights come from the same training run.")
    return load_into(model, path, AvaResNet50(backbone, head, str(mode)), checkpoint.state)  # type: ignore[return-value]


def build_siamese(model: str, path: Path, checkpoint: Checkpoint) -> SiameseComparator:
    """The Siamese comparator of ``checkpoint`` with its weights loaded, in eval mode."""
    settings = _model_settings(checkpoint.config)
    backbone, features = _backbone(model, path, checkpoint, settings.get("cnn_backbone"))
    mlp = _mlp(model, path, checkpoint, "mlp", features, settings, log_softmax=True)
    if _out_features(mlp) != 2:
        raise ModelLoadError(model, path, f"the mlp's last layer has {_out_features(mlp)} outputs; a Siamese comparator has 2 "
                             "(index 1 = the first image is better)", "Check that the file is the comparator's checkpoint.")
    return load_into(model, path, SiameseComparator(backbone, mlp), checkpoint.state)  # type: ignore[return-value]


def preprocess_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing a checkpoint was trained with, as :class:`~.torch_models.Preprocess` options:
    short side to ``resize_size`` (256) then the middle ``crop_size`` (224), or with
    ``use_paper_preprocessing`` the long side to ``crop_size`` padded to a square with the
    mean colour; ImageNet mean and std unless ``config['transform']`` names others."""
    transform = config.get("transform") if isinstance(config.get("transform"), Mapping) else {}
    settings = _model_settings(config)
    paper = transform.get("use_paper_preprocessing", config.get("use_paper_preprocessing", settings.get("use_paper_preprocessing", False)))
    options: dict[str, Any] = {"size": int(transform.get("crop_size", 224)), "resample": "bilinear"}
    if paper:
        options["pad_square"] = True
    else:
        options.update(center_crop=True, resize=int(transform.get("resize_size", 256)))
    for key in ("mean", "std"):
        if transform.get(key) is not None:
            options[key] = [float(v) for v in transform[key]]
    return options


def describe_keys(checkpoint: Checkpoint, shown: int = 6) -> str:
    """What a checkpoint holds, for a message: its top-level keys, its weight groups and first tensors."""
    groups: dict[str, int] = {}
    for key in checkpoint.state:
        groups[key.split(".", 1)[0]] = groups.get(key.split(".", 1)[0], 0) + 1
    first = ", ".join(f"{k} {list(v.shape)}" for k, v in list(checkpoint.state.items())[:shown])
    top = f"top-level keys {', '.join(checkpoint.top_keys)}; " if checkpoint.top_keys else ""
    return (f"{top}{len(checkpoint.state)} tensors in groups {', '.join(f'{g} ({n})' for g, n in groups.items())}; "
            f"first: {first}")


def _model_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = config.get("model")
    return settings if isinstance(settings, Mapping) else {}


def _sub_state(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def _backbone(model: str, path: Path, checkpoint: Checkpoint, named: Any) -> tuple[nn.Sequential, int]:
    """The backbone the weights describe (ResNet-50 or VGG16) and its feature count; a
    ``named`` backbone in the config must agree with the weights."""
    state = _sub_state(checkpoint.state, "backbone")
    found = "vgg16" if "fc6.weight" in state else "resnet50" if "4.0.conv1.weight" in state else None
    if named is not None and str(named).lower() not in BACKBONES:
        raise ModelLoadError(model, path, f"config['model'] names the backbone {named!r}; keepers knows {', '.join(BACKBONES)}",
                             "Train with one of those backbones, or export the model with torch.jit.script(model).save(path).")
    if found is None or (named is not None and str(named).lower() != found):
        said = f" (config['model'] says {named!r})" if named is not None else ""
        raise ModelLoadError(model, path, f"its backbone.* weights are neither a ResNet-50 nor a VGG16 backbone{said}; "
                             + describe_keys(checkpoint), "Check that the file is the checkpoint your training code saved.")
    try:
        if found == "vgg16":
            from .vgg import infer_vgg16_backbone

            return infer_vgg16_backbone(state)
        from .resnet import infer_resnet50_backbone

        return infer_resnet50_backbone(state)
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(model, path, f"its backbone.* weights do not make a whole {found} ({exc}); " + describe_keys(checkpoint),
                             "Check that the file was saved completely (fetch or copy it again).") from exc


def _mlp(model: str, path: Path, checkpoint: Checkpoint, prefix: str, features: int, settings: Mapping[str, Any],
         *, log_softmax: bool = False) -> nn.Sequential:
    """``Sequential(Linear, act, Dropout, ..., Linear)`` (and LogSoftmax) fitted to the ``prefix.N`` weights.

    Layer sizes come from the weights; the activation from ``config['model']['activation']``.
    Modules between two Linears are the activation, then Dropout (no weights; a no-op in eval)."""
    state = _sub_state(checkpoint.state, prefix)
    odd = [k for k in state if not _LINEAR_KEY.match(k) or getattr(state.get(k.split(".")[0] + ".weight"), "ndim", 0) != 2]
    if odd:
        raise ModelLoadError(model, path, f"its {prefix} holds layers other than Linear ({', '.join(f'{prefix}.{k}' for k in odd[:4])})",
                             "keepers builds the head from Linear layers, an activation and Dropout, as the training code does.")
    name = str(settings.get("activation", "relu")).lower()
    if name not in ACTIVATIONS:
        raise ModelLoadError(model, path, f"config['model']['activation'] is {name!r}; keepers knows {', '.join(ACTIVATIONS)}",
                             "Export the model with torch.jit.script(model).save(path) to use another activation.")
    indices = sorted({int(k.split(".")[0]) for k in state})
    if not indices or indices[0] != 0:
        raise ModelLoadError(model, path, f"its {prefix} does not start with a Linear layer at {prefix}.0",
                             "Check that the file is the checkpoint your training code saved.")
    layers: list[nn.Module] = []
    in_features = features
    for position, index in enumerate(indices):
        weight = state[f"{index}.weight"]
        if int(weight.shape[1]) != in_features:
            raise ModelLoadError(model, path, f"{prefix}.{index} takes {int(weight.shape[1])} features but gets {in_features}",
                                 "Check that config and weights come from the same training run.")
        while len(layers) < index:  # the modules without weights before this Linear
            layers.append(ACTIVATIONS[name]() if len(layers) == indices[position - 1] + 1 else nn.Dropout())
        layers.append(nn.Linear(in_features, int(weight.shape[0]), bias=f"{index}.bias" in state))
        in_features = int(weight.shape[0])
    hidden = [int(state[f"{i}.weight"].shape[0]) for i in indices[:-1]]
    configured = settings.get("mlp_hidden_dims")
    if configured is not None and [int(h) for h in configured] != hidden:
        log.warning("model %s: config['model']['mlp_hidden_dims'] is %s but the %s weights have %s; using the weights",
                    model, list(configured), prefix, hidden)
    if log_softmax:
        layers.append(nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


def _out_features(mlp: nn.Sequential) -> int:
    return [m for m in mlp if isinstance(m, nn.Linear)][-1].out_features
