"""The AT&T face database (40 people x 10 images, also known as Olivetti faces).

The class is the person (a 40-way face recognition task), and the natural clients
are people: each client holds the images of `faces_per_client` consecutive people
(default 4 -> 10 clients, so a client's data is several faces, and the attack has
to find *which* of the 40 faces are the victim's; with 1 each client is exactly
one person and user identity equals the class). `data.clients` is not used.

Sources: `olivetti` / `att-faces` use scikit-learn's fetcher (64x64, downloaded
once into the cache when online); `att-faces:DIR` reads a local copy of the
original `s1..s40/*.pgm` folders (92x112, centre-cropped to square).
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from mganai.data.federated import ClientData, FederatedDataset
from mganai.data.images import IMAGE_SUFFIXES, read_image, resize_square, to_tensor
from mganai.data.partition import holdout_split
from mganai.errors import DataError


def _natural_key(name: str) -> list[object]:
    """s2 before s10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def olivetti_images(cache: Path) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """scikit-learn's copy of the faces: float [400, 1, 64, 64] in [0, 1], person ids, person names."""
    from sklearn.datasets import fetch_olivetti_faces

    try:  # scikit-learn prints progress and retry warnings; the user gets one line from us instead
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stderr(io.StringIO()),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            bunch = fetch_olivetti_faces(data_home=str(cache), shuffle=False, download_if_missing=True)
    except Exception as exc:  # noqa: BLE001 - urllib, OSError, HTTP errors: all mean "could not get it"
        raise DataError(
            f"olivetti: could not download the AT&T faces into {cache} ({type(exc).__name__}: {exc}); "
            "when offline, use a local copy of the original s1..s40 folders with --dataset att-faces:DIR"
        ) from None
    x = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)).unsqueeze(1)
    people = np.asarray(bunch.target, dtype=np.int64)
    return x, people, [f"s{i + 1}" for i in range(int(people.max()) + 1)]


def att_folder_images(root: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The original layout: one folder per person (s1..s40) of PGM images."""
    if not root.is_dir():
        raise DataError(f"att-faces folder not found: {root} (expected {root}/s1..s40/*.pgm)")
    people = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: _natural_key(p.name)
    )
    images, ids = [], []
    for i, pdir in enumerate(people):
        files = sorted(
            (f for f in pdir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=lambda f: _natural_key(f.name)
        )
        if not files:
            raise DataError(f"person folder {pdir} has no images")
        images += [read_image(f) for f in files]
        ids += [i] * len(files)
    if len(people) < 2:
        raise DataError(f"att-faces folder {root} has {len(people)} person folder(s); need at least 2 (s1..s40)")
    return images, np.asarray(ids, dtype=np.int64), [p.name for p in people]


def federate_faces(
    name: str, x: torch.Tensor, people: np.ndarray, names: list[str], per_client: int, holdout: float, seed: int
) -> FederatedDataset:
    """Group people into clients (`per_client` consecutive people each); x is float [n, 1, H, W] in [0, 1]."""
    n_people = len(names)
    groups = [list(range(s, min(s + per_client, n_people))) for s in range(0, n_people, per_client)]
    if len(groups) < 2:
        raise DataError(
            f"{name}: {n_people} people at {per_client} per client make {len(groups)} client; need at least 2"
        )
    clients = []
    for k, group in enumerate(groups):
        idx = np.flatnonzero(np.isin(people, group))
        tr, te = holdout_split(people[idx], holdout, seed + 1 + k)
        xs, ys = x[idx] * 2 - 1, torch.from_numpy(people[idx])
        cname = names[group[0]] if len(group) == 1 else f"{names[group[0]]}-{names[group[-1]]}"
        clients.append(ClientData(cname, xs[tr].contiguous(), ys[tr], xs[te].contiguous(), ys[te]))
    return FederatedDataset(name, clients, num_classes=n_people, class_names=list(names))


def load_faces(
    source: str, cache: Path, resolution: int, per_client: int, holdout: float, seed: int
) -> FederatedDataset:
    """`source` is "" for scikit-learn's copy, or the path of the original folders."""
    if source:
        images, people, names = att_folder_images(Path(source))
        x = to_tensor(images, resolution)[:, :1]  # the database is grey
        return federate_faces(f"att-faces:{source}", x, people, names, per_client, holdout, seed)
    x, people, names = olivetti_images(cache)
    return federate_faces("olivetti", resize_square(x, resolution), people, names, per_client, holdout, seed)
