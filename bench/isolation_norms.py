"""Benchmark: how long the victim's updates are with and without the active attack's isolation.

    OMP_NUM_THREADS=1 .venv/bin/python bench/isolation_norms.py [victim] [isolation_rebase_every]

Runs the default FedAvg on the embedded digits twice, once passive and once with
`VictimIsolation` (the victim gets a model built from its own updates only from
`attack.start_round` on), and prints every 5th round the L2 norm of the victim's
update next to the median of the other clients'. An isolated victim that has fitted
its own data sends updates near zero: there is little left to invert.
"""

from __future__ import annotations

import sys

import torch

from mganai.attack.active import VictimIsolation
from mganai.config import RunConfig
from mganai.data import load_dataset
from mganai.fl.faults import update_norms
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator


class VictimNorms:
    def __init__(self, victim: int) -> None:
        self.victim = victim
        self.rows: dict[int, tuple[float, float]] = {}

    def observe(self, obs: RoundObservation) -> None:
        norms = update_norms(obs.updates)
        mine = obs.position(self.victim)
        if mine is not None and obs.round % 5 == 4:
            others = torch.cat([norms[:mine], norms[mine + 1 :]])
            self.rows[obs.round] = float(norms[mine]), float(others.median())


def main() -> None:
    torch.set_num_threads(1)
    cfg = RunConfig()
    victim = int(sys.argv[1]) if len(sys.argv) > 1 else cfg.attack.victim
    rebase = int(sys.argv[2]) if len(sys.argv) > 2 else cfg.attack.isolation_rebase_every
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    runs = {}
    for name in ("passive", "isolated"):
        model = SharedCNN(shape[0], data.num_classes, shape[1])
        init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
        iso = VictimIsolation(victim, cfg.attack.start_round, rebase) if name == "isolated" else None
        norms = VictimNorms(victim)
        observers = [iso, norms] if iso else [norms]
        FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=observers, dispatcher=iso).run()
        runs[name] = norms.rows
    print(f"victim {victim}: L2 norm of its update (median of the other clients') per round")
    print("round   passive            isolated")
    for r in sorted(runs["passive"]):
        (pv, po), (iv, io) = runs["passive"][r], runs["isolated"][r]
        print(f"{r:>5}   {pv:6.3f} ({po:5.3f})   {iv:6.3f} ({io:5.3f})")


if __name__ == "__main__":
    main()
