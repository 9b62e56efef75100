"""VGG16's convolutional part with torchvision's module indices, and the
backbone a Siamese training script builds from it: ``features`` (indices
0-30), its ``avgpool`` (31), a Flatten (32) and the first two classifier
layers under their own names (``fc6``, ``relu6``, ``dropout6``, ``fc7``,
``relu7``, ``dropout7``).

torchvision cannot be installed next to the CPU torch build here; these few
lines are the architecture a checkpoint's keys refer to. This module imports
torch at import time; import it only from the torch adapter.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

#: torchvision's configuration "D": output channels per convolution, "M" = max pool
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
#: where VGG16's convolutions sit in ``features``
VGG16_CONV_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def vgg16_features(channels: Sequence[int] | None = None) -> list[nn.Module]:
    """VGG16's ``features`` modules (31 of them): a 3x3 convolution and a ReLU per
    entry, a 2x2 max pool per "M". ``channels`` replaces the 13 convolutions'
    widths (the real ones by default; tests use narrow ones)."""
    widths = iter(channels if channels is not None else [c for c in VGG16_LAYOUT if c != "M"])
    layers: list[nn.Module] = []
    in_channels = 3
    for entry in VGG16_LAYOUT:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out_channels = next(widths)
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
        in_channels = out_channels
    return layers


def vgg16_backbone(channels: Sequence[int] | None = None, fc: int = 4096) -> nn.Sequential:
    """``features``, avgpool to 7x7, Flatten, then ``fc6``/``relu6``/``dropout6``/``fc7``/``relu7``/``dropout7``:
    ``fc`` features out (4096 in VGG16)."""
    features = vgg16_features(channels)
    last = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
    modules: "OrderedDict[str, nn.Module]" = OrderedDict((str(i), m) for i, m in enumerate(features))
    modules[str(len(features))] = nn.AdaptiveAvgPool2d((7, 7))
    modules[str(len(features) + 1)] = nn.Flatten()
    modules.update(fc6=nn.Linear(last * 7 * 7, fc), relu6=nn.ReLU(inplace=True), dropout6=nn.Dropout(),
                   fc7=nn.Linear(fc, fc), relu7=nn.ReLU(inplace=True), dropout7=nn.Dropout())
    return nn.Sequential(modules)


def infer_vgg16_backbone(state: dict[str, torch.Tensor]) -> tuple[nn.Sequential, int]:
    """The :func:`vgg16_backbone` that fits ``state`` (its keys without the
    ``backbone.`` prefix) and its feature count. Raises KeyError/ValueError
    when ``state`` is not one."""
    channels = [int(state[f"{i}.weight"].shape[0]) for i in VGG16_CONV_INDICES]
    fc = int(state["fc6.weight"].shape[0])
    return vgg16_backbone(channels, fc), fc
