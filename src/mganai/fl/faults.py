"""Faulty clients: updates that must reach neither the average nor the attack, and clients that drop out.

A real server cannot trust what comes back: a client with a broken accelerator or
corrupt data returns NaN/inf, a buggy or hostile one returns an update far larger
than training can produce. `screen_updates` names every such update (client, round,
reason); the server leaves it out of FedAvg and out of what its observers see.
`dropouts` simulates clients that were sent the model but never answered, from its
own seeded generator, so who drops out is the same for every engine and run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from mganai.fl.model import Params


def update_norms(updates: Params) -> Tensor:
    """L2 norm of each client's whole update (stacked [K, ...] tensors -> [K]), in float64."""
    return sum(u.detach().flatten(1).double().pow(2).sum(1) for u in updates.values()).sqrt()  # type: ignore[union-attr]


def screen_updates(updates: Params, client_ids: Sequence[int], round_: int, max_norm: float) -> list[dict[str, Any]]:
    """One record {round, client, reason} per update that is non-finite or longer than `max_norm`."""
    if not client_ids:
        return []
    # on the CPU once: the loop below reads one value per client (a GPU sync each, otherwise)
    finite = torch.stack([torch.isfinite(u.detach().flatten(1)).all(1) for u in updates.values()]).all(0).cpu()
    norms = update_norms(updates).cpu()
    rejected = []
    for i, k in enumerate(client_ids):
        if not bool(finite[i]):
            reason = "non-finite values (NaN or inf)"
        elif float(norms[i]) > max_norm:
            reason = f"update norm {float(norms[i]):.4g} > fl.max_update_norm {max_norm:g}"
        else:
            continue
        rejected.append({"round": round_, "client": int(k), "reason": reason})
    return rejected


def dropout_generator(seed: int) -> torch.Generator:
    """The stream `dropouts` draws from: its own, so who is sampled is the same at any p, in every runtime."""
    return torch.Generator().manual_seed(seed * 7 + 5)


def dropouts(num_clients: int, p: float, gen: torch.Generator) -> set[int]:
    """Clients that fail to answer this round, each with probability `p`.

    One draw per client every round, even at p = 0, so the generator's stream (and
    thus who drops out in later rounds) never depends on who was sampled.
    """
    draws = torch.rand(num_clients, generator=gen)
    return {k for k in range(num_clients) if float(draws[k]) < p}
