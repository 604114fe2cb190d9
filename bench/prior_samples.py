"""Benchmark: does the public-data prior learn to draw the data? (issue 23, the prior's pretraining alone)

Pretrains `mganai.attack.prior.PublicPrior` on the public images a run would hand the
server and prints its time and the diversity of its samples beside the public images'
own (one image per class gives about 0.05); writes a grid, public images left, samples
right, so a person can say whether they are data.

    .venv/bin/python bench/prior_samples.py --dataset folder:DIR --public-clients 3 --steps 1000 --png prior.png
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from mganai.attack.prior import PublicPrior
from mganai.config import build_config
from mganai.data.public import load_federation
from mganai.device import one_thread
from mganai.eval.metrics import sample_diversity
from mganai.io import write_png
from mganai.report.grids import class_rows, panel_grid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--public-clients", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="pretraining steps (default attack.prior_pretrain_steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", default="prior_samples.png")
    args = p.parse_args()
    over = {"data.dataset": args.dataset, "data.public_clients": args.public_clients, "seed": args.seed}
    cfg = build_config({}, over)
    fed = load_federation(cfg.data, cfg.attack.victim, cfg.seed)
    public = fed.public
    assert public is not None
    attack = cfg.attack if args.steps is None else dataclasses.replace(cfg.attack, prior_pretrain_steps=args.steps)
    n_cls, n_cli = fed.data.num_classes, fed.data.num_clients
    print(f"public: {public.description}; diversity {sample_diversity(public.x, public.y):.3f}")
    with one_thread():
        prior = PublicPrior(public.x, public.y, n_cls, n_cli, attack, cfg.seed)
        start = time.perf_counter()
        g, _ = prior.pretrained()
        seconds = time.perf_counter() - start
    g.eval()
    classes = torch.arange(n_cls).repeat_interleave(20)
    with torch.no_grad():
        z = torch.randn(len(classes), attack.noise_dim, generator=torch.Generator().manual_seed(1))
        xs = g(z, classes, torch.full_like(classes, n_cli))
    spread = sample_diversity(xs, classes)
    print(f"{attack.prior_pretrain_steps} steps in {seconds:.0f} s; samples' diversity {spread:.3f}")
    write_png(args.png, panel_grid([class_rows(public.x, public.y, n_cls, 8), class_rows(xs, classes, n_cls, 8)]))
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
