"""Per-client writer styles: what makes one client's digits recognisably its own.

A style is a fixed geometric and stroke transform (rotation, slant, scale, stroke
thickness) applied to every image of a client. Styles are drawn deterministically
from the seed and spread apart by farthest-point sampling, so any two clients
differ in more than one attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# Ranges of each attribute and the unit that makes them comparable in the distance.
_RANGES = {"rotation": (-20.0, 20.0), "shear": (-0.35, 0.35), "scale": (0.75, 1.1), "thickness": (-1.0, 2.0)}
_UNITS = {"rotation": 10.0, "shear": 0.175, "scale": 0.1, "thickness": 1.0}


@dataclass(frozen=True)
class WriterStyle:
    """One client's handwriting: degrees of rotation, horizontal shear, scale, stroke thickness (px at 32x32)."""

    rotation: float
    shear: float
    scale: float
    thickness: int


def writer_styles(n: int, seed: int) -> list[WriterStyle]:
    """`n` distinct styles, spread as far apart as farthest-point sampling allows."""
    rng = np.random.default_rng(seed + 7919)
    names = list(_RANGES)
    cand = np.stack([rng.uniform(*_RANGES[k], size=max(64, 40 * n)) for k in names], axis=1)
    cand[:, 3] = np.round(cand[:, 3])
    units = np.array([_UNITS[k] for k in names])
    z = cand / units
    chosen = [int(rng.integers(len(z)))]
    dist = np.linalg.norm(z - z[chosen[0]], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(z - z[nxt], axis=1))
    return [
        WriterStyle(rotation=float(r), shear=float(s), scale=float(c), thickness=int(t))
        for r, s, c, t in cand[chosen]
    ]


def _thicken(img: Tensor, px: int) -> Tensor:
    """Grey-level dilation (px > 0) or erosion (px < 0) with a (2|px|+1)-wide square."""
    if px == 0:
        return img
    k = 2 * abs(px) + 1
    if px > 0:
        return F.max_pool2d(img, k, stride=1, padding=abs(px))
    return -F.max_pool2d(-img, k, stride=1, padding=abs(px))


def apply_style(images: Tensor, style: WriterStyle) -> Tensor:
    """Apply a writer style to images [n, C, H, W] with ink in [0, 1] on a 0 background."""
    out = _thicken(images, style.thickness)
    theta = math.radians(style.rotation)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    shear = torch.tensor([[1.0, style.shear], [0.0, 1.0]])
    # affine_grid maps output coords to input coords, so invert the forward transform.
    forward = style.scale * rot @ shear
    inverse = torch.linalg.inv(forward)
    mat = torch.cat([inverse, torch.zeros(2, 1)], dim=1).expand(len(out), 2, 3)
    grid = F.affine_grid(mat, list(out.shape), align_corners=False)
    return F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)
