"""Benchmark: which images the oracle's open set calls data, on the default embedded digits.

    OMP_NUM_THREADS=1 .venv/bin/python bench/open_set.py [--seed 0] [--epochs 30]

Trains the audit's oracle (seed + eval.oracle_seed_offset) and prints its threshold
and the share judged data-like of: the held-out real images, sharp and softened
(what it is calibrated on, 95 % pooled), the same images softened more (factor 3
and 4), uniform noise, and constant images.
"""

from __future__ import annotations

import argparse

import torch

from mganai.config import build_config
from mganai.data import load_dataset
from mganai.eval.oracle import CHECK_FACTOR, soften, train_oracle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="oracle epochs (default: eval.oracle_epochs)")
    args = p.parse_args()
    cfg = build_config({}, {"seed": args.seed})
    data = load_dataset(cfg.data, cfg.seed)
    oracle = train_oracle(data, cfg.seed + cfg.eval.oracle_seed_offset, args.epochs or cfg.eval.oracle_epochs)
    shape = data.image_shape
    held = data.heldout()[0]
    gen = torch.Generator().manual_seed(0)
    probes = {
        "held-out, sharp": held,
        f"held-out, softened x{CHECK_FACTOR:g}": soften(held, CHECK_FACTOR),
        "held-out, softened x3": soften(held, 3.0),
        "held-out, softened x4": soften(held, 4.0),
        "uniform noise (500)": torch.rand(500, *shape, generator=gen) * 2 - 1,
        "constant images (21, -1..1)": torch.stack([torch.full(shape, float(v)) for v in torch.linspace(-1, 1, 21)]),
    }
    print(f"open-set threshold (cosine distance): {oracle.open_set_threshold:.4f}")
    for name, x in probes.items():
        print(f"{name:<30} data-like {float(oracle.judge(x).data_like.float().mean()):.3f}")


if __name__ == "__main__":
    main()
