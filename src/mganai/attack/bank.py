"""The representative bank: every round, the data representatives of every participating client.

One bank serves every method that needs representatives in the same FL trace, so
the (batched) update inversion runs once per round, not once per method.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor, nn

from mganai.attack.representatives import invert_updates, labels_for, present_classes
from mganai.checkpoint import Checkpointed
from mganai.config import AttackConfig
from mganai.device import module_device
from mganai.fl.observers import RoundObservation


class RepresentativeBank(Checkpointed):
    """Observer that inverts each client's update and keeps the last `rep_pool_rounds` rounds per client."""

    STATE = ("history", "generator", "_pool")
    STRUCTURE = ("model", "image_shape", "cfg", "device")

    def __init__(
        self, model: nn.Module, image_shape: tuple[int, int, int], num_clients: int, cfg: AttackConfig, seed: int
    ):
        self.model, self.image_shape, self.cfg = model, image_shape, cfg
        self.device = module_device(model)  # where the representatives are made and kept
        self.history: list[deque[tuple[Tensor, Tensor]]] = [
            deque(maxlen=cfg.rep_pool_rounds) for _ in range(num_clients)
        ]
        self.generator = torch.Generator().manual_seed(seed * 31 + 11)
        self._pool: tuple[Tensor, Tensor, Tensor] | None = None

    def observe(self, obs: RoundObservation) -> None:
        if obs.round < self.cfg.start_round or (obs.round - self.cfg.start_round) % self.cfg.invert_every:
            return
        labels = labels_for(present_classes(obs.updates), self.cfg.reps_per_client)
        reps = invert_updates(
            self.model,
            obs.sent,
            obs.updates,
            labels,
            self.image_shape,
            self.cfg.inversion_steps,
            self.cfg.inversion_lr,
            self.cfg.tv_weight,
            self.generator,
        )
        for i, k in enumerate(obs.client_ids):
            self.history[k].append((reps[i], labels[i]))
        self._pool = None

    def client(self, k: int) -> tuple[Tensor, Tensor]:
        """All kept representatives of client k, oldest first: images [M, C, H, W] and classes [M]."""
        if not self.history[k]:
            empty = torch.empty(0, *self.image_shape, device=self.device)
            return empty, torch.empty(0, dtype=torch.long, device=self.device)
        return torch.cat([x for x, _ in self.history[k]]), torch.cat([y for _, y in self.history[k]])

    def pool(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every kept representative: images, classes and the client each came from."""
        if self._pool is None:
            xs, ys, ks = [], [], []
            for k in range(len(self.history)):
                x, y = self.client(k)
                xs.append(x)
                ys.append(y)
                ks.append(torch.full((len(y),), k, dtype=torch.long, device=self.device))
            self._pool = torch.cat(xs), torch.cat(ys), torch.cat(ks)
        return self._pool

    def __len__(self) -> int:
        return sum(len(h) for h in self.history)
