"""From parsed flags to a validated RunConfig: defaults < resumed settings < --config file < flags."""

from __future__ import annotations

import argparse
from typing import Any

from mganai.config import build_config, load_toml
from mganai.datasets import has_natural_clients

# flag dest -> dotted config key
FLAG_KEYS = {
    "dataset": "data.dataset",
    "clients": "data.clients",
    "partition": "data.partition",
    "alpha": "data.dirichlet_alpha",
    "resolution": "data.resolution",
    "user_styles": "data.user_styles",
    "max_per_client": "data.max_per_client",
    "faces_per_client": "data.faces_per_client",
    "cache_dir": "data.cache_dir",
    "public": "data.public",
    "public_clients": "data.public_clients",
    "methods": "attack.methods",
    "rounds": "fl.rounds",
    "local_epochs": "fl.local_epochs",
    "batch_size": "fl.batch_size",
    "lr": "fl.lr",
    "fraction": "fl.client_fraction",
    "engine": "fl.engine",
    "dropout": "fl.dropout",
    "max_update_norm": "fl.max_update_norm",
    "seed": "seed",
    "device": "device",
    "out": "out",
    "quiet": "quiet",
    "threads": "threads",
    "preset": "preset",
    "defense": "defense.name",
    "dp_noise": "defense.dp_noise",
    "dp_clip": "defense.dp_clip",
    "dp_delta": "defense.dp_delta",
}


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """Defaults < `base` (a resumed run's settings) < --config file < flags."""
    file_values = _merged(base or {}, load_toml(args.config) if args.config else {})
    overrides = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest, None) is not None}
    victim = getattr(args, "victim", None)
    if victim is not None and victim.strip().lstrip("-").isdigit():
        overrides["attack.victim"] = int(victim)
    elif victim is not None:  # a client folder name: needs the dataset the file or flags chose
        from mganai.data import resolve_victim

        cfg = build_config(file_values, overrides)
        overrides["attack.victim"] = resolve_victim(cfg.data, victim)
    cfg = build_config(file_values, overrides)
    if has_natural_clients(cfg.data.dataset):  # folder: datasets: the victim against the client folders, no image read
        from mganai.data import check_victim_early

        check_victim_early(cfg.data, cfg.attack.victim)
    return cfg


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top`'s settings over `base`'s, table by table."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
