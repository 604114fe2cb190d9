"""Image grids: panels of images side by side, one row per class.

These functions take plain image tensors (never data loaders or attack objects);
`audit.py` chooses what goes into each panel and saves the result as PNG, and the
HTML report only ever reads those PNGs.
"""

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


def class_rows(x: Tensor, y: Tensor, num_classes: int, n: int) -> list[Tensor]:
    """Per class, the first `n` images of that class in `x` (fewer if it has fewer; none if absent)."""
    return [x[y == c][:n] for c in range(num_classes)]


def _pad(row: Tensor, width: int, shape: tuple[int, ...]) -> Tensor:
    """A row of images padded with blank (white) cells to `width` cells."""
    if len(row) >= width:
        return row[:width]
    return torch.cat([row.reshape(-1, *shape), torch.ones(width - len(row), *shape)])


def panel_grid(panels: list[list[Tensor]], scale: int = 2) -> np.ndarray:
    """Panels side by side, one row per class, a white half-cell spacer between panels.

    `panels[p][c]` holds panel p's images of class c ([m, C, H, W], m may differ
    per class: missing cells stay white). Every panel needs the same number of rows.
    """
    shape = next(r.shape[1:] for panel in panels for r in panel if len(r))
    c, h, w = shape
    # A spacer cell half an image wide: the grid's 1-px lines sit inside it, so it reads as one gap.
    sep = F.pad(torch.ones(1, c, h, w // 2), (0, w - w // 2), value=1.0)
    widths = [max(1, max(len(r) for r in panel)) for panel in panels]
    rows = []
    for cls in range(len(panels[0])):
        parts: list[Tensor] = []
        for p, panel in enumerate(panels):
            if p:
                parts.append(sep)
            parts.append(_pad(panel[cls], widths[p], tuple(shape)))
        rows.append(torch.cat(parts))
    grid = tile(rows)
    return np.kron(grid, np.ones((scale, scale) + ((1,) if grid.ndim == 3 else ()), dtype=np.uint8))
