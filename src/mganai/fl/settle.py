"""What the server does with one round's updates, once, for every runtime (our simulator, Flower).

`settle_round` takes what came back in a round and returns the next shared model,
the `RoundObservation` the server's observers see, and the rejected updates:

    screen (faulty updates out) -> arrive (what clients/shufflers do) -> [observe here]
        -> server (what the server does with what it saw) -> aggregate (FedAvg) -> noise

It is a pure function of its inputs: `FedAvgSimulator.run_round` and Flower's
`AuditStrategy.aggregate_train` both call it, so the two runtimes compute the same
round by construction, bit for bit.

Defenses plug in as `DefenseSteps` (built by `mganai.fl.defenses`): transforms
from the accepted updates to what the server then holds. `arrive` transforms act
before the server holds the updates (a client's clipping and local noise), so the
observation shows their result; `server` transforms act after the server has seen
them (central DP's clipping, DP's equal weights), so the observation does not;
`noise` is added to the averaged update; `reveal` decides what the observers get of
what the server held (secure aggregation: only the aggregate; a shuffler: updates
without ids). An attack therefore never sees more than a defended server does, and
a server that clips only after looking (central DP) is shown looking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from mganai.fl.aggregate import apply_update, weighted_mean
from mganai.fl.faults import screen_updates
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import RoundObservation, stacked_clone
from mganai.fl.recipe import LocalRecipe


@dataclass(frozen=True)
class RoundUpdates:
    """One round's replies as the server holds them, stacked over the clients in ascending id."""

    round: int
    global_params: Params  # the shared model M_t of this round
    client_ids: list[int]
    sent: Params  # [K, ...]: the model each client received
    updates: Params  # [K, ...]: its returned model minus what it received
    num_samples: Tensor  # [K] float32: each client's training samples, the FedAvg weights
    dispatched: frozenset[int] = frozenset()  # clients sent another model than M_t: their updates are not averaged
    recipe: LocalRecipe | None = None  # the local training the server asked for (it reaches the observation)

    def select(self, positions: Sequence[int]) -> RoundUpdates:
        """Only the clients at these positions of the stacked axis."""
        pos = torch.tensor(list(positions), dtype=torch.long)
        return replace(
            self,
            client_ids=[self.client_ids[i] for i in positions],
            sent={n: v[pos] for n, v in self.sent.items()},
            updates={n: v[pos] for n, v in self.updates.items()},
            num_samples=self.num_samples[pos],
        )


# A defense step: the accepted updates of a round -> what the server holds instead (same clients, same order).
UpdateTransform = Callable[[RoundUpdates], RoundUpdates]
# Noise on the averaged update: (mean update, the round as aggregated, how many updates were averaged) -> noised mean.
AggregateNoise = Callable[[Params, RoundUpdates, int], Params]
# What the observers get: (the round as the server saw it, the clients averaged) -> the observation.
Reveal = Callable[[RoundUpdates, list[int]], RoundObservation]


@dataclass(frozen=True)
class DefenseSteps:
    """Where a defense acts on a round (`settle_round`); the default does nothing."""

    arrive: tuple[UpdateTransform, ...] = ()  # before the server holds the updates: the observation shows them
    server: tuple[UpdateTransform, ...] = ()  # after the server has seen them, before averaging
    noise: AggregateNoise | None = None  # added to the averaged update
    reveal: Reveal | None = None  # what observers get (None: every update the server saw, with its client id)


NO_DEFENSE = DefenseSteps()


@dataclass(frozen=True)
class Settlement:
    """The outcome of a round on the server."""

    params: Params | None  # the next shared model M_{t+1}; None when no update was averaged (M_t stays)
    observation: RoundObservation | None  # what the observers see; None when no update was accepted
    rejected: list[dict[str, Any]]  # {round, client, reason} per update screened out
    aggregated: list[int]  # clients whose updates went into M_{t+1}


def settle_round(round_: RoundUpdates, max_update_norm: float, defense: DefenseSteps = NO_DEFENSE) -> Settlement:
    """Screen the round's updates, apply the defense, average the accepted ones, and say what the server saw."""
    rejected = screen_updates(round_.updates, round_.client_ids, round_.round, max_update_norm)
    bad = {r["client"] for r in rejected}
    held = round_.select([i for i, k in enumerate(round_.client_ids) if k not in bad]) if bad else round_
    for transform in defense.arrive:
        held = transform(held)
    seen = held
    for transform in defense.server:
        held = transform(held)
    keep = [i for i, k in enumerate(held.client_ids) if k not in held.dispatched and held.num_samples[i] > 0]
    params = None
    if keep:
        pos = torch.tensor(keep)
        mean = weighted_mean({n: u[pos] for n, u in held.updates.items()}, held.num_samples[pos])
        if defense.noise is not None:
            mean = defense.noise(mean, held, len(keep))
        params = apply_update(held.global_params, mean)
    aggregated = [held.client_ids[i] for i in keep]
    obs = None
    if seen.client_ids:
        obs = defense.reveal(seen, aggregated) if defense.reveal is not None else observation(seen, aggregated)
    return Settlement(params, obs, rejected, aggregated)


def observation(held: RoundUpdates, aggregated: list[int]) -> RoundObservation:
    """What the observers get: copies of everything the server holds, so nothing they do can change FL."""
    return RoundObservation(
        round=held.round,
        client_ids=list(held.client_ids),
        num_samples=held.num_samples.clone(),
        global_params=clone_params(held.global_params),
        sent=stacked_clone(held.sent),
        updates=stacked_clone(held.updates),
        aggregated=aggregated,
        recipe=held.recipe,
    )


def rejection_message(rejection: dict[str, Any]) -> str:
    """The warning line for one screened-out update."""
    return f"round {rejection['round']}: rejected the update of client {rejection['client']}: {rejection['reason']}"
