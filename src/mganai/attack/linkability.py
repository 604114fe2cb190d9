"""The linkability attack on anonymised updates (Song et al., IEEE JSAC 2020), and the attack's view of a sum.

Under `shuffle` the server gets each round's updates in a random order, without
client ids. `Relinker` re-links them across rounds into *tracks*, one per
(unknown) client, and shows the attack every round with track ids in place of the
pseudonyms, so mGAN-AI runs on the tracks unchanged.

How it links: each update is reduced to its direction after removing the round's
mean update (what all clients share that round: the federation's common
direction), so what is left is what this client's data adds. Each track keeps a
prototype: a running mean (weight 1/2 on the newest) of its updates' directions.
Round t's updates are assigned to tracks by the one-to-one matching of greatest
total cosine similarity (Hungarian; `scipy.optimize.linear_sum_assignment`). Tracks
that have never been seen score 0. This is the simple feature-matching variant; the
JSAC paper compares data representatives with a learned (siamese) similarity. On the
embedded digits it re-links every update of every round at 10 and 50 clients
(docs/experiments.md), so a learned similarity had nothing left to gain there.

What the server is assumed to know (the one fact about ids it is given): **which
update is the victim's in the first round the victim takes part in** (e.g. the
victim was addressed alone once, or its first update was recognised otherwise).
Its track becomes the victim's; the other tracks are named by their first-round
pseudonyms, skipping the victim's id. Linkage is scored against the shuffler's
truth after the run (`linkage_accuracy`); the attack never sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mganai.checkpoint import Checkpointed
from mganai.fl.defenses import AGGREGATE
from mganai.fl.observers import RoundObservation, ServerObserver

PROTOTYPE_MEMORY = 0.5  # weight of a track's old prototype against its newest update


def update_directions(obs: RoundObservation) -> Tensor:
    """Each update minus the round's mean update, as a unit vector: [K, D] (float32, on the CPU)."""
    x = torch.cat([obs.updates[n].detach().flatten(1).float().cpu() for n in sorted(obs.updates)], dim=1)
    if len(x) > 1:
        x = x - x.mean(0, keepdim=True)
    return F.normalize(x, dim=1)


class Relinker(Checkpointed):
    """Observer of anonymised rounds: assigns every update to a track and shows the round, so named, to `inner`."""

    STATE = ("prototypes", "seen", "assignments")
    STRUCTURE = ("inner", "num_tracks", "victim", "victim_hint")

    def __init__(
        self,
        inner: Sequence[ServerObserver],
        num_tracks: int,
        victim: int,
        victim_hint: Callable[[int], int | None],
    ):
        """`victim_hint(round)`: the victim's pseudonym in that round, asked until the victim's track exists."""
        self.inner = list(inner)
        self.num_tracks, self.victim, self.victim_hint = num_tracks, victim, victim_hint
        self.prototypes: Tensor | None = None  # [num_tracks, D]
        self.seen: list[bool] = [False] * num_tracks
        self.assignments: dict[int, list[int]] = {}  # round -> track of each pseudonym

    def observe(self, obs: RoundObservation) -> None:
        tracks = self.link(obs)
        named = replace(
            obs,
            client_ids=tracks,
            aggregated=[tracks[j] for j in obs.aggregated],
        )
        for observer in self.inner:
            observer.observe(named)

    def link(self, obs: RoundObservation) -> list[int]:
        """The track of each update of this round (a one-to-one assignment), and the prototypes updated."""
        feats = update_directions(obs)
        k = len(feats)
        if self.prototypes is None:
            self.prototypes = torch.zeros(self.num_tracks, feats.shape[1])
        tracks: list[int | None] = [None] * k
        if not self.seen[self.victim]:
            hint = self.victim_hint(obs.round)
            if hint is not None:
                tracks[hint] = self.victim
        free_rows = [j for j in range(k) if tracks[j] is None]
        free_tracks = [t for t in range(self.num_tracks) if t not in tracks]
        unseen = [t for t in free_tracks if not self.seen[t] and t != self.victim]
        if not any(self.seen):  # the first round: tracks named by pseudonym, skipping the victim's id
            for j, t in zip(free_rows, unseen):
                tracks[j] = t
        else:
            from scipy.optimize import linear_sum_assignment

            known = torch.tensor([self.seen[t] for t in free_tracks])
            sim = feats[free_rows] @ self.prototypes[free_tracks].T * known  # never-seen tracks score 0
            rows, cols = linear_sum_assignment(sim.numpy(), maximize=True)
            for r, c in zip(rows, cols):
                tracks[free_rows[int(r)]] = free_tracks[int(c)]
        named = [int(t) for t in tracks if t is not None]
        assert len(named) == k, "more updates in a round than tracks"
        for j, t in enumerate(named):
            old = self.prototypes[t] if self.seen[t] else feats[j]
            self.prototypes[t] = F.normalize(PROTOTYPE_MEMORY * old + (1 - PROTOTYPE_MEMORY) * feats[j], dim=0)
            self.seen[t] = True
        self.assignments[obs.round] = named
        return named


def linkage_accuracy(assignments: dict[int, list[int]], truth: dict[int, list[int]], victim: int) -> dict[str, Any]:
    """How well the tracks follow the clients, scored against the shuffler's truth (which the attack never saw).

    Per round: the share of updates put on the track of their true client, a track's true
    client being the one whose update it received in the track's first round (so a wrong
    link counts as wrong in every later round it persists). `linkage_accuracy` is the mean
    over rounds; `victim_track_purity` the share of rounds in which the update on the
    victim's track really was the victim's."""
    owner: dict[int, int] = {}
    per_round: list[float] = []
    hits, rounds = 0, 0
    for t in sorted(assignments):
        tracks, true_ids = assignments[t], truth[t]
        for track, client in zip(tracks, true_ids):
            owner.setdefault(track, client)
        per_round.append(sum(owner[tr] == c for tr, c in zip(tracks, true_ids)) / max(1, len(tracks)))
        if victim in tracks:
            rounds += 1
            hits += true_ids[tracks.index(victim)] == victim
    return {
        "linkage_accuracy": sum(per_round) / len(per_round) if per_round else None,
        "linkage_accuracy_min": min(per_round) if per_round else None,
        "linkage_accuracy_per_round": per_round,
        "victim_track_purity": hits / rounds if rounds else None,
    }


class AggregateAsVictim:
    """Under secure aggregation the server sees one pseudo-client, the sum. The attack's best move with it: take
    the sum for the victim's update (it does hold the victim's data, among everyone's). Shows `inner` the round
    with `AGGREGATE` renamed to the victim."""

    def __init__(self, inner: Sequence[ServerObserver], victim: int):
        self.inner, self.victim = list(inner), victim

    def observe(self, obs: RoundObservation) -> None:
        rename = {AGGREGATE: self.victim}
        named = replace(
            obs,
            client_ids=[rename.get(k, k) for k in obs.client_ids],
            aggregated=[rename.get(k, k) for k in obs.aggregated],
        )
        for observer in self.inner:
            observer.observe(named)
