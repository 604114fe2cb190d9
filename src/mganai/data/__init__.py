"""Data: loaders that return a `FederatedDataset` of clients with their own private data.

`data.dataset` names the source:

| name | clients | default resolution |
|---|---|---|
| `digits` (embedded, no download) | `data.clients`, writer styles | 16 (28 allowed) |
| `mnist`, `fashion-mnist`, `emnist` (= `emnist-letters`), `emnist-digits`, `idx:DIR` | `data.clients` (+ styles) | 16 |
| `cifar10` | `data.clients` (+ colour styles) | 32 |
| `olivetti`, `att-faces` (scikit-learn copy), `att-faces:DIR` (s1..s40/*.pgm) | `faces_per_client` people each | 32 |
| `folder:DIR` (DIR/<client>/<class>/<image>) | one per top-level folder | fits the images (16..32; 64 on request) |
"""

from __future__ import annotations

from pathlib import Path

from mganai.config import ConfigError, DataConfig
from mganai.data.digits import load_digits_federated
from mganai.data.errors import DataError
from mganai.data.federated import ClientData, FederatedDataset

__all__ = [
    "ClientData",
    "DataError",
    "FederatedDataset",
    "check_victim",
    "check_victim_early",
    "load_dataset",
    "resolve_victim",
]

POOLED = ("mnist", "fashion-mnist", "emnist", "emnist-letters", "emnist-digits", "cifar10")
FACES = ("olivetti", "att-faces")
ALLOWED = (
    "digits, mnist, fashion-mnist, emnist[-letters|-digits], cifar10, olivetti, att-faces[:DIR], idx:DIR, folder:DIR"
)
# Default side per source. MNIST-like data at 16: the same cost as the embedded digits (a 10-client
# Fashion-MNIST audit at its native 28 took 3x the CPU time), while class and writer style stay visible;
# --resolution 28 keeps every pixel. Colour photos and faces need at least 32 to stay recognisable.
DEFAULT_RESOLUTION = {"digits": 16, "mnist": 16, "idx": 16, "cifar10": 32, "faces": 32}


def _kind(dataset: str) -> tuple[str, str]:
    """("digits" | "mnist" | ... | "idx" | "folder" | "faces", argument) for a dataset name."""
    head, sep, arg = dataset.partition(":")
    if head in ("idx", "folder") and sep:
        if not arg:
            raise ConfigError(f"data.dataset {dataset!r} needs a directory after '{head}:'")
        return head, arg
    if head in FACES and (sep or dataset in FACES):
        return "faces", arg
    if dataset == "digits" or dataset in POOLED:
        return dataset, ""
    raise ConfigError(f"unknown dataset {dataset!r} (allowed: {ALLOWED})")


def load_dataset(cfg: DataConfig, seed: int) -> FederatedDataset:
    """The federated dataset a config names."""
    kind, arg = _kind(cfg.dataset)
    res = cfg.resolution
    if kind == "digits":
        res = res or DEFAULT_RESOLUTION["digits"]
        if res not in (16, 28):
            raise ConfigError(f"data.resolution for digits must be 16 or 28, got {res}")
        return load_digits_federated(cfg.clients, res, seed, cfg.partition, cfg.dirichlet_alpha, cfg.holdout)
    from mganai.data import downloads

    cache = downloads.cache_dir(cfg.cache_dir)
    if kind == "folder":
        from mganai.data.folder import load_folder

        return load_folder(arg, res, seed, cfg.holdout, cfg.max_per_client)
    if kind == "faces":
        from mganai.data.faces import load_faces

        return load_faces(arg, cache, res or DEFAULT_RESOLUTION["faces"], cfg.faces_per_client, cfg.holdout, seed)
    from mganai.data.idx import load_idx_dir
    from mganai.data.pooled import federate_pooled

    names = None
    if kind == "idx":
        images, labels = load_idx_dir(arg)
        res = res or DEFAULT_RESOLUTION["idx"]
    elif kind == "cifar10":
        images, labels, names = downloads.cifar10(cache)
        res = res or DEFAULT_RESOLUTION["cifar10"]
    elif kind.startswith("emnist"):
        split = "digits" if kind == "emnist-digits" else "letters"
        images, labels = downloads.emnist(split, cache)
        if split == "letters":
            names = [chr(ord("a") + i) for i in range(26)]
        res = res or DEFAULT_RESOLUTION["mnist"]
    else:
        images, labels = downloads.mnist_like(kind, cache)
        names = downloads.FASHION_CLASSES if kind == "fashion-mnist" else None
        res = res or DEFAULT_RESOLUTION["mnist"]
    return federate_pooled(cfg.dataset, images, labels, cfg, seed, res, names)


def natural_client_names(cfg: DataConfig) -> list[str] | None:
    """Client names of a folder: dataset, read from the folder names alone; None for other datasets."""
    kind, arg = _kind(cfg.dataset)
    if kind != "folder":
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
    """For folder: datasets, the victim index against the client folders, before any image is read."""
    names = natural_client_names(cfg)
    if names is not None and not 0 <= victim < len(names):
        raise ConfigError(
            f"attack.victim must be in 0..{len(names) - 1} ({cfg.dataset} has {len(names)} clients), got {victim}"
        )


def check_victim(data: FederatedDataset, victim: int) -> None:
    """The victim must be one of the loaded clients (folder: and faces know their count only now)."""
    if not 0 <= victim < data.num_clients:
        raise DataError(
            f"attack.victim must be in 0..{data.num_clients - 1} "
            f"({data.name} has {data.num_clients} clients), got {victim}"
        )
