"""What diversity_ratio a grid of 1, 2, 3, 4 or 8 distinct real images per class gets (issue 25, item 2).

`diversity_ratio` is the mean per-pixel spread among a class's samples over the same
number for the victim's real training images. To read a method's value, this scores
the victim's own images as if they were samples: the first m real images of each
class, repeated to `eval.samples_per_class` (20) samples, and the held-out images.
The report's caveat threshold (`report/tables.DIVERSITY_FLOOR`) comes from these
numbers and from looking at the grids.

    .venv/bin/python bench/diversity_floor.py [--victims 0,3,7] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch

from mganai.config import DataConfig
from mganai.data import load_dataset
from mganai.eval.metrics import sample_diversity

PER_CLASS = 20


def repeated(x: torch.Tensor, y: torch.Tensor, distinct: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`distinct` real images per class, each repeated, `PER_CLASS` samples per class."""
    xs, ys = [], []
    for c in range(classes):
        own = x[y == c][:distinct]
        xs.append(own[torch.arange(PER_CLASS) % len(own)])
        ys.append(torch.full((PER_CLASS,), c))
    return torch.cat(xs), torch.cat(ys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--victims", default="0,3,7")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data = load_dataset(DataConfig(), args.seed)
    print(f"{'victim':<8}{'held-out':>10}" + "".join(f"{f'{m} distinct':>12}" for m in (1, 2, 3, 4, 8)))
    for v in (int(k) for k in args.victims.split(",")):
        c = data.clients[v]
        ref = sample_diversity(c.x_train, c.y_train)
        cells = [sample_diversity(c.x_test, c.y_test) / ref]
        for m in (1, 2, 3, 4, 8):
            cells.append(sample_diversity(*repeated(c.x_train, c.y_train, m, data.num_classes)) / ref)
        print(f"{v:<8}" + f"{cells[0]:>10.2f}" + "".join(f"{x:>12.2f}" for x in cells[1:]))


if __name__ == "__main__":
    main()
