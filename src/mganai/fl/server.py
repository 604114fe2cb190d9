"""FedAvg simulation: the server loop that samples clients, trains them and aggregates.

What the server does with a round's updates (screen, defend, average, observe) is
`mganai.fl.settle.settle_round`, shared with the Flower strategy. Clients that
received the shared model are averaged into the next shared model, weighted by
their sample counts. A client sent a different model (by a `ModelDispatcher`)
trains from that model and its update is not averaged: it is relative to a
different base.

Faulty clients (`mganai.fl.faults`): a client that drops out of a round (simulated
with `fl.dropout`) returns nothing; an update with NaN/inf or a norm above
`fl.max_update_norm` is rejected. Neither enters the average nor the
`RoundObservation`, so the attack never learns from them; each rejection is logged
(client, round, reason) and kept in the `FLResult`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mganai.checkpoint import Checkpointed
from mganai.config import FLConfig
from mganai.data.federated import FederatedDataset
from mganai.fl.client import ENGINES, client_generator, make_plan
from mganai.fl.faults import dropout_generator, dropouts
from mganai.fl.model import Params, clone_params, params_device
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.recipe import local_recipe
from mganai.fl.settle import NO_DEFENSE, DefenseSteps, RoundUpdates, rejection_message, settle_round


@dataclass
class FLResult:
    """The end of an FL run: final shared model and its accuracy after every round."""

    final_params: Params
    test_accuracy: list[float] = field(default_factory=list)
    participants: list[list[int]] = field(default_factory=list)  # clients that answered, per round
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {round, client, reason} per rejected update
    dropped: list[dict[str, int]] = field(default_factory=list)  # {round, client} per client that dropped out

    def absent_rounds(self, client: int) -> list[int]:
        """Rounds in which `client` delivered no accepted update (not sampled, dropped out or rejected)."""
        bad = {(r["round"], r["client"]) for r in self.rejected}
        return [t for t, ids in enumerate(self.participants) if client not in ids or (t, client) in bad]

    def state_dict(self) -> dict[str, Any]:
        """Plain containers and tensors, for a checkpoint."""
        return {
            "final_params": self.final_params,
            "test_accuracy": list(self.test_accuracy),
            "participants": [list(p) for p in self.participants],
            "rejected": [dict(r) for r in self.rejected],
            "dropped": [dict(d) for d in self.dropped],
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> FLResult:
        return cls(**state)


def warn(message: str) -> None:
    """One line on stderr that does not break a tqdm progress bar."""
    from tqdm import tqdm

    tqdm.write(f"mganai: warning: {message}", file=sys.stderr)


@torch.no_grad()
def accuracy(model: nn.Module, params: Params, x: Tensor, y: Tensor, batch: int = 2048) -> float:
    """Share of samples the model classifies correctly (computed where `params` live)."""
    if len(y) == 0:
        return float("nan")
    device = params_device(params)
    correct = 0
    for i in range(0, len(y), batch):
        logits = functional_call(model, params, (x[i : i + batch].to(device),))
        correct += int((logits.argmax(1) == y[i : i + batch].to(device)).sum())
    return correct / len(y)


def sample_clients(num_clients: int, fraction: float, gen: torch.Generator) -> list[int]:
    """A sorted random subset of max(1, round(fraction * N)) clients."""
    m = max(1, round(fraction * num_clients))
    if m >= num_clients:
        return list(range(num_clients))
    return sorted(torch.randperm(num_clients, generator=gen)[:m].tolist())


class FedAvgSimulator(Checkpointed):
    """Runs FedAvg over a `FederatedDataset`, showing every round to the observers.

    It trains where `init_params` live (`mganai.device`): the clients' data is copied there once.
    Its checkpointed state is everything that decides the next rounds: the shared model, the
    sampling and dropout streams, and the faults so far.
    """

    STATE = ("params", "_sampler", "_dropout", "rejected", "dropped")
    STRUCTURE = (
        "model",
        "data",
        "cfg",
        "seed",
        "observers",
        "dispatcher",
        "defense",
        "train_step",
        "_train",
        "_test",
        "log",
    )

    def __init__(
        self,
        model: nn.Module,
        init_params: Params,
        data: FederatedDataset,
        cfg: FLConfig,
        seed: int,
        observers: Sequence[ServerObserver] = (),
        dispatcher: ModelDispatcher | None = None,
        defense: DefenseSteps = NO_DEFENSE,
    ):
        self.model, self.data, self.cfg, self.seed = model, data, cfg, seed
        self.params = clone_params(init_params)
        self.observers = list(observers)
        self.dispatcher = dispatcher
        self.defense = defense  # what a defense does to each round's accepted updates (`settle_round`)
        self.train_step = ENGINES[cfg.engine]
        device = params_device(self.params)
        self._train = [(c.x_train.to(device), c.y_train.to(device)) for c in data.clients]
        x_test, y_test, _ = data.heldout()
        self._test = (x_test.to(device), y_test.to(device))
        self._sampler = torch.Generator().manual_seed(seed * 7 + 3)
        self._dropout = dropout_generator(seed)
        self.rejected: list[dict[str, Any]] = []
        self.dropped: list[dict[str, int]] = []
        self.log: Callable[[str], None] = warn

    def run_round(self, t: int) -> tuple[list[int], float]:
        """One round: returns the clients that answered and the new shared model's test accuracy."""
        sampled = sample_clients(self.data.num_clients, self.cfg.client_fraction, self._sampler)
        custom = (
            {k: self.dispatcher.model_for(t, k, clone_params(self.params)) for k in sampled} if self.dispatcher else {}
        )
        gone = dropouts(self.data.num_clients, self.cfg.dropout, self._dropout)
        ids = [k for k in sampled if k not in gone]
        self.dropped += [{"round": t, "client": k} for k in sampled if k in gone]
        if not ids:  # nobody answered: the shared model stays, there is nothing to observe
            return ids, accuracy(self.model, self.params, *self._test)
        sent = {n: torch.stack([(custom.get(k) or self.params)[n] for k in ids]) for n in self.params}
        clients = [self.data.clients[k] for k in ids]
        gens = [client_generator(self.seed, t, k) for k in ids]
        recipe = local_recipe(self.cfg, t)
        sizes = [len(c.y_train) for c in clients]
        plan = make_plan(sizes, recipe.batch_size, recipe.local_epochs, gens, recipe.local_steps)
        xs, ys = [self._train[k][0] for k in ids], [self._train[k][1] for k in ids]
        ends = self.train_step(self.model, sent, xs, ys, plan, recipe.lr, recipe.momentum)
        counts = torch.tensor([len(c.y_train) for c in clients], dtype=torch.float32)
        dispatched = frozenset(k for k in ids if custom.get(k) is not None)
        updates = {n: ends[n] - sent[n] for n in ends}
        round_ = RoundUpdates(t, self.params, ids, sent, updates, counts, dispatched, recipe)
        settled = settle_round(round_, self.cfg.max_update_norm, self.defense)
        for r in settled.rejected:
            self.log(rejection_message(r))
        self.rejected += settled.rejected
        if settled.params is not None:
            self.params = settled.params
        if settled.observation is not None:
            for observer in self.observers:
                observer.observe(settled.observation)
        return ids, accuracy(self.model, self.params, *self._test)

    def run(
        self,
        on_round: Callable[[int, float], None] | None = None,
        after_round: Callable[[int, FLResult], None] | None = None,
        result: FLResult | None = None,
    ) -> FLResult:
        """The rounds not yet in `result` (all, by default); `on_round(t, accuracy)` after each (progress bars),
        then `after_round(t, result)` (checkpoints: the simulator and its observers are between rounds there)."""
        result = result or FLResult(final_params=self.params)
        result.rejected, result.dropped = self.rejected, self.dropped
        for t in range(len(result.test_accuracy), self.cfg.rounds):
            acc = self.next_round(result)
            if on_round:
                on_round(t, acc)
            if after_round:
                after_round(t, result)
        result.final_params = clone_params(self.params)
        return result

    def next_round(self, result: FLResult) -> float:
        """Run the round after the last one in `result`, record it there and return the test accuracy."""
        result.rejected, result.dropped = self.rejected, self.dropped
        ids, acc = self.run_round(len(result.test_accuracy))
        result.participants.append(ids)
        result.test_accuracy.append(acc)
        return acc
