"""Data: loaders that return a `FederatedDataset` of clients with their own private data."""

from __future__ import annotations

from mganai.config import ConfigError, DataConfig
from mganai.data.digits import load_digits_federated
from mganai.data.federated import ClientData, FederatedDataset

__all__ = ["ClientData", "FederatedDataset", "load_dataset"]


def load_dataset(cfg: DataConfig, seed: int) -> FederatedDataset:
    """The federated dataset a config names."""
    if cfg.dataset == "digits":
        if cfg.resolution not in (16, 28):
            raise ConfigError(f"data.resolution for digits must be 16 or 28, got {cfg.resolution}")
        return load_digits_federated(
            cfg.clients, cfg.resolution, seed, cfg.partition, cfg.dirichlet_alpha, cfg.holdout
        )
    raise ConfigError(f"unknown dataset {cfg.dataset!r} (allowed: digits)")
