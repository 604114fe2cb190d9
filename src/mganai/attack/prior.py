"""The public-data prior: a generator and a realism critic that know what the data looks like.

Under the `public-data` threat model the server holds images of the same kind from
people outside the federation (GGL, Li et al. CVPR 2022; GIAS, Jeon et al. NeurIPS
2021). Before the attack, the generator learns to draw them as the decoder of a
class-conditional VAE (drawing as a "generic" client id, one past the federation's),
then a realism critic (`mganai.attack.critic`) learns the public images against the
decoder's samples. Every GAN method of the audit then starts
from that generator, its client embeddings set to the generic one, and keeps the
critic judging its samples against the public images, so its samples stay data-like
while the update-matching term moves them to a client's style.

The pretraining runs once per process for a given public set and settings
(`shared_prior`: every method and both FL traces of an audit, and every point of a
sweep, start from the same one) and is deterministic for a seed.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mganai.attack.augment import random_affine
from mganai.attack.critic import RealismCritic, critic_loss
from mganai.attack.generator import ConditionalGenerator
from mganai.config import AttackConfig
from mganai.fl.model import seeded

BETAS = (0.5, 0.999)  # DCGAN's Adam momentum for the critic (one critic step per generator step in the attack)
VAE_BETA = 1.0  # weight of the VAE's KL term (a standard VAE)
CRITIC_WARMUP = 0.15  # critic-only steps after the VAE, as a share of its steps (300 at the default 2000)
_SHARED: dict[tuple[Any, ...], PublicPrior] = {}  # the last prior built (one entry: a sweep reuses it)


def critic_optimizer(critic: RealismCritic) -> torch.optim.Adam:
    """The critic's Adam, with DCGAN's momentum (`BETAS`)."""
    return torch.optim.Adam(critic.parameters(), lr=2e-4, betas=BETAS)


@dataclass
class PublicPrior:
    """Public images and labels on the attack's device, and the generator/critic pretrained on them (lazily, once)."""

    images: Tensor  # [M, C, H, W] in [-1, 1], the federation's shape
    labels: Tensor  # [M]
    num_classes: int
    num_clients: int  # the federation's: the generator's generic id is this index
    cfg: AttackConfig
    seed: int
    seconds: float = 0.0  # pretraining time, for metrics.json
    source: tuple[Tensor, Tensor] | None = field(default=None, repr=False)  # the tensors `shared_prior` was given
    _state: dict[str, Any] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def new_generator(self) -> ConditionalGenerator:
        a = self.cfg
        c, h, w = (int(v) for v in self.images.shape[1:])
        return seeded(
            lambda: ConditionalGenerator(
                a.noise_dim, self.num_classes, self.num_clients + 1, (c, h, w), smooth=a.smooth_output
            ),
            self.seed + 101,
        ).to(self.images.device)

    def new_critic(self) -> RealismCritic:
        return seeded(lambda: RealismCritic(self.images.shape[1], self.num_classes), self.seed + 303).to(
            self.images.device
        )

    def pretrain(self) -> float:
        """Pretrain once (later calls return at once); the seconds the pretraining took."""
        with self._lock:
            if self._state is None:
                start = time.perf_counter()
                self._state = self._pretrain()
                self.seconds = time.perf_counter() - start
        return self.seconds

    def pretrained(self) -> tuple[ConditionalGenerator, RealismCritic]:
        """Fresh copies of the pretrained generator and critic (pretraining first if need be)."""
        self.pretrain()
        assert self._state is not None
        g, c = self.new_generator(), self.new_critic()
        g.load_state_dict(copy.deepcopy(self._state["G"]))
        c.load_state_dict(copy.deepcopy(self._state["critic"]))
        with torch.no_grad():  # every client starts where the generic one is
            g.client_emb.weight[: self.num_clients] = g.client_emb.weight[self.num_clients]  # type: ignore[union-attr]
        return g, c

    def sample(self, n: int, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        pick = torch.randint(len(self.labels), (n,), generator=rng)
        return self.images[pick.to(self.images.device)], self.labels[pick.to(self.labels.device)]

    def _pretrain(self) -> dict[str, Any]:
        """A conditional VAE on the public images (the generator is its decoder), then the critic's warm-up.

        A VAE learns to draw the data in a few hundred steps where a GAN from scratch collapses or draws
        fragments (docs/experiments.md, stop 28); the critic then learns public images against the decoder's
        (blurry) samples, so that in the attack it sharpens them and keeps them data-like.
        """
        a, device = self.cfg, self.images.device
        g, critic = self.new_generator(), self.new_critic()
        shape = self.images.shape[1:]
        encoder = seeded(lambda: PosteriorEncoder(shape, self.num_classes, a.noise_dim), self.seed + 404).to(device)
        opt = torch.optim.Adam([*g.parameters(), *encoder.parameters()], lr=1e-3)
        rng = torch.Generator().manual_seed(self.seed * 977 + 13)
        n = a.gan_batch
        generic = torch.full((n,), self.num_clients, dtype=torch.long, device=device)

        def warp(x: Tensor) -> Tensor:
            return random_affine(x, rng, a.jitter, a.augment_rotate, a.augment_scale)

        for _ in range(a.prior_pretrain_steps):
            real, real_y = self.sample(n, rng)
            x = warp(real)
            mu, log_var = encoder(x, real_y)
            z = mu + torch.randn(mu.shape, generator=rng).to(device) * (0.5 * log_var).exp()
            recon = (g(z, real_y, generic) - x).pow(2).sum((1, 2, 3)).mean()
            kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            (recon + VAE_BETA * kl).backward()
            opt.step()
        opt_c = critic_optimizer(critic)
        for _ in range(int(CRITIC_WARMUP * a.prior_pretrain_steps)):
            real, real_y = self.sample(n, rng)
            z = torch.randn(n, a.noise_dim, generator=rng).to(device)
            c = torch.randint(self.num_classes, (n,), generator=rng).to(device)
            with torch.no_grad():
                fake = warp(g(z, c, generic))
            loss_c = critic_loss(critic, warp(real), real_y, fake, c)
            opt_c.zero_grad(set_to_none=True)
            loss_c.backward()
            opt_c.step()
        return {"G": g.state_dict(), "critic": critic.state_dict()}


class PosteriorEncoder(torch.nn.Module):
    """The VAE's encoder: image and class -> mean and log-variance of the generator's noise."""

    def __init__(self, shape: torch.Size, num_classes: int, noise_dim: int, width: int = 32):
        super().__init__()
        c, h, w = (int(v) for v in shape)
        self.trunk = torch.nn.Sequential(
            torch.nn.Conv2d(c, width, 4, 2, 1), torch.nn.LeakyReLU(0.2),
            torch.nn.Conv2d(width, 2 * width, 4, 2, 1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
        )  # fmt: skip
        self.out = torch.nn.Linear(2 * width * (h // 4) * (w // 4), 2 * noise_dim)
        self.classes = torch.nn.Embedding(num_classes, 2 * noise_dim)

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = (self.out(self.trunk(x)) + self.classes(y)).chunk(2, 1)
        return mu, log_var


def _pretraining_key(cfg: AttackConfig) -> tuple[Any, ...]:
    """The settings the pretraining depends on (not the victim, the methods or the attack's later weights)."""
    keys: tuple[str, ...] = ("noise_dim", "smooth_output", "prior_pretrain_steps", "gan_batch", "jitter")
    keys += ("augment_rotate", "augment_scale")
    return tuple(getattr(cfg, k) for k in keys)


def shared_prior(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    num_clients: int,
    cfg: AttackConfig,
    seed: int,
    device: torch.device,
) -> PublicPrior:
    """The prior for these public images and settings, built once and shared (pretrained on first use)."""
    key = (id(images), id(labels), num_classes, num_clients, _pretraining_key(cfg), seed, str(device))
    prior = _SHARED.get(key)
    if prior is None:
        _SHARED.clear()
        prior = PublicPrior(images.to(device), labels.to(device), num_classes, num_clients, cfg, seed)
        prior.source = (images, labels)  # keeps the ids in the key from being reused by other tensors
        _SHARED[key] = prior
    return prior
