"""Image grids: real victim samples on the left, a method's reconstructions on the right."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def to_uint8(images: Tensor) -> np.ndarray:
    """[n, C, H, W] in [-1, 1] -> [n, H, W, C] uint8."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def tile(rows: list[Tensor], gap: int = 1) -> np.ndarray:
    """Rows of images (each [m, C, H, W], same shape) -> one image with `gap`-px lines between cells."""
    c, h, w = rows[0].shape[1:]
    m = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + gap) + gap, m * (w + gap) + gap, c), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(to_uint8(row)):
            canvas[gap + i * (h + gap) : gap + i * (h + gap) + h, gap + j * (w + gap) : gap + j * (w + gap) + w] = img
    return canvas[..., 0] if c == 1 else canvas


def comparison_grid(real: list[Tensor], fake: list[Tensor], scale: int = 2) -> np.ndarray:
    """One row per class: the real samples, a separator column, then the reconstructions."""
    c, h, w = fake[0].shape[1:]
    sep = torch.ones(1, c, h, w // 2)  # a white spacer cell between real and generated
    rows = [torch.cat([r, F.pad(sep, (0, w - w // 2), value=1.0), f]) for r, f in zip(real, fake)]
    grid = tile(rows)
    return np.kron(grid, np.ones((scale, scale) + ((1,) if grid.ndim == 3 else ()), dtype=np.uint8))
