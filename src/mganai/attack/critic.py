"""The realism critic of the public-data threat model: is this image data of class c?

A small class-projection discriminator (Miyato & Koyama 2018) with spectral
normalisation, trained with the hinge loss on the public images (real) against the
generator's (fake), both under the attack's small random warps (`mganai.attack.augment`) so it
judges content, not the public people's style. It is the attacker's own network,
not the shared model: it learns from data the federation never saw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sn = nn.utils.parametrizations.spectral_norm


class RealismCritic(nn.Module):
    """Conv trunk (stride-2 halvings) + a linear real/fake score + a class projection."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            sn(nn.Conv2d(channels, w, 3, 1, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(w, w, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(w, 2 * w, 3, 1, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * w, 4 * w, 3, 1, 1)), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.score = sn(nn.Linear(4 * w + 1, 1))
        self.project = sn(nn.Embedding(num_classes, 4 * w))

    def forward(self, x: Tensor, classes: Tensor) -> Tensor:
        h = self.trunk(x)
        # Minibatch standard deviation (Karras et al. 2018): how much the batch's features vary, as one more
        # feature. A generator that draws one image per class gives a batch without spread, which the score sees.
        spread = h.std(0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
        scored = torch.cat([h, spread.expand(len(h), 1)], 1)
        return self.score(scored).squeeze(1) + (self.project(classes) * h).sum(1)


def critic_loss(
    critic: RealismCritic, real: Tensor, real_classes: Tensor, fake: Tensor, fake_classes: Tensor
) -> Tensor:
    """Hinge loss of the critic: real above +1, generated below -1."""
    return F.relu(1 - critic(real, real_classes)).mean() + F.relu(1 + critic(fake.detach(), fake_classes)).mean()


def generator_realism(critic: RealismCritic, fake: Tensor, classes: Tensor) -> Tensor:
    """What the generator minimises: minus the critic's score."""
    return -critic(fake, classes).mean()
