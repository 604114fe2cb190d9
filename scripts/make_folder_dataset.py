"""Write a small user-level folder dataset, DIR/<client>/<class>/<image>.png, for trying `--dataset folder:DIR`.

Each client folder is one "writer": the embedded scikit-learn digits (no download)
split over the clients, each with its own writer style, saved as 16x16 grey PNGs
(the digits are 8x8 at source, so 16 loses nothing); the last client's images are
saved at 20x20, as real user data is rarely uniform (the loader resizes them and
says so).

    .venv/bin/python scripts/make_folder_dataset.py DIR [--clients 6] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mganai.data.digits import load_digits_federated

NAMES = ["ada", "bert", "chloe", "dmitri", "eun-ji", "farid", "greta", "hiro", "ines", "jonas", "kemi", "luca"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not 2 <= args.clients <= len(NAMES):
        p.error(f"--clients must be in 2..{len(NAMES)}")
    data = load_digits_federated(args.clients, 16, args.seed)
    for k, client in enumerate(data.clients):
        x = torch.cat([client.x_train, client.x_test])
        y = torch.cat([client.y_train, client.y_test])
        if k == args.clients - 1:
            x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
        pixels = ((x[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        for i, (img, label) in enumerate(zip(pixels, y.tolist(), strict=True)):
            path = args.out / NAMES[k] / data.class_names[label] / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img)).save(path)
    print(f"wrote {sum(1 for _ in args.out.rglob('*.png'))} images of {args.clients} clients to {args.out}")


if __name__ == "__main__":
    main()
