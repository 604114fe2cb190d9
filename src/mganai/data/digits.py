"""The embedded default: scikit-learn's handwritten digits, split over clients with writer styles.

No download. The 8x8 digits are upsampled to 32x32, each client's style is applied at
that size (so stroke thickness has room), and the result is resampled to the chosen
resolution and scaled to [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from mganai.data.federated import ClientData, FederatedDataset
from mganai.data.partition import holdout_split, partition_indices
from mganai.data.styles import apply_style, writer_styles
from mganai.errors import ConfigError


def _to_work_size(images: np.ndarray) -> torch.Tensor:
    """8x8 images with values 0..16 -> [n, 1, 32, 32] ink in [0, 1]."""
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    # The digits fill their 8x8 box; pad a margin so rotation and shear stay inside the frame.
    x = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    return F.pad(x, (4, 4, 4, 4))


def load_digits_federated(
    clients: int, resolution: int, seed: int, partition: str = "iid", alpha: float = 0.5, holdout: float = 0.2
) -> FederatedDataset:
    """Build the embedded user-level dataset: `clients` writers, each holding every class."""
    bunch = load_digits()
    labels = bunch.target.astype(np.int64)
    images = _to_work_size(bunch.images)
    styles = writer_styles(clients, seed)
    out = []
    for k, idx in enumerate(partition_indices(labels, clients, partition, alpha, seed)):
        if len(idx) < 2:
            raise ConfigError(
                f"data: the {partition} split left client {k} with {len(idx)} samples; "
                "use fewer clients or a larger --alpha"
            )
        styled = apply_style(images[idx], styles[k])
        x = F.interpolate(styled, size=(resolution, resolution), mode="area") * 2 - 1
        y = torch.from_numpy(labels[idx])
        tr, te = holdout_split(labels[idx], holdout, seed + 1 + k)
        out.append(ClientData(f"writer{k:02d}", x[tr].contiguous(), y[tr], x[te].contiguous(), y[te]))
    return FederatedDataset("digits", out, num_classes=10, class_names=[str(i) for i in range(10)])
