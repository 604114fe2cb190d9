"""Loading the federated dataset a config names, and checking the victim against its clients."""

from __future__ import annotations

from pathlib import Path

from mganai.config import DataConfig
from mganai.data.federated import FederatedDataset
from mganai.datasets import parse
from mganai.errors import ConfigError, DataError


def load_dataset(cfg: DataConfig, seed: int) -> FederatedDataset:
    """The federated dataset a config names."""
    entry, arg = parse(cfg.dataset)
    return entry.load(cfg, arg, seed)


def natural_client_names(cfg: DataConfig) -> list[str] | None:
    """Client names of a folder: dataset, read from the folder names alone; None for other datasets."""
    entry, arg = parse(cfg.dataset)
    if entry.name != "folder":
        return None
    from mganai.data.folder import folder_clients

    return folder_clients(Path(arg))


def resolve_victim(cfg: DataConfig, victim: str) -> int:
    """`--victim` as given: an index, or (folder: datasets) a client folder name."""
    text = victim.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    names = natural_client_names(cfg)
    if names is None:
        raise ConfigError(f"attack.victim {victim!r}: a client name needs a folder: dataset; give an index")
    if text not in names:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise ConfigError(f"attack.victim {victim!r} is not a client folder of {cfg.dataset} (clients: {shown})")
    return names.index(text)


def check_victim_early(cfg: DataConfig, victim: int) -> None:
    """For folder: datasets, the victim index and withheld clients against the client folders, before any image
    is read."""
    names = natural_client_names(cfg)
    if names is not None and not 0 <= victim < len(names):
        raise ConfigError(
            f"attack.victim must be in 0..{len(names) - 1} ({cfg.dataset} has {len(names)} clients), got {victim}"
        )
    if names is not None and cfg.public_clients > len(names) - 2:
        raise ConfigError(
            f"data.public_clients must be in 1..{len(names) - 2} (clients - 2: at least two clients stay in the "
            f"federation; {cfg.dataset} has {len(names)} clients), got {cfg.public_clients}"
        )


def check_victim(data: FederatedDataset, victim: int) -> None:
    """The victim must be one of the loaded clients (folder: and faces know their count only now)."""
    if not 0 <= victim < data.num_clients:
        raise DataError(
            f"attack.victim must be in 0..{data.num_clients - 1} "
            f"({data.name} has {data.num_clients} clients), got {victim}"
        )
