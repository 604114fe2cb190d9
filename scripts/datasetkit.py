"""Shared plumbing of the dataset scripts: option checks, a missing-package exit, and a build-then-rename output.

A script builds its dataset in a sibling folder `DIR.tmp-<pid>` and renames it to DIR
only when every image is written, so a failed or interrupted run never leaves a DIR
that looks complete; a non-empty DIR is refused unless `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np


def fail_missing(what: str, package: str) -> None:
    """Exit 2 with one line naming the Debian package that brings `what`."""
    print(f"error: {what} not found; install it with: apt-get install {package}", file=sys.stderr)
    raise SystemExit(2)


def add_common_options(p: argparse.ArgumentParser, clients: int, per_client: int, size: int) -> None:
    p.add_argument("out", type=Path, help="dataset folder to create (DIR/<client>/<class>/<image>)")
    p.add_argument("--seed", type=int, default=0, help="everything is drawn from this seed (default 0)")
    p.add_argument("--clients", type=int, default=clients, help=f"number of clients (default {clients})")
    p.add_argument(
        "--per-client",
        type=int,
        default=per_client,
        help=f"images per client, spread evenly over the classes (default {per_client})",
    )
    p.add_argument("--size", type=int, default=size, help=f"image side in pixels (default {size})")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists and is not empty")


def check_common_options(p: argparse.ArgumentParser, args: argparse.Namespace, max_clients: int, classes: int) -> None:
    if not 2 <= args.clients <= max_clients:
        p.error(f"--clients must be in 2..{max_clients}")
    if args.per_client < 2 * classes:
        p.error(f"--per-client must be at least {2 * classes} (two images per class)")
    if not 8 <= args.size <= 256:
        p.error("--size must be in 8..256")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        p.error(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        p.error(f"{out} is not empty (use --overwrite to replace it)")


def per_class_counts(total: int, classes: int) -> list[int]:
    """`total` images over `classes` classes, the remainder going to the first classes."""
    return [total // classes + (c < total % classes) for c in range(classes)]


def client_rng(seed: int, client: int, purpose: int) -> np.random.Generator:
    """An independent random stream per (seed, client, purpose)."""
    return np.random.default_rng([seed, client, purpose])


def spread(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    """`n` values covering [low, high] evenly in a random order (a Latin-hypercube column), so no two coincide."""
    slots = (rng.permutation(n) + rng.uniform(0.2, 0.8, n)) / n
    return low + (high - low) * slots


def build_atomically(out: Path, overwrite: bool, build: Callable[[Path], int]) -> int:
    """Run `build(tmp)` into a fresh sibling folder, then put it at `out`; returns what `build` returns."""
    out = out.absolute()
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        result = build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        if any(out.iterdir()) and not overwrite:  # appeared while we were building
            shutil.rmtree(tmp, ignore_errors=True)
            raise SystemExit(f"error: {out} became non-empty during the build; nothing written")
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
    return result


def _plain(v: object) -> object:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, Path):
        return str(v)
    return v


def write_manifest(root: Path, script: str, args: argparse.Namespace, details: dict) -> None:
    """DIR/manifest.json: how the dataset was made (the loader reads only folders, so a file at the top is ignored)."""
    options = {k: v for k, v in vars(args).items() if k not in ("out", "overwrite")}
    body = {"script": f"scripts/{script}", "options": options, **details}
    (root / "manifest.json").write_text(json.dumps(_plain(body), indent=1) + "\n")
