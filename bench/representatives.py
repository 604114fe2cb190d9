"""Benchmark: data representatives for N clients, batched (`invert_updates`) vs a per-client loop.

The inversion of the default attack (20 images per client, 40 Adam steps) on one
round's real updates: FL round 1 of the default digits grown to N clients (see
bench/throughput.py for the resampling), then both functions on the same sent
models, updates, labels and initial noise. Prints seconds per inversion (best of
`--repeat`, median too), the ratio, and how far apart the two results are: the
largest pixel difference, and the mean update-match objective (1 - cos) each
reached. Same optimisation, but Adam normalises each pixel's gradient, so a pixel
whose gradient is ~0 moves by +-lr on float noise alone: with many clients a few
pixels differ a lot while the objective reached is the same.
`vmap s` is the batched inversion forced onto its generic torch.func path
(`fused=False`: vmap(grad) instead of the stacked grouped-conv gradients).

    OMP_NUM_THREADS=1 .venv/bin/python bench/representatives.py [--clients 10,100] [--repeat 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import torch

from mganai.attack.representatives import (
    invert_updates,
    invert_updates_loop,
    labels_for,
    present_classes,
    update_match_loss,
)
from mganai.config import RunConfig
from mganai.data.resample import grown_dataset
from mganai.device import set_determinism
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator


class _Last:
    obs: RoundObservation | None = None

    def observe(self, obs: RoundObservation) -> None:
        self.obs = obs


def one_round(cfg: RunConfig, clients: int) -> tuple[SharedCNN, RoundObservation, tuple[int, int, int]]:
    """The first FL round of the default run grown to `clients` clients, as the server saw it."""
    data = grown_dataset(cfg, clients)
    c, h, _ = data.image_shape
    model = SharedCNN(c, data.num_classes, h)
    init = params_of(seeded(lambda: SharedCNN(c, data.num_classes, h), cfg.seed))
    last = _Last()
    cfg.fl.rounds = 1
    FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[last]).run()
    assert last.obs is not None
    return model, last.obs, data.image_shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="10,100")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="inversion steps (default: attack.inversion_steps)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    set_determinism()
    print(f"threads={torch.get_num_threads()} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    print(
        f"{'N':>5} {'batched s':>10} {'(median)':>9} {'vmap s':>9} {'loop s':>9} {'(median)':>9} "
        f"{'loop/batched':>13} {'loop/vmap':>10} {'max |diff|':>11} {'objective batched / loop':>25}"
    )
    for n in (int(x) for x in args.clients.split(",")):
        cfg = RunConfig()
        model, obs, shape = one_round(cfg, n)
        a = cfg.attack
        labels = labels_for(present_classes(obs.updates), a.reps_per_client)
        fixed = (
            model,
            obs.sent,
            obs.updates,
            labels,
            shape,
            args.steps or a.inversion_steps,
            a.inversion_lr,
            a.tv_weight,
        )
        times: dict[str, list[float]] = {"batched": [], "vmap": [], "loop": []}
        images = {}
        fns = (
            ("batched", invert_updates),
            ("vmap", functools.partial(invert_updates, fused=False)),
            ("loop", invert_updates_loop),
        )
        for _ in range(args.repeat):
            for name, fn in fns:
                t0 = time.perf_counter()
                images[name] = fn(*fixed, torch.Generator().manual_seed(cfg.seed))
                times[name].append(time.perf_counter() - t0)
        b, v, lp = min(times["batched"]), min(times["vmap"]), min(times["loop"])
        diff = float((images["batched"] - images["loop"]).abs().max())
        objective = {
            m: float(update_match_loss(model, obs.sent, obs.updates, images[m], labels, fused=False).mean())
            for m in ("batched", "loop")
        }
        print(
            f"{n:>5} {b:>10.2f} {statistics.median(times['batched']):>9.2f} {v:>9.2f} {lp:>9.2f} "
            f"{statistics.median(times['loop']):>9.2f} {lp / b:>12.2f}x {lp / v:>9.2f}x {diff:>11.2e} "
            f"{objective['batched']:>14.4f} / {objective['loop']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
