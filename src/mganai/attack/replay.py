"""The 'representatives' method: the update-inversion images themselves, no GAN."""

from __future__ import annotations

import torch
from torch import Tensor

from mganai.attack.bank import RepresentativeBank


class RepresentativeReplay:
    """Serves the victim's (or a requested client's) most recent representatives of each requested class."""

    def __init__(self, bank: RepresentativeBank, victim: int, image_shape: tuple[int, int, int]):
        self.bank, self.victim, self.image_shape = bank, victim, image_shape

    def generate(self, classes: Tensor, seed: int, client: int | None = None) -> Tensor:
        x, y = (t.cpu() for t in self.bank.client(self.victim if client is None else client))
        out = torch.zeros(len(classes), *self.image_shape)
        for c in classes.unique():
            want = (classes == c).nonzero().flatten()
            have = (y == c).nonzero().flatten().flip(0)  # newest first
            if len(have):
                out[want] = x[have[torch.arange(len(want)) % len(have)]]
        return out
