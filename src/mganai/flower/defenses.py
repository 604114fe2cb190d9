"""The defenses in the Flower path: Flower's own components, where a deployment would put them.

A Flower user audits the configuration they ship, so each defense is Flower's
implementation, with mganai's `AuditStrategy` inside (it shows the round to the
attack at the point where the server holds it):

- `central-dp`: ServerApp `DifferentialPrivacyServerSideFixedClipping(AuditStrategy)`
  (`ObservedServerSideClipping`); the attack observes the raw replies, before Flower clips them.
- `client-dp`: ServerApp `DifferentialPrivacyClientSideFixedClipping(AuditStrategy)`, ClientApp mod
  `fixedclipping_mod`; the attack observes the clipped replies.
- `local-dp`: ServerApp `AuditStrategy`, ClientApp mod `LocalDpMod`; the attack observes the
  clipped, noised replies.

The simulator computes the same steps itself (`mganai.fl.defenses`): equal weights
in the average under central and client DP (in `AuditStrategy`'s settlement, so
both runtimes average alike), and clipping as Flower's FlatClip. Flower draws its
noise from NumPy's global generator: the ServerApp seeds it with the run's seed and
each ClientApp reseeds it per (seed, round, client) (`seeded_numpy_mod`), so a
Flower run is reproducible, but its noise is not the simulator's draw.

`LocalDpMod` takes (clipping norm, sensitivity, ε, δ) and adds noise of standard
deviation sensitivity·sqrt(2 ln(1.25/δ))/ε; with sensitivity C and
ε_mod = sqrt(2 ln(1.25/δ))/σ that is σ·C, our `--dp-noise`. ε_mod is only the
mod's parameter; the ε reported is the accountant's (`mganai.fl.accounting`).
Secure aggregation runs Flower's SecAgg+ through the legacy API (`mganai.flower.secagg`);
the shuffler has no Flower component (`mganai flower-sim` refuses it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord
from flwr.clientapp.mod import LocalDpMod, fixedclipping_mod
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from mganai.config import RunConfig
from mganai.fl.defenses import equal_weights
from mganai.fl.settle import NO_DEFENSE, DefenseSteps, RoundUpdates, UpdateTransform
from mganai.flower.strategy import AuditStrategy

Mod = Callable[[Message, Context, Callable[[Message, Context], Message]], Message]


def server_steps(cfg: RunConfig) -> DefenseSteps:
    """What `AuditStrategy`'s settlement does itself; Flower's components do the rest (clipping, noise)."""
    if cfg.defense.name in ("central-dp", "client-dp"):
        return DefenseSteps(server=(equal_weights,))
    return NO_DEFENSE


class ObservedServerSideClipping(DifferentialPrivacyServerSideFixedClipping):
    """Flower's server-side clipping, with the audit shown the replies as the server received them.

    The wrapper replaces each reply's ArrayRecord by a clipped one before its inner strategy
    aggregates; the server held the raw one first, and so does the attack."""

    def __init__(self, strategy: AuditStrategy, *args: Any, **kwargs: Any):
        super().__init__(strategy, *args, **kwargs)
        self.audit = strategy

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        self.audit.raw_records = {
            r.metadata.src_node_id: next(iter(r.content.array_records.values())) for r in replies if not r.has_error()
        }
        try:
            return super().aggregate_train(server_round, replies)
        finally:
            self.audit.raw_records = None


def with_updates_of(clipped: RoundUpdates) -> UpdateTransform:
    """A server step: the updates as Flower's wrapper clipped them, for the clients still held."""

    def transform(held: RoundUpdates) -> RoundUpdates:
        return replace(held, updates=clipped.select([clipped.client_ids.index(k) for k in held.client_ids]).updates)

    return transform


def wrap_strategy(cfg: RunConfig, strategy: AuditStrategy, num_sampled: int) -> Strategy:
    """The strategy the ServerApp starts: Flower's DP wrapper around the audit's strategy, or the audit's alone."""
    np.random.seed(cfg.seed)  # Flower's server-side noise comes from NumPy's global generator
    d = cfg.defense
    if d.name == "central-dp":
        return ObservedServerSideClipping(strategy, d.dp_noise, d.dp_clip, num_sampled)
    if d.name == "client-dp":
        return DifferentialPrivacyClientSideFixedClipping(strategy, d.dp_noise, d.dp_clip, num_sampled)
    return strategy


def local_dp_epsilon(noise_multiplier: float, delta: float) -> float:
    """The ε to give `LocalDpMod` so that its noise is σ·C (sensitivity C): sqrt(2 ln(1.25/δ))/σ."""
    return math.sqrt(2 * math.log(1.25 / delta)) / noise_multiplier if noise_multiplier > 0 else math.inf


def client_mods(cfg: RunConfig, num_clients: int) -> list[Mod]:
    """The ClientApp's mods for the defense (outermost first)."""
    d = cfg.defense
    if d.name == "client-dp":
        return [fixedclipping_mod]
    if d.name == "local-dp":
        delta = d.dp_delta if d.dp_delta is not None else 1 / (10 * num_clients)
        mod = LocalDpMod(d.dp_clip, d.dp_clip, local_dp_epsilon(d.dp_noise, delta), delta)
        return [seeded_numpy_mod(cfg.seed), mod]
    return []


def seeded_numpy_mod(seed: int) -> Mod:
    """Reseed NumPy's global generator per (seed, round, client) before the inner mods draw from it."""

    def mod(msg: Message, ctxt: Context, call_next: Callable[[Message, Context], Message]) -> Message:
        config = next(iter(msg.content.config_records.values()), None)
        round_ = int(config.get("server-round", 0)) if config is not None else 0  # type: ignore[arg-type]
        client = int(ctxt.node_config.get("partition-id", 0))
        np.random.seed((seed * 1_000_003 + round_ * 10_007 + client) % 2**32)
        return call_next(msg, ctxt)

    return mod
