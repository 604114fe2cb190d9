"""The shared model: a small CNN whose feature extractor and classifier head are separate.

The attack reuses `features` as the trunk of its discriminator and `classifier` as
its category head, so both are addressable by name. Depth follows the resolution:
two conv blocks up to 28x28, one more per doubling beyond (32x32: 3, 64x64: 4), each
halving the image, then a 4x4 adaptive pool so the head's size never depends on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

Params = dict[str, Tensor]
M = TypeVar("M", bound=nn.Module)


def conv_blocks(resolution: int) -> int:
    """Number of conv+pool blocks for an input side length."""
    return 2 if resolution <= 28 else 2 + int(math.log2(resolution / 16))


class FinalPool(nn.AdaptiveAvgPool2d):
    """Adaptive average pooling that passes its input through when it already has the output size.

    Up to 28x28 the conv blocks leave exactly 4x4, where averaging is the identity; skipping it
    gives the same values and gradients and saves the pooling's time in every attack step.
    """

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) == _pair(self.output_size):
            return x
        return super().forward(x)


class SharedCNN(nn.Module):
    """Conv feature extractor (`features`) + linear classifier head (`classifier`)."""

    def __init__(self, channels: int, num_classes: int, resolution: int, width: int = 16, hidden: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for b in range(conv_blocks(resolution)):
            c_out = width * 2 ** min(b, 2)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        layers += [FinalPool(4), nn.Flatten(), nn.Linear(c_in * 16, hidden), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def seeded(factory: Callable[[], M], seed: int) -> M:
    """Build a module with its own seed, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def params_of(model: nn.Module) -> Params:
    """Detached copies of a module's parameters, by name."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def clone_params(params: Params) -> Params:
    return {k: v.clone() for k, v in params.items()}


def params_device(params: Params) -> torch.device:
    """Where a parameter dict lives (the device of its first tensor)."""
    return next(iter(params.values())).device


def flatten(params: Params) -> Tensor:
    """All parameters of one model as one vector (in name order)."""
    return torch.cat([params[k].reshape(-1) for k in sorted(params)])
