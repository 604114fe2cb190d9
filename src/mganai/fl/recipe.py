"""The local training recipe the server sends each round: learning rate (on its schedule), momentum, epochs, batch
(and the cap on SGD steps, `fl.local_steps`).

Both runtimes take a round's recipe from `local_recipe`: the simulator trains with
it, the Flower strategy sends it in the round's config and the ClientApp trains
with what it was sent. The server knows it (it sent it), so it is part of what the
attack observes (`RoundObservation.recipe`): the paper's server holds "the local
training recipe it sent".

Schedules (`fl.lr_schedule`): "constant" uses `fl.lr` every round; "cosine"
decays it over the run, round t of R using

    lr * (r + (1 - r) * (1 + cos(pi * t / R)) / 2),    r = fl.lr_min_ratio,

so round 0 trains at `fl.lr` and the last rounds approach `r * fl.lr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mganai.config import FLConfig

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class LocalRecipe:
    """How every client trains locally in one round (heavy-ball SGD, momentum reset every round)."""

    lr: float
    momentum: float
    local_epochs: int
    batch_size: int
    local_steps: int = 0  # at most this many SGD steps of those epochs (0: every batch)


def round_lr(cfg: FLConfig, t: int) -> float:
    """The local learning rate of round t (0-based) of `cfg.rounds`."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    r = cfg.lr_min_ratio
    return cfg.lr * (r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * t / cfg.rounds)))


def local_recipe(cfg: FLConfig, t: int) -> LocalRecipe:
    """What the server asks every client to do in round t."""
    return LocalRecipe(round_lr(cfg, t), cfg.momentum, cfg.local_epochs, cfg.batch_size, cfg.local_steps)
