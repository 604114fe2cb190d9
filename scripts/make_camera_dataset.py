"""Write a colour folder dataset of "cameras", DIR/<camera>/<class>/<image>.jpg, for trying `--dataset folder:DIR`.

Each client is one camera photographing Fashion-MNIST items (no download: Debian's
`dataset-fashion-mnist` or any IDX directory): its own white balance (channel gains),
background colour, gamma, lens blur, sensor noise, vignetting and JPEG quality, at
40x40 pixels. Identity lives in colour and image statistics rather than in stroke
shape, unlike the writer datasets, so it tests whether an audit's defaults carry over.

    .venv/bin/python scripts/make_camera_dataset.py DIR [--clients 8] [--per-class 25] [--seed 0] [--idx IDXDIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from mganai.data.errors import DataError
from mganai.data.idx import load_idx_dir

NAMES = ["canon", "nikon", "pixel", "iphone", "sony", "fuji", "webcam", "olympus", "leica", "gopro", "kodak", "ricoh"]
SIDE = 40


def shoot(img: np.ndarray, camera: dict, rng: np.random.Generator, vignette: np.ndarray) -> Image.Image:
    """One grey item in [0, 1] (SIDE x SIDE) as this camera records it."""
    rgb = img[..., None] * camera["gains"] + (1 - img[..., None]) * camera["background"]
    rgb = np.clip(rgb, 0, 1) ** camera["gamma"] * (1 - camera["vignette"] * vignette[..., None] / 2)
    rgb = np.clip(rgb + rng.normal(0, camera["noise"], rgb.shape), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(camera["blur"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-class", type=int, default=25, help="images per class and camera")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--idx", default="/usr/share/datasets/fashion-mnist", help="directory of IDX files to photograph")
    args = p.parse_args()
    if not 2 <= args.clients <= len(NAMES):
        p.error(f"--clients must be in 2..{len(NAMES)}")
    if args.per_class < 2:
        p.error("--per-class must be at least 2")
    try:
        x, y = load_idx_dir(args.idx)
    except DataError as exc:
        p.error(str(exc))
    rng = np.random.default_rng(args.seed)
    pools = {c: list(rng.permutation(np.flatnonzero(y == c))) for c in np.unique(y).tolist()}
    if any(len(v) < args.clients * args.per_class for v in pools.values()):
        p.error(f"{args.idx} has too few images per class for {args.clients} cameras x {args.per_class}")
    yy, xx = np.mgrid[-1 : 1 : SIDE * 1j, -1 : 1 : SIDE * 1j]
    vignette = xx**2 + yy**2
    for name in NAMES[: args.clients]:
        camera = {
            "gains": rng.uniform(0.6, 1.4, 3),
            "background": rng.uniform(0, 0.35, 3),
            "gamma": rng.uniform(0.6, 1.6),
            "blur": rng.uniform(0, 1.2),
            "noise": rng.uniform(0, 0.08),
            "vignette": rng.uniform(0, 0.6),
            "quality": int(rng.integers(30, 95)),
        }
        for c, pool in pools.items():
            folder = args.out / name / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(args.per_class):
                item = Image.fromarray(x[pool.pop(), 0]).resize((SIDE, SIDE), Image.BILINEAR)
                photo = shoot(np.asarray(item) / 255.0, camera, rng, vignette)
                photo.save(folder / f"{i:03d}.jpg", quality=camera["quality"])
    print(f"wrote {sum(1 for _ in args.out.rglob('*.jpg'))} images of {args.clients} cameras to {args.out}")


if __name__ == "__main__":
    main()
