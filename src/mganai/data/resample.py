"""A federation of any size from a small one: for benchmarks at 100 or 1,000 clients.

The embedded digits hold enough samples for about ten writers. To time FL at
larger scale on the same kind of data, client k of the larger federation holds a
resample (with replacement, same size) of base client k mod B's training data, so
every client keeps one writer's style and the per-client work stays that of the
base run. Held-out data stays with the first B clients only: the shared model is
scored on the same test set at every size.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from mganai.config import RunConfig
from mganai.data import load_dataset
from mganai.data.federated import ClientData, FederatedDataset


def resampled_federation(base: FederatedDataset, clients: int, seed: int) -> FederatedDataset:
    """`clients` clients, client k a same-size bootstrap resample of base client k mod B."""
    if clients < 1:
        raise ValueError(f"clients must be at least 1, got {clients}")
    gen = torch.Generator().manual_seed(seed)
    out = []
    for k in range(clients):
        src = base.clients[k % base.num_clients]
        n = len(src.y_train)
        pick = torch.randint(n, (n,), generator=gen)
        x_test, y_test = (src.x_test, src.y_test) if k < base.num_clients else (src.x_test[:0], src.y_test[:0])
        name = f"{src.name}-r{k // base.num_clients}" if k >= base.num_clients else src.name
        out.append(ClientData(name, src.x_train[pick].contiguous(), src.y_train[pick], x_test, y_test))
    return FederatedDataset(f"{base.name}x{clients}", out, base.num_classes, list(base.class_names))


_GROWN: dict[str, FederatedDataset] = {}


def grown_dataset(cfg: RunConfig, clients: int) -> FederatedDataset:
    """The run's dataset grown to `clients` clients by `resampled_federation`, built once per process.

    A picklable loader for Flower's ClientApps (`make_client_app(cfg, dataset=...)`):
    each Ray worker builds it on its first message and reuses it after.
    """
    key = json.dumps([asdict(cfg.data), cfg.seed, clients], sort_keys=True)
    if key not in _GROWN:
        _GROWN[key] = resampled_federation(load_dataset(cfg.data, cfg.seed), clients, cfg.seed)
    return _GROWN[key]
