"""Datasets without natural users (MNIST family, IDX files, CIFAR-10) turned into a user-level federation.

The pooled samples are capped at `max_per_client` per client (stratified by class),
split IID or Dirichlet over `data.clients`, and with `user_styles` every client gets
its own fixed style so its data is recognisably its own: writer styles (rotation,
slant, scale, stroke thickness) for grey images, the same geometry (no thickness,
reflected borders) plus a colour style (brightness, contrast, saturation, tint) for
colour images. Styles are applied at the native size, then images are resized.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mganai.config import DataConfig
from mganai.data.federated import ClientData, FederatedDataset
from mganai.data.images import resize_square
from mganai.data.partition import holdout_split, partition_indices, stratified_subset
from mganai.data.styles import apply_colour_style, apply_style, colour_styles, writer_styles
from mganai.errors import DataError


def federate_pooled(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    cfg: DataConfig,
    seed: int,
    resolution: int,
    class_names: list[str] | None = None,
) -> FederatedDataset:
    """uint8 images [N, C, H, W] (C = 1 or 3) with labels [N] -> `cfg.clients` styled clients at `resolution`.

    Labels may be any integers; they are renumbered 0..K-1 in sorted order (EMNIST letters start at 1).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) != len(labels):
        raise DataError(
            f"{name}: expected images [N, 1 or 3, H, W] and N labels, got {images.shape} and {labels.shape}"
        )
    values, ids = np.unique(labels, return_inverse=True)
    if class_names is None or len(class_names) != len(values):
        class_names = [str(v) for v in values]
    clients = cfg.clients
    if cfg.max_per_client and len(ids) > clients * cfg.max_per_client:
        keep = stratified_subset(ids, clients * cfg.max_per_client, seed + 17)
        images, ids = images[keep], ids[keep]
    rgb = images.shape[1] == 3
    writers = writer_styles(clients, seed) if cfg.user_styles else []
    colours = colour_styles(clients, seed) if cfg.user_styles and rgb else []
    out = []
    for k, idx in enumerate(partition_indices(ids, clients, cfg.partition, cfg.dirichlet_alpha, seed)):
        if len(idx) < 2:
            raise DataError(
                f"{name}: the {cfg.partition} split left client {k} with {len(idx)} samples; "
                "use fewer clients, a larger --alpha or a larger --max-per-client"
            )
        x = torch.from_numpy(images[idx]).float() / 255.0
        if writers and rgb:
            x = apply_colour_style(
                apply_style(x, dataclasses.replace(writers[k], thickness=0), "reflection"), colours[k]
            )
        elif writers:
            x = apply_style(x, writers[k])
        x = resize_square(x, resolution) * 2 - 1
        y = torch.from_numpy(ids[idx].astype(np.int64))
        tr, te = holdout_split(ids[idx], cfg.holdout, seed + 1 + k)
        out.append(ClientData(f"client{k:02d}", x[tr].contiguous(), y[tr], x[te].contiguous(), y[te]))
    return FederatedDataset(name, out, num_classes=len(values), class_names=list(class_names))
