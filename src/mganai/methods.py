"""The attack methods an audit can run: one entry each, the one place a method is described.

Config validation, the command line's help, the audit's plan (which FL trace runs
which method, whether it needs the representative bank), the report's notes and
`bench/gan_replay.py` all read this registry. Adding a method is one entry here
and its code in `mganai.attack`.

Plain data and lazily imported builders: importing this module costs no torch, so
`mganai --help` and config validation stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Tensor

    from mganai.attack.bank import RepresentativeBank
    from mganai.attack.prior import PublicPrior
    from mganai.config import AttackConfig
    from mganai.fl.model import SharedCNN
    from mganai.threat import PublicData


class Sampler(Protocol):
    """What every method is asked for in the end: images 'as the victim, class c'.

    `client` asks for the images as another client instead (default: the victim): a method that draws a
    client's data uses it, one that knows only classes ignores it. The judge compares the two answers
    (`eval.metrics.identity_as_others`)."""

    def generate(self, classes: Tensor, seed: int, client: int | None = None) -> Tensor: ...


@dataclass(frozen=True)
class AttackParts:
    """What a method is built from: the trace's shared architecture and bank, the task's sizes, and what the
    server holds besides its observations (`public`: None under the updates-only threat model)."""

    model: SharedCNN
    bank: RepresentativeBank | None
    num_classes: int
    num_clients: int
    image_shape: tuple[int, int, int]
    cfg: AttackConfig
    seed: int
    public: PublicData | None = None


@dataclass(frozen=True)
class Method:
    """One attack method."""

    name: str
    note: str  # one line, shown beside the method's grid in the report
    needs_representatives: bool  # reads the representative bank (update inversion runs in its trace)
    changes_fl: bool  # active: the server changes what the victim receives, so it gets an FL trace of its own
    build: Callable[[AttackParts], Sampler]
    recipe: str | None = None  # its GAN recipe (`mganai.attack.gan.RECIPES`); None for a method without a GAN
    class_level: bool = False  # the class-level baseline the user-level numbers are read against


def _gan(recipe: str) -> Callable[[AttackParts], Sampler]:
    def build(p: AttackParts) -> Sampler:
        from mganai.attack.gan import RECIPES, GanAttack

        prior = public_prior(p)
        return GanAttack(
            RECIPES[recipe],
            *(p.model, p.bank, p.num_classes, p.num_clients, p.cfg.victim, p.image_shape, p.cfg, p.seed, prior),
        )

    return build


def public_prior(p: AttackParts) -> PublicPrior | None:
    """Under the public-data threat model, the prior every GAN method starts from (one per audit); else None."""
    if p.public is None:
        return None
    from mganai.attack.prior import shared_prior
    from mganai.device import module_device

    x, y = p.public.x, p.public.y
    return shared_prior(x, y, p.num_classes, p.num_clients, p.cfg, p.seed, module_device(p.model))


def _replay(p: AttackParts) -> Sampler:
    from mganai.attack.replay import RepresentativeReplay

    if p.bank is None:
        raise ValueError("the representatives method needs a representative bank")
    return RepresentativeReplay(p.bank, p.cfg.victim, p.image_shape)


# In the order metrics.json, the report and the default `attack.methods` list them.
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "mganai-passive",
            "mGAN-AI, passive: the server only watches; FL is unchanged",
            needs_representatives=True,
            changes_fl=False,
            build=_gan("mganai"),
            recipe="mganai",
        ),
        Method(
            "mganai-active",
            "mGAN-AI, active: the server also isolates the victim (changes FL)",
            needs_representatives=True,
            changes_fl=True,
            build=_gan("mganai"),
            recipe="mganai",
        ),
        Method(
            "class-gan",
            "class-level GAN (Hitaj-style): 'class c' only, no identity",
            needs_representatives=False,
            changes_fl=False,
            build=_gan("class-gan"),
            recipe="class-gan",
            class_level=True,
        ),
        Method(
            "no-identity",
            "mGAN-AI without the identity term (ablation)",
            needs_representatives=True,
            changes_fl=False,
            build=_gan("no-identity"),
            recipe="no-identity",
        ),
        Method(
            "representatives",
            "update-inversion images alone, no GAN",
            needs_representatives=True,
            changes_fl=False,
            build=_replay,
        ),
    )
}
ALL_METHODS = tuple(METHODS)
NONE = "none"  # `attack.methods = ["none"]`: FL only


def active_methods(names: list[str]) -> list[str]:
    """The methods among `names` that change FL (each needs an FL trace where the server isolates the victim)."""
    return [n for n in names if METHODS[n].changes_fl]


def passive_methods(names: list[str]) -> list[str]:
    """The methods among `names` that only watch FL (they share one unchanged FL trace)."""
    return [n for n in names if not METHODS[n].changes_fl]
