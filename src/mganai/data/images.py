"""Reading image files and bringing images to one square size, shared by the folder and face loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mganai.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp")
RESOLUTIONS = (16, 28, 32, 64)


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 [H, W, 3] (grey files repeat one channel); a corrupt file is a DataError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "F"):  # 16-bit or float PGM/PNG: scale to 0..255
                a = np.asarray(im, dtype=np.float64)
                top = 65535.0 if a.max() > 255 else 255.0
                grey = np.clip(np.round(a / top * 255), 0, 255).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(
            f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def to_tensor(images: list[np.ndarray] | np.ndarray, side: int) -> Tensor:
    """uint8 images ([H, W, 3] each, any sizes) -> float [n, 3, side, side] in [0, 1].

    Non-square images are centre-cropped to a square first (keeps the subject, no distortion).
    """
    out = []
    for a in images:
        x = torch.from_numpy(np.array(a, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        out.append(resize_square(x, side))
    return torch.cat(out) if out else torch.empty(0, 3, side, side)


def resize_square(x: Tensor, side: int) -> Tensor:
    """Centre-crop [n, C, H, W] to a square and resize to side x side (area when shrinking, bilinear when growing)."""
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    x = x[..., top : top + s, left : left + s]
    if s == side:
        return x
    if s > side:
        return F.interpolate(x, size=(side, side), mode="area")
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False).clamp(0, 1)


# Largest side a folder dataset gets by default: a 64x64 audit costs several times the CPU time of
# a 32x32 one (more pixels and one more conv block), which a laptop CPU should not pay unasked.
DEFAULT_MAX_SIDE = 32


def fitting_resolution(median_side: int) -> int:
    """The smallest supported resolution at least the images' median (shorter) side, at most DEFAULT_MAX_SIDE."""
    return next((r for r in RESOLUTIONS if median_side <= r <= DEFAULT_MAX_SIDE), DEFAULT_MAX_SIDE)


def is_grey(x: Tensor) -> bool:
    """True when every image of [n, 3, H, W] has equal channels (so one channel loses nothing)."""
    return bool((x[:, 0] == x[:, 1]).all() and (x[:, 1] == x[:, 2]).all())
