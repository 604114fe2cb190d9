"""How separable a folder dataset's clients and classes are: train the project's oracle on it, print held-out accuracy.

    PYTHONPATH=src .venv/bin/python scripts/oracle_check.py DIR [--epochs 30] [--seed 0]

Loads DIR as `mganai run --dataset folder:DIR` would (the tool's defaults: resolution
from the image sizes, at most 200 images per client, 20% of each client held out),
trains the oracle of `mganai.eval.oracle` on every client's training split, and prints
its held-out identity and class accuracy (also on softened images), as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mganai.config import build_config
from mganai.data import load_dataset
from mganai.eval.oracle import train_oracle


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = build_config({}, {"data.dataset": f"folder:{args.root}"})
    data = load_dataset(cfg.data, args.seed)
    start = time.perf_counter()
    oracle = train_oracle(data, args.seed, args.epochs)
    print(
        json.dumps(
            {
                "dataset": args.root,
                "clients": data.num_clients,
                "classes": data.num_classes,
                "image_shape": list(data.image_shape),
                "train": int(sum(len(c.y_train) for c in data.clients)),
                "heldout": int(sum(len(c.y_test) for c in data.clients)),
                "epochs": args.epochs,
                "identity": round(oracle.heldout_identity_accuracy, 4),
                "class": round(oracle.heldout_class_accuracy, 4),
                "softened_identity": round(oracle.heldout_softened_identity_accuracy, 4),
                "softened_class": round(oracle.heldout_softened_class_accuracy, 4),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
