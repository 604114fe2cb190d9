"""The datasets a run can name in `data.dataset`: one entry each, the one place a dataset is described.

Config validation (whose clients come from the data), `mganai.data.load_dataset`,
the command line's help and the error for an unknown name all read this registry;
adding a dataset is one entry here and its loader in `mganai.data`. Plain data and
lazily imported loaders: importing this module costs no torch (config validation
and `mganai --help` read it), and it sits outside `mganai.data` so that reading it
loads no data code (the attack's modules, which import the config, never do).

| name | clients | default resolution |
|---|---|---|
| `digits` (embedded, no download) | `data.clients`, writer styles | 16 (28 allowed) |
| `mnist`, `fashion-mnist`, `emnist` (= `emnist-letters`), `emnist-digits`, `idx:DIR` | `data.clients` (+ styles) | 16 |
| `cifar10` | `data.clients` (+ colour styles) | 32 |
| `olivetti`, `att-faces` (scikit-learn copy), `att-faces:DIR` (s1..s40/*.pgm) | `faces_per_client` people each | 32 |
| `folder:DIR` (DIR/<client>/<class>/<image>) | one per top-level folder | fits the images (16..32; 64 on request) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mganai.errors import ConfigError

if TYPE_CHECKING:
    from mganai.config import DataConfig
    from mganai.data.federated import FederatedDataset

# What may follow "NAME:" in `data.dataset`.
NO_ARGUMENT, OPTIONAL_DIR, REQUIRED_DIR = "none", "optional", "required"

Loader = Callable[["DataConfig", str, int], "FederatedDataset"]  # (settings, the DIR after "NAME:", seed)


@dataclass(frozen=True)
class Dataset:
    """One source of data."""

    name: str
    load: Loader
    default_resolution: int  # the image side when `data.resolution` is 0 (0 here: fitted to the images)
    natural_clients: bool  # clients come from the data (folders, people), not from `data.clients`
    argument: str = NO_ARGUMENT  # NO_ARGUMENT, OPTIONAL_DIR or REQUIRED_DIR
    listed_as: str | None = None  # how the help and errors spell it ("" : folded into another entry's spelling)
    help: str = ""  # a few words for `--dataset`'s help
    source: str = ""  # the corpus its images come from ("" : its own name); one source, possibly the same images

    @property
    def spelling(self) -> str:
        return self.name if self.listed_as is None else self.listed_as


def _digits(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data.digits import load_digits_federated

    res = cfg.resolution or DATASETS["digits"].default_resolution
    if res not in (16, 28):
        raise ConfigError(f"data.resolution for digits must be 16 or 28, got {res}")
    return load_digits_federated(cfg.clients, res, seed, cfg.partition, cfg.dirichlet_alpha, cfg.holdout)


def _mnist_like(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data import downloads
    from mganai.data.pooled import federate_pooled

    images, labels = downloads.mnist_like(cfg.dataset, downloads.cache_dir(cfg.cache_dir))
    names = downloads.FASHION_CLASSES if cfg.dataset == "fashion-mnist" else None
    res = cfg.resolution or DATASETS[cfg.dataset].default_resolution
    return federate_pooled(cfg.dataset, images, labels, cfg, seed, res, names)


def _emnist(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data import downloads
    from mganai.data.pooled import federate_pooled

    split = "digits" if cfg.dataset == "emnist-digits" else "letters"
    images, labels = downloads.emnist(split, downloads.cache_dir(cfg.cache_dir))
    names = [chr(ord("a") + i) for i in range(26)] if split == "letters" else None
    res = cfg.resolution or DATASETS[cfg.dataset].default_resolution
    return federate_pooled(cfg.dataset, images, labels, cfg, seed, res, names)


def _cifar10(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data import downloads
    from mganai.data.pooled import federate_pooled

    images, labels, names = downloads.cifar10(downloads.cache_dir(cfg.cache_dir))
    res = cfg.resolution or DATASETS["cifar10"].default_resolution
    return federate_pooled(cfg.dataset, images, labels, cfg, seed, res, names)


def _idx(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data.idx import load_idx_dir
    from mganai.data.pooled import federate_pooled

    images, labels = load_idx_dir(arg)
    res = cfg.resolution or DATASETS["idx"].default_resolution
    return federate_pooled(cfg.dataset, images, labels, cfg, seed, res, None)


def _faces(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data import downloads
    from mganai.data.faces import load_faces

    res = cfg.resolution or DATASETS["olivetti"].default_resolution
    return load_faces(arg, downloads.cache_dir(cfg.cache_dir), res, cfg.faces_per_client, cfg.holdout, seed)


def _folder(cfg: DataConfig, arg: str, seed: int) -> FederatedDataset:
    from mganai.data.folder import load_folder

    return load_folder(arg, cfg.resolution, seed, cfg.holdout, cfg.max_per_client)


# MNIST-like data defaults to 16: the same cost as the embedded digits, while class and writer style stay
# visible (--resolution 28 keeps every pixel). Colour photos and faces need at least 32 to stay recognisable.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("digits", _digits, 16, natural_clients=False, help="embedded default, no download"),
        # MNIST (NIST SD-1 and SD-3) and EMNIST (NIST SD-19, which holds SD-3's forms) may share writers and images.
        Dataset("mnist", _mnist_like, 16, natural_clients=False, source="nist-digits"),
        Dataset("fashion-mnist", _mnist_like, 16, natural_clients=False),
        Dataset("emnist", _emnist, 16, False, listed_as="emnist[-letters|-digits]", source="emnist-letters"),
        Dataset("emnist-letters", _emnist, 16, natural_clients=False, listed_as="", source="emnist-letters"),
        Dataset("emnist-digits", _emnist, 16, natural_clients=False, listed_as="", source="nist-digits"),
        Dataset("cifar10", _cifar10, 32, natural_clients=False),
        # The same 40 people, from scikit-learn's copy or from the original folders.
        Dataset("olivetti", _faces, 32, natural_clients=True, argument=OPTIONAL_DIR, source="att-faces"),
        Dataset(
            "att-faces", _faces, 32, True, OPTIONAL_DIR, "att-faces[:DIR]", help="s1..s40/*.pgm", source="att-faces"
        ),
        Dataset("idx", _idx, 16, False, REQUIRED_DIR, listed_as="idx:DIR", help="IDX files"),
        Dataset("folder", _folder, 0, True, REQUIRED_DIR, listed_as="folder:DIR", help="DIR/<client>/<class>/<image>"),
    )
}
ALLOWED = ", ".join(d.spelling for d in DATASETS.values() if d.spelling)


def dataset_help() -> str:
    """The `--dataset` help: every spelling, with its few words."""
    return ", ".join(f"{d.spelling} ({d.help})" if d.help else d.spelling for d in DATASETS.values() if d.spelling)


def parse(dataset: str) -> tuple[Dataset, str]:
    """The registry entry a `data.dataset` value names, and the directory after "NAME:" ("" if none)."""
    head, sep, arg = dataset.partition(":")
    entry = DATASETS.get(head)
    if entry is not None and entry.argument == REQUIRED_DIR and sep:
        if not arg:
            raise ConfigError(f"data.dataset {dataset!r} needs a directory after '{head}:'")
        return entry, arg
    if entry is not None and entry.argument == OPTIONAL_DIR:
        return entry, arg
    if entry is not None and entry.argument == NO_ARGUMENT and not sep:
        return entry, ""
    raise ConfigError(f"unknown dataset {dataset!r} (allowed: {ALLOWED})")


def shared_source(a: str, b: str) -> str | None:
    """Why two `data.dataset` values may hold the same images (one corpus, or nested directories), or None."""
    (ea, da), (eb, db) = parse(a), parse(b)
    if ea.argument == REQUIRED_DIR and eb.argument == REQUIRED_DIR:
        pa, pb = Path(da).expanduser().resolve(), Path(db).expanduser().resolve()
        if pa.is_relative_to(pb) or pb.is_relative_to(pa):
            return f"their directories overlap: {pa if len(pa.parts) >= len(pb.parts) else pb}"
        return None
    source_a, source_b = ea.source or ea.name, eb.source or eb.name
    if ea.argument != REQUIRED_DIR and source_a == source_b:
        return "both are the same dataset" if ea is eb else f"both come from the {source_a} corpus"
    return None


def has_natural_clients(dataset: str) -> bool:
    """Datasets whose clients come from the data (folders, faces), not from `data.clients`."""
    head, sep, _ = dataset.partition(":")
    entry = DATASETS.get(head)
    return entry is not None and entry.natural_clients and (sep != "" or entry.argument != REQUIRED_DIR)
