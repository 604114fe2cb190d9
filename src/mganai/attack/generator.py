"""Conditional DCGAN generator: noise + class (+ optional client id) -> image in [-1, 1]."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConditionalGenerator(nn.Module):
    """DCGAN-style: a linear projection to a small feature map, then BatchNorm+ReLU
    transposed convolutions that double the size, and a tanh output.

    Two doublings up to 32x32, three beyond. Class and client enter as learned
    embeddings concatenated to the noise; `num_clients=0` makes it class-only.
    """

    def __init__(self, noise_dim: int, num_classes: int, num_clients: int, image_shape: tuple[int, int, int], width: int = 64):
        super().__init__()
        channels, size, _ = image_shape
        ups = 2 if size <= 32 else 3
        self.start = size // 2**ups
        if self.start * 2**ups != size:
            raise ValueError(f"generator needs an image side divisible by {2**ups}, got {size}")
        self.noise_dim = noise_dim
        self.class_emb = nn.Embedding(num_classes, 16)
        self.client_emb = nn.Embedding(num_clients, 16) if num_clients else None
        in_dim = noise_dim + 16 + (16 if num_clients else 0)
        c0 = width * 2 ** (ups - 1)
        self.project = nn.Sequential(nn.Linear(in_dim, c0 * self.start**2), nn.BatchNorm1d(c0 * self.start**2), nn.ReLU())
        blocks: list[nn.Module] = []
        c = c0
        for i in range(ups):
            last = i == ups - 1
            c_out = channels if last else c // 2
            blocks.append(nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1))
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
        return self.body(h)
