"""Conditional DCGAN generator: noise + class (+ optional client id) -> image in [-1, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConditionalGenerator(nn.Module):
    """DCGAN-style: a linear projection to a small feature map, then blocks that double the size
    (BatchNorm+ReLU between them) and a tanh output.

    A block is nearest-neighbour upsampling and a 3x3 convolution (resize-convolution, Odena et al.,
    Distill 2016): a transposed convolution's uneven overlap draws a checkerboard, and the
    attack's judges (the server's own networks) reward it, so it grew into the samples.

    Two doublings up to 32x32, three beyond; `smooth` draws at half resolution. Class and client enter as learned
    embeddings concatenated to the noise; `num_clients=0` makes it class-only.
    """

    def __init__(
        self,
        noise_dim: int,
        num_classes: int,
        num_clients: int,
        image_shape: tuple[int, int, int],
        width: int = 64,
        smooth: bool = False,
    ):
        super().__init__()
        channels, self.size, _ = image_shape
        # Drawn at half resolution when smooth (a smoothness prior against pixel-level adversarial
        # patterns), at a side the doublings reach exactly, then resized to the image side.
        target = -(-self.size // 2) if smooth else self.size
        ups = 2 if target <= 32 else 3
        self.start = -(-target // 2**ups)
        self.drawn = self.start * 2**ups
        self.noise_dim = noise_dim
        self.class_emb = nn.Embedding(num_classes, 16)
        self.client_emb = nn.Embedding(num_clients, 16) if num_clients else None
        in_dim = noise_dim + 16 + (16 if num_clients else 0)
        c0 = width * 2 ** (ups - 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, c0 * self.start**2), nn.BatchNorm1d(c0 * self.start**2), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        c = c0
        for i in range(ups):
            last = i == ups - 1
            c_out = channels if last else c // 2
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c_out, 3, padding=1)]
            blocks += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU()]
            c = c_out
        self.body = nn.Sequential(*blocks)
        self.c0 = c0

    def forward(self, z: Tensor, classes: Tensor, clients: Tensor | None = None) -> Tensor:
        parts = [z, self.class_emb(classes)]
        if self.client_emb is not None:
            if clients is None:
                raise ValueError("this generator is conditioned on a client id")
            parts.append(self.client_emb(clients))
        h = self.project(torch.cat(parts, dim=1)).view(len(z), self.c0, self.start, self.start)
        x = self.body(h)
        if self.drawn != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x
