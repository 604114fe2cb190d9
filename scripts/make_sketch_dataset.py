"""Write a user-level folder dataset of "sketchers", DIR/<sketcher>/<class>/<image>.png: hand-drawn doodles.

Each client is one person doodling ten simple things (circle, square, triangle, star,
heart, arrow, house, spiral, cloud, smiley), all from geometry in this file: no font,
no package, so the clients share one design and differ only by their hand. Besides the
pen, slant, size, width, ink and wobble of the writer dataset (whose renderer this
uses), each sketcher has drawing habits: rounded or sharp corners, closing a shape
with an overshoot or a gap, drawing a polygon in one stroke or side by side with
lines running past the corners, and tracing a shape once or twice. Every doodle
varies in its proportions, where the stroke starts, and the jitter of the hand.
Grey 28x28 PNGs, white on black. Identity lives in the hand alone, so it is harder to
tell sketchers apart than the writers (who also differ by letterforms).

    .venv/bin/python scripts/make_sketch_dataset.py DIR [--clients 10] [--per-client 200] [--size 28] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from datasetkit import (
    add_common_options,
    build_atomically,
    check_common_options,
    client_rng,
    per_class_counts,
    spread,
    write_manifest,
)
from make_writer_dataset import render

NAMES = [
    "alba",
    "boris",
    "carmen",
    "dev",
    "elif",
    "femi",
    "gus",
    "hilde",
    "ines",
    "jakob",
    "kira",
    "lars",
    "mona",
    "nils",
    "olga",
    "pavel",
]
CLASSES = ["arrow", "circle", "cloud", "heart", "house", "smiley", "spiral", "square", "star", "triangle"]
UNIT = 10.0  # shapes are drawn in [-1, 1] and scaled to about the Hershey fonts' units


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 48) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def chaikin(p: np.ndarray, rounds: int, closed: bool) -> np.ndarray:
    """Corner cutting: each round rounds the corners a little more."""
    for _ in range(rounds):
        q = np.concatenate([p, p[:1]]) if closed else p
        a, b = q[:-1], q[1:]
        cut = np.empty((2 * len(a), 2))
        cut[0::2], cut[1::2] = 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b
        p = cut if closed else np.concatenate([q[:1], cut, q[-1:]])
    return p


def closed_stroke(poly: np.ndarray, h: dict, rng: np.random.Generator, corners: bool) -> list[np.ndarray]:
    """A closed outline as this sketcher draws it: start point, corners, overshoot or gap, one or two passes."""
    if corners and h["separate_sides"]:
        strokes = []
        for a, b in zip(poly, np.roll(poly, -1, 0), strict=True):
            ext = h["extend"] * (1 + rng.normal(0, 0.3))
            d = b - a
            strokes.append(np.stack([a - d * ext, b + d * ext]))
        return strokes
    if corners:  # sixteen points a side, so corner cutting rounds the corners only and a gap is part of a side
        t = np.arange(16)[:, None] / 16
        p = np.concatenate([a + (b - a) * t for a, b in zip(poly, np.roll(poly, -1, 0), strict=True)])
        p = chaikin(p, h["round"], closed=True)
    else:
        p = poly
    start = round(h["start"] * len(p) + rng.normal(0, 0.04) * len(p)) % len(p)
    p = np.roll(p, -start, 0)
    over = h["overshoot"] + rng.normal(0, 0.03)
    extra = round(abs(over) * len(p))
    if over >= 0:
        p = np.concatenate([p, p[: extra + 1]])
    elif extra < len(p) - 2:
        p = p[: len(p) - extra]
    strokes = [p]
    if h["passes"] == 2:
        strokes.append(p * (1 + rng.normal(0, 0.03)) + rng.normal(0, 0.03, 2))
    return strokes


def shape(cls: str, h: dict, rng: np.random.Generator) -> list[np.ndarray]:
    """The strokes of one doodle of `cls` in about [-1, 1], y down."""

    def j(s: float = 0.06) -> float:  # a doodle's proportions vary
        return rng.normal(0, s)

    if cls == "circle":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        return closed_stroke(np.stack([(1 + j()) * np.cos(t), (1 + j()) * np.sin(t)], 1), h, rng, False)
    if cls == "square":
        w, ht = 1 + j(), 1 + j()
        return closed_stroke(np.array([[-w, -ht], [w, -ht], [w, ht], [-w, ht]]), h, rng, True)
    if cls == "triangle":
        return closed_stroke(np.array([[j(0.15), -1], [1 + j(), 0.8 + j()], [-1 + j(), 0.8 + j()]]), h, rng, True)
    if cls == "star":
        inner = 0.42 + j(0.05)
        pts = [
            (r * math.sin(a), -r * math.cos(a))
            for i in range(10)
            for a, r in [(i * math.pi / 5 + j(0.04), 1.0 if i % 2 == 0 else inner)]
        ]
        return closed_stroke(np.array(pts), h, rng, True)
    if cls == "heart":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return closed_stroke(np.stack([x, y + 2.5], 1) / 16 * (1 + j()), h, rng, False)
    if cls == "arrow":
        tip, tail = np.array([1.0, j(0.1)]), np.array([-1.0, j(0.1)])
        head = 0.45 + j(0.06)
        spread_ = 0.45 + j(0.06)
        shaft = [np.stack([tail, tip])]
        if h["separate_sides"]:
            return [*shaft, np.array([tip - [head, spread_], tip]), np.array([tip - [head, -spread_], tip])]
        return [*shaft, np.array([tip - [head, spread_], tip, tip - [head, -spread_]])]
    if cls == "house":
        w, roof = 0.8 + j(), -0.2 + j(0.08)
        body = closed_stroke(np.array([[-w, roof], [w, roof], [w, 1], [-w, 1]]), h, rng, True)
        top = np.array([[-w - 0.1, roof], [j(0.1), -1], [w + 0.1, roof]])
        door = np.array([[-0.15, 1], [-0.15, 0.45], [0.2, 0.45], [0.2, 1]]) + np.array([j(0.1), 0])
        return [*body, chaikin(top, min(h["round"], 1), closed=False), door]
    if cls == "spiral":
        turns = 2.6 + j(0.2)
        t = np.linspace(0, turns * 2 * math.pi, 120)
        r = t / t[-1]
        sign = 1 if h["clockwise"] else -1
        return [np.stack([r * np.cos(sign * t), r * np.sin(sign * t)], 1)]
    if cls == "cloud":
        bumps, pts = 6, []
        for i in range(bumps):
            a0, a1 = 2 * math.pi * i / bumps, 2 * math.pi * (i + 1) / bumps
            mid = (a0 + a1) / 2
            c = np.array([math.cos(mid), 0.6 * math.sin(mid)]) * 0.75
            bump = 0.32 + j(0.04)
            pts.append(arc(c[0], c[1], bump, bump, mid - 1.6, mid + 1.6, 12))
        return closed_stroke(np.concatenate(pts), h, rng, False)
    if cls == "smiley":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        face = closed_stroke(np.stack([np.cos(t), np.sin(t)], 1) * (1 + j()), h, rng, False)
        ey = -0.3 + j(0.05)
        eyes = [arc(ex, ey, 0.08, 0.12, 0, 2 * math.pi, 10) for ex in (-0.35 + j(0.04), 0.35 + j(0.04))]
        smile = arc(0, 0.05 + j(0.05), 0.5 + j(0.05), 0.4 + j(0.05), 0.35, math.pi - 0.35, 20)
        return [*face, *eyes, smile]
    raise ValueError(cls)


def make_sketcher(rng: np.random.Generator, k: int, cols: dict[str, np.ndarray]) -> dict:
    nib = cols["nib"][k] > 0.65  # a few draw with a broad marker nib
    return {
        "pen": cols["pen"][k],
        "nib_contrast": rng.uniform(0.3, 0.55) if nib else 0.0,
        "nib_angle": rng.uniform(0, math.pi),
        "slant": cols["slant"][k],
        "tilt": math.radians(cols["tilt"][k]),
        "size": cols["size"][k],
        "aspect": cols["aspect"][k],
        "ink": cols["ink"][k],
        "sloppiness": cols["sloppiness"][k],
        "wobble": cols["wobble"][k],
        "wobble_freq": rng.uniform(1.0, 2.5, 2),
        "wobble_dir": rng.uniform(0, 2 * math.pi, 2),
        "wobble_phase": rng.uniform(0, 2 * math.pi, 2),
        # drawing habits
        "round": int(cols["round"][k]),
        "overshoot": cols["overshoot"][k],
        "start": rng.uniform(0, 1),
        "separate_sides": bool(cols["separate"][k] > 0.6),
        "extend": rng.uniform(0.04, 0.15),
        "passes": 2 if cols["passes"][k] > 0.7 else 1,
        "clockwise": bool(rng.uniform() < 0.5),
    }


def sketcher_columns(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 998])
    return {
        "nib": spread(rng, n, 0, 1),
        "pen": spread(rng, n, 1.2, 2.3),
        "slant": spread(rng, n, -0.2, 0.3),
        "tilt": spread(rng, n, -8, 8),
        "size": spread(rng, n, 0.66, 0.88),
        "aspect": spread(rng, n, 0.8, 1.2),
        "ink": spread(rng, n, 0.78, 1.0),
        "sloppiness": spread(rng, n, 0.006, 0.022),
        "wobble": spread(rng, n, 0.0, 0.03),
        "round": spread(rng, n, 0, 3.999),
        "overshoot": spread(rng, n, -0.08, 0.15),
        "separate": spread(rng, n, 0, 1),
        "passes": spread(rng, n, 0, 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, clients=10, per_client=200, size=28)
    args = p.parse_args(argv)
    check_common_options(p, args, len(NAMES), len(CLASSES))
    cols = sketcher_columns(args.seed, args.clients)
    counts = per_class_counts(args.per_client, len(CLASSES))
    start = time.perf_counter()
    sketchers: dict[str, dict] = {}

    def build(root: Path) -> int:
        written = 0
        for k in range(args.clients):
            h = make_sketcher(client_rng(args.seed, k, 0), k, cols)
            sketchers[NAMES[k]] = h
            rng = client_rng(args.seed, k, 1)
            for cls, n in zip(CLASSES, counts, strict=True):
                folder = root / NAMES[k] / cls
                folder.mkdir(parents=True)
                for i in range(n):
                    strokes = [s * UNIT for s in shape(cls, h, rng)]
                    render(strokes, h, rng, args.size).save(folder / f"{i:04d}.png")
                    written += 1
        write_manifest(root, "make_sketch_dataset.py", args, {"classes": CLASSES, "sketchers": sketchers})
        return written

    written = build_atomically(args.out, args.overwrite, build)
    print(
        f"wrote {written} images ({args.clients} sketchers x {len(CLASSES)} classes, {args.size}x{args.size}) "
        f"to {args.out} in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
