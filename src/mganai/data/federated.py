"""The container every dataset loader returns: one `ClientData` per client."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ClientData:
    """One client's private data: a training part FL uses and a held-out part for evaluation only."""

    name: str
    x_train: Tensor  # [n, C, H, W], float32 in [-1, 1]
    y_train: Tensor  # [n], int64 class ids
    x_test: Tensor
    y_test: Tensor


@dataclass
class FederatedDataset:
    """All clients of a federation, with the image shape and class names they share."""

    name: str
    clients: list[ClientData]
    num_classes: int
    class_names: list[str]

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.clients[0].x_train.shape[1:]
        return int(c), int(h), int(w)

    def client_names(self) -> list[str]:
        return [c.name for c in self.clients]

    def heldout(self) -> tuple[Tensor, Tensor, Tensor]:
        """All clients' held-out samples: images, classes and owning client ids."""
        xs = torch.cat([c.x_test for c in self.clients])
        ys = torch.cat([c.y_test for c in self.clients])
        owners = torch.cat([torch.full((len(c.y_test),), k, dtype=torch.long) for k, c in enumerate(self.clients)])
        return xs, ys, owners

    def train(self) -> tuple[Tensor, Tensor, Tensor]:
        """All clients' training samples: images, classes and owning client ids."""
        xs = torch.cat([c.x_train for c in self.clients])
        ys = torch.cat([c.y_train for c in self.clients])
        owners = torch.cat([torch.full((len(c.y_train),), k, dtype=torch.long) for k, c in enumerate(self.clients)])
        return xs, ys, owners
