"""The defenses' arithmetic for `settle_round`: clipping, Gaussian noise, secure aggregation's view, a shuffler.

Each defense of `mganai.defenses` becomes a `DefenseSteps` (`defense_steps`), and
`settle_round` applies it in the same place for our simulator and for Flower's
strategy. Where a step happens is the threat model:

- `central-dp` (DP-FedAvg, McMahan et al., ICLR 2018): the server *sees every raw
  update*, then clips each to norm C, averages them with equal weights and adds
  N(0, (σC/m)²) per coordinate to the mean of m updates (σC on their sum).
- `client-dp`: each client clips its update (before the server holds it), the server
  averages with equal weights and adds the same noise.
- `local-dp`: each client clips its update and adds N(0, (σC)²) to it before sending.
- `secagg`: the average is the plain FedAvg one, but observers get only that
  average, as one pseudo-client `AGGREGATE`: no observer ever holds an individual update.
- `shuffle`: FedAvg unchanged; observers get the round's updates in a random order
  under per-round pseudonyms 0..K-1 (`shuffle_order` recomputes the truth for
  scoring; the attack never sees it).

Every random draw comes from a CPU generator seeded by (seed, round[, client]), so
a round's noise is the same for both FL engines, after a resume, and whoever else
took part.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from mganai.checkpoint import Checkpointed
from mganai.config import DefenseConfig
from mganai.fl.aggregate import weighted_mean
from mganai.fl.faults import update_norms
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import RoundObservation, stacked_clone
from mganai.fl.settle import NO_DEFENSE, AggregateNoise, DefenseSteps, Reveal, RoundUpdates, UpdateTransform

AGGREGATE = -1  # the client id of secure aggregation's one pseudo-client: the sum of everybody's updates

_CENTRAL_NOISE, _LOCAL_NOISE, _SHUFFLE = 1, 2, 3  # salts: one random stream per use


def _generator(seed: int, round_: int, salt: int, client: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + round_) * 10_007 + client) * 7 + salt)


def clip(max_norm: float) -> UpdateTransform:
    """Scale every update down to an L2 norm (over all weights) of at most `max_norm` (Flower's FlatClip)."""

    def transform(held: RoundUpdates) -> RoundUpdates:
        if not held.client_ids:
            return held
        norms = update_norms(held.updates)  # float64, [K]
        factor = (max_norm / norms.clamp_min(1e-300)).clamp(max=1.0).float()
        updates = {n: u * factor.to(u.device).view(-1, *[1] * (u.dim() - 1)) for n, u in held.updates.items()}
        return replace(held, updates=updates)

    return transform


def equal_weights(held: RoundUpdates) -> RoundUpdates:
    """Every accepted update counts the same in the average: DP's sensitivity is per client, not per sample."""
    return replace(held, num_samples=(held.num_samples > 0).float())


def local_noise(noise_multiplier: float, max_norm: float, seed: int) -> UpdateTransform:
    """Each client adds N(0, (σC)²) to every coordinate of its (clipped) update, from its own generator."""
    std = noise_multiplier * max_norm

    def transform(held: RoundUpdates) -> RoundUpdates:
        if std == 0 or not held.client_ids:
            return held
        noised = {n: u.clone() for n, u in held.updates.items()}
        for i, k in enumerate(held.client_ids):
            gen = _generator(seed, held.round, _LOCAL_NOISE, k)
            for n in sorted(noised):
                row = noised[n][i]
                row += std * torch.randn(row.shape, generator=gen).to(row.device)
        return replace(held, updates=noised)

    return transform


def central_noise(noise_multiplier: float, max_norm: float, seed: int) -> AggregateNoise:
    """N(0, (σC/m)²) per coordinate on the mean of m clipped updates (= σC on their sum; Flower's `compute_stdv`)."""

    def noise(mean: Params, held: RoundUpdates, count: int) -> Params:
        std = noise_multiplier * max_norm / count
        if std == 0:
            return mean
        gen = _generator(seed, held.round, _CENTRAL_NOISE)
        return {n: mean[n] + std * torch.randn(mean[n].shape, generator=gen).to(mean[n].device) for n in sorted(mean)}

    return noise


def aggregate_only(seen: RoundUpdates, aggregated: list[int]) -> RoundObservation:
    """Secure aggregation's view: the round's sample-weighted mean update as one pseudo-client, `AGGREGATE`.

    The mean is computed exactly as `settle_round` averages (same clients, weights and
    order), so it is bit for bit the update of the shared model. `sent` is the shared model."""
    pos = [i for i, k in enumerate(seen.client_ids) if k in set(aggregated)]
    if pos:
        index = torch.tensor(pos)
        mean = weighted_mean({n: u[index] for n, u in seen.updates.items()}, seen.num_samples[index])
        total = seen.num_samples[index].sum().reshape(1)
    else:  # nobody averaged: the server learns nothing but that
        mean = {n: torch.zeros_like(v) for n, v in seen.global_params.items()}
        total = torch.zeros(1)
    return RoundObservation(
        round=seen.round,
        client_ids=[AGGREGATE],
        num_samples=total.clone(),
        global_params=clone_params(seen.global_params),
        sent={n: v.detach().clone().unsqueeze(0) for n, v in seen.global_params.items()},
        updates={n: v.detach().clone().unsqueeze(0) for n, v in mean.items()},
        aggregated=[AGGREGATE] if pos else [],
    )


def shuffle_order(seed: int, round_: int, count: int) -> list[int]:
    """The shuffler's order in a round: position j of the observation holds held update `order[j]`."""
    return torch.randperm(count, generator=_generator(seed, round_, _SHUFFLE)).tolist()


class ShuffleLedger(Checkpointed):
    """The shuffler's truth: who stood behind each pseudonym of each round. Kept for scoring the linkability
    attack after the run; the attack never reads it, except the one fact it is assumed to know
    (`mganai.attack.linkability`)."""

    STATE = ("truth",)

    def __init__(self) -> None:
        self.truth: dict[int, list[int]] = {}  # round -> the client id behind each pseudonym 0..K-1

    def pseudonym_of(self, client: int, round_: int) -> int | None:
        ids = self.truth.get(round_, [])
        return ids.index(client) if client in ids else None


def shuffled(seed: int, ledger: ShuffleLedger | None = None) -> Reveal:
    """A shuffler's view: the round's updates in a random order, named 0..K-1 anew every round (no client ids)."""

    def reveal(seen: RoundUpdates, aggregated: list[int]) -> RoundObservation:
        order = shuffle_order(seed, seen.round, len(seen.client_ids))
        if ledger is not None:
            ledger.truth[seen.round] = [seen.client_ids[i] for i in order]
        pos = torch.tensor(order, dtype=torch.long)
        averaged = set(aggregated)
        return RoundObservation(
            round=seen.round,
            client_ids=list(range(len(order))),
            num_samples=seen.num_samples[pos].clone(),
            global_params=clone_params(seen.global_params),
            sent=stacked_clone({n: v[pos] for n, v in seen.sent.items()}),
            updates=stacked_clone({n: v[pos] for n, v in seen.updates.items()}),
            aggregated=[j for j, i in enumerate(order) if seen.client_ids[i] in averaged],
        )

    return reveal


def defense_steps(cfg: DefenseConfig, seed: int, ledger: ShuffleLedger | None = None) -> DefenseSteps:
    """What `settle_round` does for the defense `cfg.name` in our simulator."""
    sigma, c = cfg.dp_noise, cfg.dp_clip
    if cfg.name == "central-dp":  # the server looks first, then clips: clipping is a server step
        return DefenseSteps(server=(clip(c), equal_weights), noise=central_noise(sigma, c, seed))
    if cfg.name == "client-dp":
        return DefenseSteps(arrive=(clip(c),), server=(equal_weights,), noise=central_noise(sigma, c, seed))
    if cfg.name == "local-dp":
        return DefenseSteps(arrive=(clip(c), local_noise(sigma, c, seed)))
    if cfg.name == "secagg":
        return DefenseSteps(reveal=aggregate_only)
    if cfg.name == "shuffle":
        return DefenseSteps(reveal=shuffled(seed, ledger))
    return NO_DEFENSE
