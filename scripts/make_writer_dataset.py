"""Write a user-level folder dataset of "writers", DIR/<writer>/<class>/<image>.png, from the Hershey stroke fonts.

Each client is one writer: one Hershey font family (Debian's `hershey-fonts-data`:
cursive, script, sans, roman, italic and gothic hands) drawn as pen strokes with the
writer's own pen and habits: stroke width, a broad nib (its angle and contrast) or a
ballpoint, slant, tilt, size, letter width, ink darkness, how sloppy the hand is, and
a consistent wobble of the strokes. Every sample then varies as handwriting does:
smooth jitter of the stroke points, position, rotation, scale, slant and width.
Grey 28x28 PNGs, white ink on black like MNIST.

The classes are ten lowercase letters by default (`--chars`): Hershey's families
share their digit designs (cursive's digits are the sans ones, the four gothic
families have one set), while their letters differ, so letters carry the hand.
`--chars 0123456789` gives digits.

    .venv/bin/python scripts/make_writer_dataset.py DIR [--clients 10] [--per-client 200] [--size 28] [--seed 0]

Needs: apt-get install hershey-fonts-data
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import numpy as np
from datasetkit import (
    add_common_options,
    build_atomically,
    check_common_options,
    client_rng,
    fail_missing,
    per_class_counts,
    spread,
    write_manifest,
)
from PIL import Image, ImageDraw, ImageFilter

FONT_DIR = Path("/usr/share/hershey-fonts")
# One family per writer, the ten most different lowercase designs first; the rest share a design with an earlier one.
FONTS = [
    "cursive",
    "scripts",
    "scriptc",
    "futural",
    "futuram",
    "rowmant",
    "timesr",
    "timesi",
    "gothiceng",
    "gothicita",
    "timesib",
    "timesrb",
    "gothicger",
    "gothitt",
    "gothgrt",
    "gothgbt",
]
NAMES = [
    "amira",
    "bruno",
    "chen",
    "dana",
    "emeka",
    "freya",
    "goran",
    "hana",
    "ivan",
    "jun",
    "kofi",
    "lena",
    "mateo",
    "nora",
    "omar",
    "priya",
]
CHARS = "abdeghkmrs"
SUPER = 4  # supersampling factor of the pen drawing


def parse_jhf(path: Path) -> dict[str, list[np.ndarray]]:
    """Glyphs of a Hershey .jhf font (printable ASCII, in order from the space) as lists of strokes [n, 2], y down."""
    glyphs: dict[str, list[np.ndarray]] = {}
    lines = [ln for ln in path.read_text(encoding="ascii").splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        count, body = int(line[5:8]), line[8:]
        strokes: list[list[tuple[int, int]]] = [[]]
        for j in range(2, 2 * count, 2):  # the first pair is the left/right bearing
            pair = body[j : j + 2]
            if pair == " R":
                strokes.append([])
            else:
                strokes[-1].append((ord(pair[0]) - ord("R"), ord(pair[1]) - ord("R")))
        glyphs[chr(32 + i)] = [np.array(s, dtype=float) for s in strokes if s]
    return glyphs


def densify(stroke: np.ndarray, step: float = 0.5) -> np.ndarray:
    """The polyline with points at most `step` font units apart, so a smooth displacement bends it smoothly."""
    if len(stroke) < 2:
        return stroke
    out = [stroke[:1]]
    for a, b in itertools.pairwise(stroke):
        n = max(1, math.ceil(np.linalg.norm(b - a) / step))
        t = np.arange(1, n + 1)[:, None] / n
        out.append(a + (b - a) * t)
    return np.concatenate(out)


def make_writer(rng: np.random.Generator, k: int, cols: dict[str, np.ndarray]) -> dict:
    """Writer k's pen and habits: each trait is a Latin-hypercube column over the n writers (no two alike)."""
    nib = cols["nib"][k] > 0.5  # about half the writers use a broad nib
    return {
        "font": FONTS[k],
        "pen": cols["pen"][k],  # stroke width in output pixels at 28x28
        "nib_contrast": rng.uniform(0.45, 0.75) if nib else 0.0,
        "nib_angle": rng.uniform(0, math.pi),
        "slant": cols["slant"][k],  # shear: x += slant * height above the centre
        "tilt": math.radians(cols["tilt"][k]),
        "size": cols["size"][k],  # the glyph's larger side as a share of the image side
        "aspect": cols["aspect"][k],  # width multiplier
        "ink": cols["ink"][k],
        "sloppiness": cols["sloppiness"][k],  # per-sample point jitter, in glyph heights
        "wobble": cols["wobble"][k],  # amplitude of the writer's consistent stroke wobble, in glyph heights
        "wobble_freq": rng.uniform(1.0, 2.5, 2),
        "wobble_dir": rng.uniform(0, 2 * math.pi, 2),
        "wobble_phase": rng.uniform(0, 2 * math.pi, 2),
    }


def writer_columns(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 999])
    return {
        "nib": spread(rng, n, 0, 1),
        "pen": spread(rng, n, 1.2, 2.3),
        "slant": spread(rng, n, -0.25, 0.4),
        "tilt": spread(rng, n, -7, 7),
        "size": spread(rng, n, 0.62, 0.86),
        "aspect": spread(rng, n, 0.75, 1.25),
        "ink": spread(rng, n, 0.78, 1.0),
        "sloppiness": spread(rng, n, 0.006, 0.022),
        "wobble": spread(rng, n, 0.0, 0.03),
    }


def smooth_noise(rng: np.random.Generator, n: int, sigma: float, width: float = 4.0) -> np.ndarray:
    """[n, 2] Gaussian noise smoothed along the stroke (a hand drifts, it does not shake pixel by pixel)."""
    raw = rng.normal(0, 1, (n + 24, 2))
    k = np.exp(-0.5 * (np.arange(-12, 13) / width) ** 2)
    k /= np.sqrt((k**2).sum())
    sm = np.stack([np.convolve(raw[:, i], k, mode="valid") for i in range(2)], 1)
    return sm[:n] * sigma


def render(strokes: list[np.ndarray], w: dict, rng: np.random.Generator, side: int) -> Image.Image:
    """One handwritten sample of a glyph by writer `w`, a grey `side` x `side` image."""
    pts = [densify(s) for s in strokes]
    allp = np.concatenate(pts)
    lo, hi = allp.min(0), allp.max(0)
    centre, height = (lo + hi) / 2, max(hi[1] - lo[1], 8.0)
    field = [(rng.uniform(0, 2 * math.pi), rng.uniform(0.7, 2.2), rng.uniform(0, 2 * math.pi)) for _ in range(4)]
    out = []
    for s in pts:
        p = (s - centre) / height  # about [-0.5, 0.5] in glyph heights, y down
        # the writer's consistent wobble: a smooth displacement field fixed per writer (its phase barely moves)
        for i in range(2):
            d = np.array([math.cos(w["wobble_dir"][i]), math.sin(w["wobble_dir"][i])])
            phase = w["wobble_phase"][i] + rng.normal(0, 0.3)
            p[:, i] += w["wobble"] * np.sin(2 * math.pi * w["wobble_freq"][i] * (p @ d) + phase)
        out.append(p)
    # this sample's own smooth distortion, one field for all strokes (parallel strokes of a nib move together),
    # and a faint drift along each stroke
    for p in out:
        base = p.copy()
        for j, (direction, freq, phase) in enumerate(field):
            d = np.array([math.cos(direction), math.sin(direction)])
            p[:, j % 2] += w["sloppiness"] * 1.4 * np.sin(2 * math.pi * freq * (base @ d) + phase)
        p += smooth_noise(rng, len(p), w["sloppiness"] * 0.4, width=6.0)
    # per-sample shape: slant, width, tilt, scale, all around the writer's habits
    slant = w["slant"] + rng.normal(0, 0.1)
    aspect = w["aspect"] * math.exp(rng.normal(0, 0.08))
    angle = w["tilt"] + math.radians(rng.normal(0, 6.0))
    ca, sa = math.cos(angle), math.sin(angle)
    shaped = []
    for p in out:
        x, y = p[:, 0] * aspect - slant * p[:, 1], p[:, 1]
        shaped.append(np.stack([ca * x - sa * y, sa * x + ca * y], 1))
    allp = np.concatenate(shaped)
    lo, hi = allp.min(0), allp.max(0)
    extent = max(hi[0] - lo[0], hi[1] - lo[1])
    pen = w["pen"] * side / 28 * math.exp(rng.normal(0, 0.15))
    scale = w["size"] * side * math.exp(rng.normal(0, 0.09)) / extent
    scale = min(scale, (side - pen - 2) / extent)  # keep the whole glyph inside the frame
    box = (hi - lo) * scale
    room = np.maximum(side - box - pen - 2, 0) / 2  # how far the glyph may move and still fit
    shift = np.clip(rng.normal(0, side * 0.04, 2), -room, room)
    origin = side / 2 + shift - (lo + hi) / 2 * scale
    big = Image.new("L", (side * SUPER, side * SUPER), 0)
    draw = ImageDraw.Draw(big)
    ink = round(255 * min(1.0, w["ink"] * math.exp(rng.normal(0, 0.08))))
    for p in shaped:
        q = (p * scale + origin) * SUPER
        if len(q) == 1:
            q = np.concatenate([q, q])
        seg = np.diff(q, axis=0)
        theta = np.arctan2(seg[:, 1], seg[:, 0])
        widths = pen * SUPER * (1 - w["nib_contrast"] * np.abs(np.cos(theta - w["nib_angle"])))
        for (a, b), width in zip(itertools.pairwise(q), widths, strict=True):
            r = max(width, SUPER * 0.6) / 2
            draw.line([tuple(a), tuple(b)], fill=ink, width=max(1, round(2 * r)))
            draw.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=ink)
        r = max(widths[0], SUPER * 0.6) / 2
        draw.ellipse([q[0][0] - r, q[0][1] - r, q[0][0] + r, q[0][1] + r], fill=ink)
    small = big.filter(ImageFilter.GaussianBlur(SUPER * 0.35)).resize((side, side), Image.BOX)
    return small


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, clients=10, per_client=200, size=28)
    p.add_argument("--chars", default=CHARS, help=f"the classes, one printable ASCII character each (default {CHARS})")
    args = p.parse_args(argv)
    chars = args.chars
    if len(set(chars)) != len(chars) or len(chars) < 2 or not all(33 <= ord(c) < 127 for c in chars):
        p.error("--chars must be at least two different printable ASCII characters")
    if any(c in "/\\." for c in chars):
        p.error("--chars cannot use / \\ or . (they name the class folders)")
    check_common_options(p, args, len(FONTS), len(chars))
    if not FONT_DIR.is_dir() or not (FONT_DIR / f"{FONTS[0]}.jhf").is_file():
        fail_missing(f"Hershey fonts ({FONT_DIR})", "hershey-fonts-data")
    fonts = {f: parse_jhf(FONT_DIR / f"{f}.jhf") for f in FONTS[: args.clients]}
    cols = writer_columns(args.seed, args.clients)
    counts = per_class_counts(args.per_client, len(chars))
    start = time.perf_counter()

    writers: dict[str, dict] = {}

    def build(root: Path) -> int:
        written = 0
        for k in range(args.clients):
            writer = make_writer(client_rng(args.seed, k, 0), k, cols)
            writers[NAMES[k]] = writer
            rng = client_rng(args.seed, k, 1)
            for c, n in zip(chars, counts, strict=True):
                folder = root / NAMES[k] / c
                folder.mkdir(parents=True)
                for i in range(n):
                    render(fonts[writer["font"]][c], writer, rng, args.size).save(folder / f"{i:04d}.png")
                    written += 1
        write_manifest(root, "make_writer_dataset.py", args, {"classes": list(chars), "writers": writers})
        return written

    written = build_atomically(args.out, args.overwrite, build)
    print(
        f"wrote {written} images ({args.clients} writers x {len(chars)} classes, {args.size}x{args.size}) "
        f"to {args.out} in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
