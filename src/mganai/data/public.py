"""The federation a run audits, and the public data its server holds under the `public-data` threat model.

`load_federation` reads `data.dataset` and, when asked for public data, splits off
what the server holds (`mganai.threat.PublicData`). No public image belongs to a
federated client, by construction:

- `data.public_clients = K`: the K highest-indexed clients that are not the victim
  leave the federation and their images (training and held-out) go to the server.
  Every other client keeps its index and name; the victim keeps its name, and its
  index too unless it was among the K highest (then it moves down to fill the gap:
  with 10 clients, K = 2 and victim 9, clients 7 and 8 are withheld and the victim
  is client 7 of the 8 that train).
- `data.public = SPEC`: every image of another dataset spec (all its clients,
  training and held-out), loaded with the same data settings but its own default
  resolution and a seed of its own (its writers are not styled like the
  federation's), then brought to the federation's image shape. A spec that may hold
  the federation's own images is refused with the config (`datasets.shared_source`),
  and any public image equal to a federated one is dropped here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from mganai.config import DataConfig
from mganai.data.federated import FederatedDataset
from mganai.data.images import resize_square
from mganai.data.load import check_victim, load_dataset
from mganai.data.notice import notice
from mganai.errors import ConfigError, DataError, MganaiError
from mganai.threat import FROM_CLIENTS, FROM_DATASET, PublicData

PUBLIC_SEED_OFFSET = 5003  # the public dataset's own seed: its styles and splits are not the federation's
LUMA = (0.299, 0.587, 0.114)  # RGB -> grey (ITU-R BT.601)


@dataclass(frozen=True)
class Federation:
    """The clients that train, the server's public data (None: updates-only), and the victim's index among them."""

    data: FederatedDataset
    public: PublicData | None
    victim: int


def load_federation(cfg: DataConfig, victim: int, seed: int) -> Federation:
    """The dataset `cfg` names, split into the federation and the server's public data; `victim` indexes the
    dataset's clients (all of them, before any is withheld)."""
    data = load_dataset(cfg, seed)
    check_victim(data, victim)
    if cfg.public_clients:
        return withhold_clients(data, cfg.public_clients, victim)
    if cfg.public:
        return Federation(data, public_dataset(cfg, seed, data), victim)
    return Federation(data, None, victim)


def withheld(num_clients: int, k: int, victim: int) -> list[int]:
    """The K highest-indexed clients that are not the victim, highest first."""
    return [c for c in range(num_clients - 1, -1, -1) if c != victim][:k]


def withhold_clients(data: FederatedDataset, k: int, victim: int) -> Federation:
    """`data` without K clients (`withheld`), whose every image goes to the server."""
    n = data.num_clients
    if not 1 <= k <= n - 2:
        raise ConfigError(
            f"data.public_clients must be in 1..{n - 2} (clients - 2: at least two clients stay in the federation; "
            f"{data.name} has {n} clients), got {k}"
        )
    out = set(withheld(n, k, victim))
    held = [c for i, c in enumerate(data.clients) if i in out]
    kept = [c for i, c in enumerate(data.clients) if i not in out]
    x = torch.cat([t for c in held for t in (c.x_train, c.x_test)])
    y = torch.cat([t for c in held for t in (c.y_train, c.y_test)])
    names = [c.name for c in held]
    description = (
        f"{k} client(s) of {data.name} withheld from FL ({', '.join(names)}): {len(y)} images; {n - k} clients train"
    )
    federation = FederatedDataset(data.name, kept, data.num_classes, list(data.class_names))
    position = sum(1 for i in range(victim) if i not in out)
    return Federation(federation, PublicData(x, y, description, FROM_CLIENTS, names), position)


def public_dataset(cfg: DataConfig, seed: int, federation: FederatedDataset) -> PublicData:
    """Every image of `cfg.public`, at the federation's image shape, minus any equal to a federated image."""
    spec = cfg.public
    own = dataclasses.replace(cfg, dataset=spec, resolution=0, partition="iid", public="", public_clients=0)
    try:
        source = load_dataset(own, seed + PUBLIC_SEED_OFFSET)
    except MganaiError as exc:  # a missing folder, a corrupt file: say it is the public data's
        raise type(exc)(f"data.public: {exc}") from None
    if source.num_classes != federation.num_classes:
        raise DataError(
            f"data.public {spec!r} has {source.num_classes} classes, the federation {federation.num_classes} "
            f"({federation.name}): public data must be of the federation's classes"
        )
    if source.class_names != federation.class_names:
        notice(
            f"data.public {spec!r} names its classes {_listed(source.class_names)}, the federation "
            f"{_listed(federation.class_names)}: they are matched in order"
        )
    x = torch.cat([t for c in source.clients for t in (c.x_train, c.x_test)])
    y = torch.cat([t for c in source.clients for t in (c.y_train, c.y_test)])
    x = fit_shape(x, federation.image_shape)
    keep = ~shared_images(x, federation)
    if not bool(keep.all()):
        notice(f"data.public {spec!r}: {int((~keep).sum())} image(s) equal to a federated client's left out")
    x, y = x[keep].contiguous(), y[keep]
    if len(y) == 0:
        raise DataError(f"data.public {spec!r} has no image that is not also a federated client's")
    c, h, w = federation.image_shape
    description = (
        f"{source.name}: all {len(y)} images of its {source.num_clients} clients, as {c}x{h}x{w}, "
        f"from people outside the federation"
    )
    return PublicData(x, y, description, FROM_DATASET, None)


def fit_shape(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Images [n, C, H, W] in [-1, 1] at another shape: grey -> RGB by repeating, RGB -> grey by luminance,
    the side by centre crop and resize (`resize_square`)."""
    channels, side, _ = shape
    if x.shape[1] == 1 and channels == 3:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] == 3 and channels == 1:
        x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[-2:] != (side, side):
        x = resize_square((x + 1) / 2, side) * 2 - 1
    return x.contiguous()


def image_keys(x: Tensor) -> list[bytes]:
    """One exact key per image (its float32 bytes): equal keys, equal images."""
    flat = x.detach().to("cpu", torch.float32).flatten(1).contiguous()
    return [row.numpy().tobytes() for row in flat]


def shared_images(x: Tensor, data: FederatedDataset) -> Tensor:
    """Which of `x` equal, bit for bit, an image of a federated client (training or held-out)."""
    seen = {key for c in data.clients for t in (c.x_train, c.x_test) for key in image_keys(t)}
    return torch.tensor([key in seen for key in image_keys(x)], dtype=torch.bool)


def _listed(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
