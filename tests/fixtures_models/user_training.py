"""The user's training code, as far as the checkpoints it writes go: the AVA
ResNet-50 model, the Siamese comparator, and how each saves ``best_model.pt``.

Written from the public facts about that code, not from keepers' loader:
``backbone = Sequential(*resnet50.children()[:-1], Flatten())``, a VGG16
backbone of torchvision's ``features``, ``avgpool`` and named ``fc6``/``fc7``
layers, heads built from ``config['model']``, and ``torch.save`` of a dict
with ``epoch``, ``model_state_dict``, ``config`` and a numpy.float64 metric.
``width`` narrows the networks so tests stay small and fast; the key layout
is the real one. torchvision cannot be installed here: ResNet-50 comes from
keepers' torchvision-layout copy (pinned to torchvision's parameter count in
test_learned_torch.py) and VGG16 is torchvision's ``make_layers`` below.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from daemon.scoring.models.resnet import resnet50

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class TorchvisionVGG16(nn.Module):
    """torchvision's ``vgg16()``: ``features``, ``avgpool``, ``classifier`` (channels divided by ``divisor``)."""

    def __init__(self, divisor: int = 1, fc: int = 4096):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in VGG16_CFG:
            if v == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                out = int(v) // divisor
                layers += [nn.Conv2d(in_channels, out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(in_channels * 7 * 7, fc), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(), nn.Linear(fc, 1000))


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "tanh": nn.Tanh()}[name]


def mlp(in_dim: int, hidden: list[int], out_dim: int, act: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), activation(act), nn.Dropout(dropout)]
        in_dim = h
    return layers + [nn.Linear(in_dim, out_dim)]


def resnet50_backbone(width: int) -> tuple[nn.Sequential, int]:
    resnet = resnet50(width=width)  # config['model']['pretrained'] would load ImageNet weights here
    return nn.Sequential(*list(resnet.children())[:-1], nn.Flatten()), resnet.fc.in_features


def vgg16_backbone(divisor: int, fc: int) -> tuple[nn.Sequential, int]:
    vgg = TorchvisionVGG16(divisor, fc)
    layers: "OrderedDict[str, nn.Module]" = OrderedDict((str(i), m) for i, m in enumerate(vgg.features))
    layers[str(len(layers))] = vgg.avgpool
    layers[str(len(layers))] = nn.Flatten()
    layers.update(fc6=vgg.classifier[0], relu6=vgg.classifier[1], dropout6=vgg.classifier[2],
                  fc7=vgg.classifier[3], relu7=vgg.classifier[4], dropout7=vgg.classifier[5])
    return nn.Sequential(layers), fc


class AVAModel(nn.Module):
    """ResNet-50 backbone and an MLP head: one score (regression) or ten rating logits (distribution)."""

    def __init__(self, config: Mapping[str, Any], width: int = 64):
        super().__init__()
        m = config["model"]
        self.backbone, features = resnet50_backbone(width)
        out = 1 if m.get("output_mode", "regression") == "regression" else 10
        self.head = nn.Sequential(*mlp(features, list(m.get("mlp_hidden_dims", [256])), out,
                                       m.get("activation", "relu"), m.get("dropout", 0.3)))
        self.output_mode = m.get("output_mode", "regression")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def predict_score(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward(x)
        if self.output_mode == "distribution":
            return (torch.softmax(out, dim=1) * torch.arange(1, 11, dtype=out.dtype)).sum(dim=1)
        return out[:, 0].clamp(1.0, 10.0)


class SiameseNetwork(nn.Module):
    """A shared backbone; ``mlp(feat1 - feat2)`` gives log-probabilities, index 1 = img1 better."""

    def __init__(self, config: Mapping[str, Any], width: int = 64, vgg_divisor: int = 1, vgg_fc: int = 4096):
        super().__init__()
        m = config["model"]
        if m.get("cnn_backbone", "resnet50") == "vgg16":
            self.backbone, features = vgg16_backbone(vgg_divisor, vgg_fc)
        else:
            self.backbone, features = resnet50_backbone(width)
        self.mlp = nn.Sequential(*mlp(features, list(m.get("mlp_hidden_dims", [128, 64])), 2,
                                      m.get("activation", "relu"), m.get("dropout", 0.5)), nn.LogSoftmax(dim=1))

    def forward(self, img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.backbone(img1) - self.backbone(img2))


def save_best_model(path: Path, model: nn.Module, config: Mapping[str, Any], metric_name: str, metric: float,
                    epoch: int = 7) -> Path:
    """What the training loop writes when the validation metric improves."""
    torch.save({"epoch": epoch, "model_state_dict": model.state_dict(), "config": dict(config),
                metric_name: np.float64(metric)}, path)
    return path


def transform(image: Any, config: Mapping[str, Any]) -> torch.Tensor:
    """The training code's evaluation transform for a PIL image, as a (3, H, W) tensor:
    Resize(resize_size) + CenterCrop(crop_size), or with use_paper_preprocessing the
    long side to crop_size padded to a square with the mean colour; then Normalize."""
    from PIL import Image

    t = config.get("transform", {})
    crop = int(t.get("crop_size", 224))
    if t.get("use_paper_preprocessing"):
        scale = crop / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR)
        canvas = Image.new("RGB", (crop, crop), tuple(round(v * 255) for v in IMAGENET_MEAN))
        canvas.paste(image, ((crop - image.width) // 2, (crop - image.height) // 2))
        image = canvas
    else:
        size = int(t.get("resize_size", 256))
        w, h = image.size
        new = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
        image = image.resize(new, Image.Resampling.BILINEAR)
        left, top = int(round((image.width - crop) / 2.0)), int(round((image.height - crop) / 2.0))
        image = image.crop((left, top, left + crop, top + crop))
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
