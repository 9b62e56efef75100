"""Tiny torch architectures standing in for a user's own network code."""

import torch
from torch import nn


class TinyRegressor(nn.Module):
    """Score = scale * mean of the (normalised) input + offset."""

    def __init__(self, scale: float = 2.0, offset: float = 5.0):
        super().__init__()
        self.head = nn.Linear(1, 1)
        with torch.no_grad():
            self.head.weight.fill_(scale)
            self.head.bias.fill_(offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2, 3)).unsqueeze(1))


class TinySiamese(nn.Module):
    """One logit per pair: positive when the first image is brighter."""

    def __init__(self, gain: float = 8.0):
        super().__init__()
        self.head = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.head.weight.fill_(gain)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = a.mean(dim=(1, 2, 3)) - b.mean(dim=(1, 2, 3))
        return self.head(diff.unsqueeze(1))


class TinyEmbedder(nn.Module):
    """An image embedding of ``dim`` numbers: a conv and global pooling."""

    def __init__(self, dim: int = 8):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, dim, 3, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))
