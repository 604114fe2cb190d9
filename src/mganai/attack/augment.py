"""Random small affine warps of image batches, so the attack's judges reward shapes, not pixel patterns.

A pattern that fools a classifier at one exact pixel position rarely survives a
random shift, turn and zoom; a stroke or an edge does. Warps are differentiable
(`grid_sample`), drawn per sample from the attack's own generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_affine(x: Tensor, generator: torch.Generator, shift_px: int, rotate_deg: float, scale: float) -> Tensor:
    """Each image of `x` [B, C, H, W] shifted by up to `shift_px` pixels (times the zoom), turned by up to `rotate_deg`
    degrees and zoomed by a factor in [1 - scale, 1 + scale]; the border is filled with -1 (black)."""
    if shift_px == 0 and rotate_deg == 0 and scale == 0:
        return x
    b, _, h, w = x.shape
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(rotate_deg)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / side.
    tx, ty = u[:, 2] * shift_px * 2 / w, u[:, 3] * shift_px * 2 / h
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
