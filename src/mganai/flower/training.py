"""One client's local training in the Flower path: the simulator's own code, with the recipe the server sent.

Shared by the Message-API ClientApp (`mganai.flower.app.train_reply`) and the
legacy ClientApp that secure aggregation needs (`mganai.flower.secagg`), so both
train a client exactly as `mganai run --engine loop` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.device import resolve_device, set_determinism
from mganai.fl.client import client_generator, make_plan, train_loop
from mganai.fl.model import Params, SharedCNN
from mganai.fl.recipe import LocalRecipe, local_recipe

DatasetFn = Callable[[RunConfig], FederatedDataset]
N = TypeVar("N", int, float)

# `LocalRecipe` field -> key in a training round's config
RECIPE_KEYS = {
    "lr": "lr",
    "momentum": "momentum",
    "local_epochs": "local-epochs",
    "batch_size": "batch-size",
    "local_steps": "local-steps",
}


def number(value: object, kind: type[N]) -> N:
    """A number from a Flower record (whose values may also be lists, strings or bytes)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number in a Flower record, got {value!r}")
    return kind(value)


def recipe_from_config(config: Mapping[str, Any]) -> LocalRecipe | None:
    """The local training recipe a round's config carries (`RECIPE_KEYS`), or None when the server sent none."""
    if not all(key in config for key in RECIPE_KEYS.values()):
        return None
    v = {field: config[key] for field, key in RECIPE_KEYS.items()}
    return LocalRecipe(
        number(v["lr"], float),
        number(v["momentum"], float),
        number(v["local_epochs"], int),
        number(v["batch_size"], int),
        number(v["local_steps"], int),
    )


def train_client(
    cfg: RunConfig, client: int, start: Params, config: Mapping[str, Any], dataset: DatasetFn
) -> tuple[Params, int]:
    """Client `client`'s round from the model `start` it was sent: its trained model and its sample count.

    `config` is the round's config as sent (`server-round`, and the recipe unless the server sent none, in which
    case the client trains with the one our settings give for the round). `start` must be on the client's device.
    """
    data = dataset(cfg)
    if not 0 <= client < data.num_clients:
        raise ValueError(
            f"partition-id {client} is outside 0..{data.num_clients - 1} (data.clients={data.num_clients})"
        )
    device = next(iter(start.values())).device
    own = data.clients[client]
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1]).to(device)
    t = number(config["server-round"], int) - 1
    recipe = recipe_from_config(config) or local_recipe(cfg.fl, t)
    gen = client_generator(cfg.seed, t, client)
    plan = make_plan([len(own.y_train)], recipe.batch_size, recipe.local_epochs, [gen], recipe.local_steps)
    stacked = {n: v.unsqueeze(0) for n, v in start.items()}
    x, y = own.x_train.to(device), own.y_train.to(device)
    ends = train_loop(model, stacked, [x], [y], plan, recipe.lr, recipe.momentum)
    return {n: v[0] for n, v in ends.items()}, len(own.y_train)


def client_device(cfg: RunConfig) -> torch.device:
    """The client's own machine: its GPU when it has one (one the server's --device names may not exist here, and
    Ray shows a simulated client only the GPU share it was given), unless told to use the CPU."""
    device = resolve_device("cpu" if cfg.device == "cpu" else "auto")
    set_determinism(device)
    return device
