"""ResNet-50 with torchvision's module names, so a state dict saved from
``torchvision.models.resnet50()`` (or a fine-tune of it) loads key for key.

torchvision cannot be installed next to the CPU torch build here, and a
checkpoint is only data: the architecture has to live in the project. This
module imports torch at import time; import it only from the torch adapter.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

#: blocks per stage of ResNet-50
RESNET50_LAYERS: tuple[int, int, int, int] = (3, 4, 6, 3)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3 conv, as in ResNet v1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet over Bottleneck blocks.

    ``width`` is the first stage's planes (64 in ResNet-50; tests use a
    narrower one to stay small). ``head`` replaces ``fc``: ``"linear"`` keeps
    torchvision's single ``fc`` Linear, ``"dropout-linear"`` is the common
    fine-tuning head ``fc = Sequential(Dropout, Linear)`` (keys ``fc.1.*``).
    """

    def __init__(self, layers: Sequence[int] = RESNET50_LAYERS, num_outputs: int = 1000, *, width: int = 64,
                 head: str = "linear", dropout: float = 0.0):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        features = width * 8 * Bottleneck.expansion
        if head == "linear":
            self.fc: nn.Module = nn.Linear(features, num_outputs)
        elif head == "dropout-linear":
            self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_outputs))
        else:
            raise ValueError(f"unknown ResNet head {head!r}; expected 'linear' or 'dropout-linear'")

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers.extend(Bottleneck(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet50(num_outputs: int = 1000, *, width: int = 64, head: str = "linear") -> ResNet:
    """ResNet-50 (torchvision layout) with ``num_outputs`` outputs."""
    return ResNet(RESNET50_LAYERS, num_outputs, width=width, head=head)


def resnet50_backbone(width: int = 64) -> nn.Sequential:
    """ResNet-50 without its ``fc``, flattened: ``Sequential(*resnet50.children()[:-1], Flatten())``,
    the backbone training scripts put in front of their own head. Keys ``0.*`` (conv1), ``1.*``
    (bn1), ``4.*``-``7.*`` (layer1-4); 2, 3, 8, 9 (relu, maxpool, avgpool, flatten) hold none.
    Its output has ``width * 32`` features (2048 in ResNet-50)."""
    return nn.Sequential(*list(resnet50(width=width).children())[:-1], nn.Flatten())


def infer_resnet50_backbone(state: dict[str, torch.Tensor]) -> tuple[nn.Sequential, int]:
    """The :func:`resnet50_backbone` that fits ``state`` (its keys without the
    ``backbone.`` prefix) and its feature count. Raises KeyError/ValueError
    when ``state`` is not one."""
    width = int(state["0.weight"].shape[0])
    blocks = tuple(1 + max((int(k.split(".")[1]) for k in state if k.startswith(f"{i}.")), default=-1) for i in range(4, 8))
    if blocks != RESNET50_LAYERS:
        raise ValueError(f"stages 4-7 have {blocks} blocks; ResNet-50 has {RESNET50_LAYERS}")
    return resnet50_backbone(width), width * 8 * Bottleneck.expansion


def infer_resnet50(state: dict[str, torch.Tensor]) -> ResNet:
    """A ResNet-50 shaped to fit ``state``: width from ``conv1``, head and
    outputs from the ``fc`` keys. Raises KeyError/ValueError when it is not
    a ResNet-50 state dict."""
    width = int(state["conv1.weight"].shape[0])
    if "fc.weight" in state:
        head, outputs = "linear", int(state["fc.weight"].shape[0])
    elif "fc.1.weight" in state:
        head, outputs = "dropout-linear", int(state["fc.1.weight"].shape[0])
    else:
        raise ValueError("no fc.weight or fc.1.weight: not a ResNet-50 regression/classification head")
    blocks = tuple(1 + max((int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.")), default=-1) for i in range(1, 5))
    if blocks != RESNET50_LAYERS:
        raise ValueError(f"stages have {blocks} blocks; ResNet-50 has {RESNET50_LAYERS}")
    return resnet50(outputs, width=width, head=head)
