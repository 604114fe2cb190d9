"""Splitting a pooled dataset over clients (IID or Dirichlet) and each client into train/held-out."""

from __future__ import annotations

import numpy as np


def partition_indices(labels: np.ndarray, clients: int, scheme: str, alpha: float, seed: int) -> list[np.ndarray]:
    """Indices of each client's samples.

    IID deals every class round-robin over the clients, so every client holds every
    class in equal shares. Dirichlet draws each class's client shares from Dir(alpha):
    small alpha gives skewed, non-IID clients.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if scheme == "iid":
            offset = int(rng.integers(clients))  # so the remainders do not always land on client 0
            for j, i in enumerate(idx):
                parts[(j + offset) % clients].append(int(i))
        elif scheme == "dirichlet":
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].extend(int(i) for i in chunk)
        else:
            raise ValueError(f"unknown partition scheme {scheme!r} (allowed: iid, dirichlet)")
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def holdout_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into `labels`) of the training and held-out parts, stratified by class.

    Every class with at least two samples keeps at least one sample on each side.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = round(share * len(idx))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) >= 2 else 0
        test.extend(idx[:n_test].tolist())
        train.extend(idx[n_test:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted positions of `n` samples with the classes as balanced as `labels` allows.

    Each class is shuffled and the classes are dealt in turn, so a cap keeps every
    class while it can (used to subsample large datasets to `data.max_per_client`).
    """
    rng = np.random.default_rng(seed)
    rank = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rank[idx] = rng.permutation(len(idx))
    order = np.lexsort((rng.permutation(len(labels)), rank))  # by rank within class, ties in random class order
    return np.sort(order[:n])
