"""Flower's SecAgg+ against plain FedAvg: how far the securely aggregated mean is from the sample-weighted mean.

Runs FL with `--defense secagg` through Flower's real SecAgg+ protocol
(`SecAggPlusWorkflow` + `secaggplus_mod`, key agreement, masks, quantisation),
in-process (`mganai.flower.inprocess.InProcessGrid`, no Ray), with the settings
flower-sim uses (`mganai.flower.secagg.secaggplus_settings`). For every round it
retrains each client from that round's shared model with the simulator's own
training (deterministic per seed, round and client) and prints the largest
per-coordinate difference between SecAgg+'s aggregate and FedAvg's sample-weighted
mean of those updates, next to the bound from the quantisation step. Then it runs
our simulator's plain FedAvg (`mganai run --defense secagg`, same seed) and prints
how far the two trajectories end apart, and their FL accuracies.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python bench/secagg_flower.py [--clients 10] [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import torch
from flwr.app import Context, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from mganai.config import build_config
from mganai.data import load_dataset
from mganai.fl.aggregate import weighted_mean
from mganai.fl.defenses import defense_steps
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from mganai.flower.inprocess import InProcessGrid
from mganai.flower.secagg import quantisation_bound, quantisation_range, secagg_client_app, secagg_fl
from mganai.flower.training import train_client


class Recorder:
    def __init__(self) -> None:
        self.seen: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.seen.append(obs)


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[n] - b[n]).abs().max()) for n in a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in ("run_id", "task_id", "node_id"):  # a Flower runtime sets the process's identity
        setattr(TaskIdentity, name, 1)
    overrides = {"data.clients": args.clients, "fl.rounds": args.rounds, "seed": args.seed, "fl.engine": "loop"}
    cfg = build_config({}, {**overrides, "attack.methods": "none", "defense.name": "secagg"})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    steps = defense_steps(cfg.defense, cfg.seed)

    t0 = time.perf_counter()
    seen = Recorder()
    app = secagg_client_app(cfg, lambda c: data)
    flower = secagg_fl(InProcessGrid(app, data.num_clients), Context(1, 0, {}, RecordDict(), {}))
    result = flower(model, init, data, cfg, [seen], None, lambda t, a: None, steps)
    flower_s = time.perf_counter() - t0

    counts = [float(len(c.y_train)) for c in data.clients]
    q = quantisation_range(data.num_clients)
    bound = quantisation_bound(counts, cfg.fl.max_update_norm, q)
    print(f"{data.num_clients} clients, {cfg.fl.rounds} rounds, seed {cfg.seed}; SecAgg+ c={cfg.fl.max_update_norm:g}")
    print(f"Q=2^{q.bit_length() - 1}, bound {bound:.3g}")
    print("round  max|SecAgg+ mean - FedAvg mean of the same updates|  max|update|")
    for obs in seen.seen:
        ends = [
            train_client(cfg, k, obs.global_params, {"server-round": obs.round + 1}, lambda c: data)
            for k in range(data.num_clients)
        ]
        stacked = {n: torch.stack([e[0][n] - obs.global_params[n] for e in ends]) for n in init}
        plain = weighted_mean(stacked, torch.tensor([float(e[1]) for e in ends]))
        aggregate = {n: v[0] for n, v in obs.updates.items()}
        print(
            f"{obs.round:5d}  {max_diff(aggregate, plain):.3g}  {max(float(v.abs().max()) for v in plain.values()):.3g}"
        )

    t1 = time.perf_counter()
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, defense=steps).run()
    sim_s = time.perf_counter() - t1
    print(
        f"final model, SecAgg+ vs simulator: max abs difference {max_diff(result.final_params, sim.final_params):.3g}"
    )
    print("FL accuracy per round, SecAgg+:  ", " ".join(f"{a:.4f}" for a in result.test_accuracy))
    print("FL accuracy per round, simulator:", " ".join(f"{a:.4f}" for a in sim.test_accuracy))
    print(f"seconds: Flower SecAgg+ in-process {flower_s:.1f}, simulator {sim_s:.1f}")


if __name__ == "__main__":
    main()
