"""What the server shows to its observers each round, and the two roles an observer may play.

A `ServerObserver` only watches: it receives copies of the round's tensors, so
nothing it does can change FL. (Observers of one round share those copies, in the
order they were attached; an observer must not edit them for the next.) A
`ModelDispatcher` is the explicit power to change FL: the simulator asks it which
model to send each client (None = the shared model). The active attack is given
that power; the passive attack and the baselines are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from mganai.fl.model import Params
from mganai.fl.recipe import LocalRecipe


@dataclass(frozen=True)
class RoundObservation:
    """One FL round as the server saw it.

    `sent` and `updates` are stacked over the participating clients (leading axis
    ordered as `client_ids`): `sent[k]` is the model client `client_ids[k]` received
    and `updates[k]` = its returned model minus `sent[k]`. `recipe` is the local
    training the server asked for this round (None when the runtime did not say).
    """

    round: int
    client_ids: list[int]
    num_samples: Tensor  # [K] training samples per participating client
    global_params: Params  # the shared model M_t of this round
    sent: Params
    updates: Params
    aggregated: list[int]  # clients whose updates went into M_{t+1}
    recipe: LocalRecipe | None = None  # lr, momentum, local epochs, batch size the server sent

    def position(self, client: int) -> int | None:
        """Index of a client on the stacked axis, or None if it did not take part."""
        return self.client_ids.index(client) if client in self.client_ids else None

    def update_of(self, client: int) -> Params:
        k = self.position(client)
        if k is None:
            raise KeyError(f"client {client} did not take part in round {self.round}")
        return {n: v[k] for n, v in self.updates.items()}

    def sent_to(self, client: int) -> Params:
        k = self.position(client)
        if k is None:
            raise KeyError(f"client {client} did not take part in round {self.round}")
        return {n: v[k] for n, v in self.sent.items()}


class ServerObserver(Protocol):
    """Sees every round's individual client updates; cannot change FL."""

    def observe(self, obs: RoundObservation) -> None: ...


class ModelDispatcher(Protocol):
    """Decides which model a client receives (None: the shared model). Changes FL."""

    def model_for(self, round_: int, client: int, global_params: Params) -> Params | None: ...


def stacked_clone(params: Params) -> Params:
    return {k: v.detach().clone() for k, v in params.items()}
