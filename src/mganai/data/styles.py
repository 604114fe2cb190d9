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
    return [
        WriterStyle(rotation=float(r), shear=float(s), scale=float(c), thickness=int(t))
        for r, s, c, t in _spread(_RANGES, _UNITS, n, seed + 7919, integer=("thickness",))
    ]


def _thicken(img: Tensor, px: int) -> Tensor:
    """Grey-level dilation (px > 0) or erosion (px < 0) with a (2|px|+1)-wide square."""
    if px == 0:
        return img
    k = 2 * abs(px) + 1
    if px > 0:
        return F.max_pool2d(img, k, stride=1, padding=abs(px))
    return -F.max_pool2d(-img, k, stride=1, padding=abs(px))


def apply_style(images: Tensor, style: WriterStyle, padding_mode: str = "zeros") -> Tensor:
    """Apply a writer style to images [n, C, H, W] with ink in [0, 1] on a 0 background.

    Photos have no empty background: pass padding_mode="reflection" so rotation does not add black corners.
    """
    out = _thicken(images, style.thickness)
    theta = math.radians(style.rotation)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    shear = torch.tensor([[1.0, style.shear], [0.0, 1.0]])
    # affine_grid maps output coords to input coords, so invert the forward transform.
    forward = style.scale * rot @ shear
    inverse = torch.linalg.inv(forward)
    mat = torch.cat([inverse, torch.zeros(2, 1)], dim=1).expand(len(out), 2, 3)
    grid = F.affine_grid(mat, list(out.shape), align_corners=False)
    return F.grid_sample(out, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False).clamp(0, 1)


# Colour styles for RGB data: one camera / one photographer per client.
_COLOUR_RANGES = {
    "brightness": (-0.15, 0.15),
    "contrast": (0.7, 1.3),
    "saturation": (0.2, 1.6),
    "red": (0.8, 1.2),
    "blue": (0.8, 1.2),
}
_COLOUR_UNITS = {"brightness": 0.1, "contrast": 0.2, "saturation": 0.4, "red": 0.1, "blue": 0.1}


@dataclass(frozen=True)
class ColourStyle:
    """One client's colour rendition: additive brightness, contrast, saturation, red and blue channel gains."""

    brightness: float
    contrast: float
    saturation: float
    red: float
    blue: float


def _spread(
    ranges: dict[str, tuple[float, float]], units: dict[str, float], n: int, seed: int, integer: tuple[str, ...] = ()
) -> np.ndarray:
    """`n` points of the box `ranges`, spread apart by farthest-point sampling in `units`;
    the attributes named in `integer` are rounded before distances are taken."""
    rng = np.random.default_rng(seed)
    names = list(ranges)
    cand = np.stack([rng.uniform(*ranges[k], size=max(64, 40 * n)) for k in names], axis=1)
    for k in integer:
        cand[:, names.index(k)] = np.round(cand[:, names.index(k)])
    z = cand / np.array([units[k] for k in names])
    chosen = [int(rng.integers(len(z)))]
    dist = np.linalg.norm(z - z[chosen[0]], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(z - z[nxt], axis=1))
    return cand[chosen]


def colour_styles(n: int, seed: int) -> list[ColourStyle]:
    """`n` distinct colour styles, spread apart like the writer styles."""
    return [ColourStyle(*map(float, row)) for row in _spread(_COLOUR_RANGES, _COLOUR_UNITS, n, seed + 104729)]


def apply_colour_style(images: Tensor, style: ColourStyle) -> Tensor:
    """Apply a colour style to RGB images [n, 3, H, W] in [0, 1]."""
    grey = 0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]
    out = grey + style.saturation * (images - grey)
    gains = torch.tensor([style.red, 1.0, style.blue], dtype=images.dtype).view(1, 3, 1, 1)
    out = (out * gains - 0.5) * style.contrast + 0.5 + style.brightness
    return out.clamp(0, 1)
