"""Benchmark: how long healthy client updates are, to check `fl.max_update_norm` never rejects them.

    OMP_NUM_THREADS=1 .venv/bin/python bench/update_norms.py [rounds]

Runs FedAvg on the embedded digits with the default FL settings (and with a
10x learning rate) and prints the largest and median L2 norm of a client update.
"""

from __future__ import annotations

import sys

import torch

from mganai.config import RunConfig
from mganai.data import load_dataset
from mganai.fl.faults import update_norms
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.server import FedAvgSimulator


class Norms:
    def __init__(self) -> None:
        self.values: list[float] = []

    def observe(self, obs) -> None:
        self.values += update_norms(obs.updates).tolist()


def main() -> None:
    torch.set_num_threads(1)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    cfg = RunConfig()
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    for lr in (cfg.fl.lr, 10 * cfg.fl.lr):
        cfg.fl.rounds, cfg.fl.lr = rounds, lr
        model = SharedCNN(shape[0], data.num_classes, shape[1])
        init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
        norms = Norms()
        result = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[norms]).run()
        v = torch.tensor(norms.values)
        print(
            f"digits, {rounds} rounds, lr {lr:g}: update norm max {v.max():.3f}, median {v.median():.3f}, "
            f"rejected {len(result.rejected)} (bound {cfg.fl.max_update_norm:g}), "
            f"accuracy {result.test_accuracy[-1]:.3f}"
        )


if __name__ == "__main__":
    main()
