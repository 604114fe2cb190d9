"""FedAvg simulation: the server loop that samples clients, trains them and aggregates.

Clients that received the shared model are averaged into the next shared model,
weighted by their sample counts. A client sent a different model (by a
`ModelDispatcher`) trains from that model and its update is not averaged: it is
relative to a different base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mganai.config import FLConfig
from mganai.data.federated import FederatedDataset
from mganai.fl.aggregate import apply_update, weighted_mean
from mganai.fl.client import ENGINES, client_generator, make_plan
from mganai.fl.model import Params, clone_params
from mganai.fl.observers import ModelDispatcher, RoundObservation, ServerObserver, stacked_clone


@dataclass
class FLResult:
    """The end of an FL run: final shared model and its accuracy after every round."""

    final_params: Params
    test_accuracy: list[float] = field(default_factory=list)
    participants: list[list[int]] = field(default_factory=list)


@torch.no_grad()
def accuracy(model: nn.Module, params: Params, x: Tensor, y: Tensor, batch: int = 2048) -> float:
    """Share of samples the model classifies correctly."""
    if len(y) == 0:
        return float("nan")
    correct = 0
    for i in range(0, len(y), batch):
        logits = functional_call(model, params, (x[i : i + batch],))
        correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    return correct / len(y)


def sample_clients(num_clients: int, fraction: float, gen: torch.Generator) -> list[int]:
    """A sorted random subset of max(1, round(fraction * N)) clients."""
    m = max(1, round(fraction * num_clients))
    if m >= num_clients:
        return list(range(num_clients))
    return sorted(torch.randperm(num_clients, generator=gen)[:m].tolist())


class FedAvgSimulator:
    """Runs FedAvg over a `FederatedDataset`, showing every round to the observers."""

    def __init__(
        self,
        model: nn.Module,
        init_params: Params,
        data: FederatedDataset,
        cfg: FLConfig,
        seed: int,
        observers: Sequence[ServerObserver] = (),
        dispatcher: ModelDispatcher | None = None,
    ):
        self.model, self.data, self.cfg, self.seed = model, data, cfg, seed
        self.params = clone_params(init_params)
        self.observers = list(observers)
        self.dispatcher = dispatcher
        self.train_step = ENGINES[cfg.engine]
        self._test = data.heldout()
        self._sampler = torch.Generator().manual_seed(seed * 7 + 3)

    def run_round(self, t: int) -> tuple[list[int], float]:
        """One round: returns the participants and the new shared model's test accuracy."""
        ids = sample_clients(self.data.num_clients, self.cfg.client_fraction, self._sampler)
        custom = {k: self.dispatcher.model_for(t, k, clone_params(self.params)) for k in ids} if self.dispatcher else {}
        sent = {n: torch.stack([(custom.get(k) or self.params)[n] for k in ids]) for n in self.params}
        clients = [self.data.clients[k] for k in ids]
        gens = [client_generator(self.seed, t, k) for k in ids]
        plan = make_plan([len(c.y_train) for c in clients], self.cfg.batch_size, self.cfg.local_epochs, gens)
        ends = self.train_step(self.model, sent, [c.x_train for c in clients], [c.y_train for c in clients], plan, self.cfg.lr, self.cfg.momentum)
        updates = {n: ends[n] - sent[n] for n in ends}
        counts = torch.tensor([len(c.y_train) for c in clients], dtype=torch.float32)
        keep = [i for i, k in enumerate(ids) if custom.get(k) is None and counts[i] > 0]
        previous = self.params
        if keep:
            pos = torch.tensor(keep)
            mean = weighted_mean({n: u[pos] for n, u in updates.items()}, counts[pos])
            self.params = apply_update(self.params, mean)
        obs = RoundObservation(
            round=t,
            client_ids=list(ids),
            num_samples=counts.clone(),
            global_params=clone_params(previous),
            sent=stacked_clone(sent),
            updates=stacked_clone(updates),
            aggregated=[ids[i] for i in keep],
        )
        for observer in self.observers:
            observer.observe(obs)
        return ids, accuracy(self.model, self.params, *self._test[:2])

    def run(self, on_round: Callable[[int, float], None] | None = None) -> FLResult:
        """All rounds; `on_round(t, accuracy)` is called after each (progress bars)."""
        result = FLResult(final_params=self.params)
        for t in range(self.cfg.rounds):
            ids, acc = self.run_round(t)
            result.participants.append(ids)
            result.test_accuracy.append(acc)
            if on_round:
                on_round(t, acc)
        result.final_params = clone_params(self.params)
        return result
