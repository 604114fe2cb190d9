"""Write a user-level folder dataset of objects "photographed" by per-client cameras, DIR/<camera>/<class>/<image>.jpg.

The objects are desktop icons from Debian's icon themes (Adwaita, Faba, Tango, Breeze,
elementary-xfce, GNOME, nuoveXT2, Oxygen, Menta, Gartoon): each theme draws the same concept
(printer, camera, computer, folder, trash can, house, envelope, phone, music, calendar)
in its own design, so every class has several designs. Each client is one camera on
its own desk: its white balance and colour response, background (colour, texture and
light fall-off), light direction (the object's shading and soft shadow), exposure and
gamma, lens blur and barrel/pincushion distortion, sensor noise, vignetting and JPEG
quality. Every shot varies: which design, position, size, small rotation, the light's
strength and colour temperature, and the background's shade. 32x32 colour JPEGs.

    .venv/bin/python scripts/make_object_dataset.py DIR [--clients 8] [--per-client 200] [--size 32] [--seed 0]

Needs: apt-get install librsvg2-bin adwaita-icon-theme faba-icon-theme tango-icon-theme breeze-icon-theme
       elementary-xfce-icon-theme gnome-icon-theme lxde-icon-theme oxygen-icon-theme mate-icon-theme
       gnome-icon-theme-gartoon
It uses the themes it finds (at least three for every class, or it stops), so the images
depend on which of these are installed (and their versions); DIR/manifest.json lists every
icon file used. MATE's own theme is not used (it is GNOME 2's); its package brings Menta.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import subprocess
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
from PIL import Image, ImageFilter

ICON_ROOT = Path("/usr/share/icons")
# Themes with full-colour icons, each its own design (MATE's are GNOME 2's, so it is left out).
THEMES = ["Adwaita", "Faba", "Tango", "breeze", "elementary-xfce", "gnome", "nuoveXT2", "oxygen", "menta", "gartoon"]
PACKAGES = (
    "librsvg2-bin adwaita-icon-theme faba-icon-theme tango-icon-theme breeze-icon-theme elementary-xfce-icon-theme "
    "gnome-icon-theme lxde-icon-theme oxygen-icon-theme mate-icon-theme gnome-icon-theme-gartoon"
)
# class -> icon names, the first one a theme has is used
CLASSES = {
    "calendar": ["x-office-calendar"],
    "camera": ["camera-photo"],
    "computer": ["computer"],
    "folder": ["folder"],
    "house": ["go-home"],
    "mail": ["mail-unread", "mail-read", "internet-mail"],
    "music": ["audio-x-generic"],
    "phone": ["phone"],
    "printer": ["printer", "gnome-dev-printer"],
    "trash": ["user-trash"],
}
# (theme, icon) pairs that do not show the concept at this size (a dot, an inbox tray, a stamp)
SKIP = {("elementary-xfce", "mail-unread"), ("elementary-xfce", "internet-mail"), ("nuoveXT2", "internet-mail")}
MIN_DESIGNS = 3
NAMES = ["canon", "fuji", "gopro", "iphone", "kodak", "leica", "nikon", "olympus", "pixel", "ricoh", "sony", "webcam"]
MASTER = 96  # icons are rendered once at this side, RGBA
SIZE_DIR = re.compile(r"/(\d+)(?:x\d+)?(?:/|$)")


def find_icons(names: set[str]) -> dict[str, dict[str, Path]]:
    """theme -> icon name -> its best file (SVG, else the largest PNG of at least 48 px); symbolic ones skipped."""
    found: dict[str, dict[str, Path]] = {}
    for theme in THEMES:
        best: dict[str, tuple[int, str]] = {}
        top = ICON_ROOT / theme
        if not top.is_dir():
            continue
        for dirpath, _, files in os.walk(top, followlinks=True):
            if "symbolic" in dirpath or "scalable-up-to" in dirpath:
                continue
            m = SIZE_DIR.search(dirpath[len(str(top)) :])
            size = 10_000 if "scalable" in dirpath else int(m.group(1)) if m else 0
            for f in files:
                stem, ext = os.path.splitext(f)
                if stem in names and ext in (".svg", ".png") and (ext == ".svg" or size >= 48):
                    key = (size, os.path.join(dirpath, f))
                    if key > best.get(stem, (-1, "")):
                        best[stem] = key
        if best:
            found[theme] = {k: Path(v[1]) for k, v in best.items()}
    return found


def load_icon(path: Path) -> np.ndarray:
    """[MASTER, MASTER, 4] float RGBA in [0, 1] with premultiplied alpha."""
    if path.suffix == ".svg":
        png = subprocess.run(
            ["rsvg-convert", "-w", str(MASTER), "-h", str(MASTER), "-f", "png", str(path)],
            capture_output=True,
            check=True,
        ).stdout
        img = Image.open(io.BytesIO(png))
    else:
        img = Image.open(path)
    img = img.convert("RGBA")
    if img.size != (MASTER, MASTER):
        img = img.resize((MASTER, MASTER), Image.LANCZOS)
    a = np.asarray(img, dtype=np.float32) / 255
    a[..., :3] *= a[..., 3:]
    return a


def designs(found: dict[str, dict[str, Path]]) -> dict[str, list[tuple[str, Path]]]:
    out = {}
    for cls, names in CLASSES.items():
        out[cls] = []
        for theme, icons in found.items():
            for name in names:
                if name in icons and (theme, name) not in SKIP:
                    out[cls].append((theme, icons[name]))
                    break
    return out


def make_camera(rng: np.random.Generator, k: int, cols: dict[str, np.ndarray]) -> dict:
    """Camera k's look; the main traits are Latin-hypercube columns over the cameras, so no two coincide."""
    hue = rng.uniform(0, 2 * math.pi)
    bg = 0.5 + 0.35 * np.array([math.cos(hue), math.cos(hue - 2.1), math.cos(hue + 2.1)]) * cols["bg_sat"][k]
    bg = np.clip(bg * cols["bg_level"][k] / bg.mean(), 0.03, 0.97)
    light = rng.uniform(0, 2 * math.pi)
    return {
        "gains": np.exp(np.array([cols["warm"][k], 0.0, -cols["warm"][k]]) + rng.normal(0, 0.05, 3)),
        "saturation": cols["saturation"][k],
        "background": bg,
        "texture": cols["texture"][k],  # amplitude of the background's texture
        "texture_scale": rng.uniform(1.5, 5.0),  # its grain, in pixels at the output size
        "falloff": rng.uniform(0.05, 0.25),  # light fall-off across the background
        "light_dir": np.array([math.cos(light), math.sin(light)]),
        "shadow": rng.uniform(0.2, 0.6),
        "exposure": cols["exposure"][k],
        "gamma": cols["gamma"][k],
        "blur": cols["blur"][k],
        "distortion": cols["distortion"][k],  # barrel (<0) or pincushion (>0)
        "noise": cols["noise"][k],
        "vignette": cols["vignette"][k],
        "quality": round(cols["quality"][k]),
    }


def camera_columns(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 999])
    return {
        "warm": spread(rng, n, -0.16, 0.16),
        "saturation": spread(rng, n, 0.6, 1.3),
        "bg_level": spread(rng, n, 0.25, 0.8),
        "bg_sat": spread(rng, n, 0.03, 0.3),
        "texture": spread(rng, n, 0.0, 0.08),
        "exposure": spread(rng, n, 0.85, 1.15),
        "gamma": spread(rng, n, 0.8, 1.25),
        "blur": spread(rng, n, 0.0, 0.8),
        "distortion": spread(rng, n, -0.18, 0.18),
        "noise": spread(rng, n, 0.005, 0.045),
        "vignette": spread(rng, n, 0.0, 0.45),
        "quality": spread(rng, n, 35, 92),
    }


def warp(img: np.ndarray, matrix: np.ndarray, side: int) -> np.ndarray:
    """Sample `img` [H, W, C] at `matrix` @ (x, y, 1) for every output pixel (bilinear, zero outside)."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    src = np.einsum("ij,jhw->ihw", matrix, np.stack([xs, ys, np.ones_like(xs)]))
    return bilinear(img, src[0] - 0.5, src[1] - 0.5)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    out = np.zeros(x.shape + img.shape[2:], dtype=np.float32)
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        out += np.where(ok[..., None], img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0) * wt
    return out


def smooth_field(rng: np.random.Generator, side: int, scale: float) -> np.ndarray:
    """[side, side] noise with grain about `scale` pixels, unit standard deviation."""
    raw = Image.fromarray((rng.normal(0.5, 0.15, (side, side)) * 255).clip(0, 255).astype(np.uint8))
    f = np.asarray(raw.filter(ImageFilter.GaussianBlur(scale)), dtype=np.float32)
    return (f - f.mean()) / (f.std() + 1e-6)


def shoot(icon: np.ndarray, cam: dict, rng: np.random.Generator, side: int, grid: tuple) -> Image.Image:
    """One photo of `icon` by camera `cam`."""
    s = 2 * side  # the scene is composed at twice the output size
    yy, xx = grid  # in [-1, 1] at the scene size
    # background: the desk's colour in this shot's light, its texture and light fall-off
    temp = rng.normal(0, 0.07)  # this shot's light colour temperature
    level = math.exp(rng.normal(0, 0.18))
    tint = np.exp(np.array([temp, 0.0, -temp]))
    ramp = 1 + cam["falloff"] * (xx * cam["light_dir"][0] + yy * cam["light_dir"][1])
    tex = cam["texture"] * smooth_field(rng, s, cam["texture_scale"] * 2)
    desk = cam["background"] * np.exp(rng.normal(0, 0.08, 3))  # the desk is never quite the same
    scene = desk * level * tint * (ramp + tex)[..., None]
    # the object: its size, position and tilt in this shot
    scale = side * rng.uniform(0.62, 0.92) / MASTER * 2
    angle = math.radians(rng.normal(0, 7))
    cx, cy = s / 2 + rng.normal(0, s * 0.05, 2)
    ca, sa = math.cos(angle), math.sin(angle)
    # output (x, y) -> icon (u, v): u = R^-1 (x - c) / scale + MASTER / 2
    inv = np.array([[ca, sa, 0], [-sa, ca, 0]]) / scale
    inv[:, 2] = -inv[:, :2] @ np.array([cx, cy]) + MASTER / 2
    obj = warp(icon, inv, s)
    alpha = obj[..., 3:]
    # its soft shadow, cast away from the light
    off = -cam["light_dir"] * s * 0.04
    shadow_m = inv.copy()
    shadow_m[:, 2] = -inv[:, :2] @ (np.array([cx, cy]) + off) + MASTER / 2
    sh = warp(icon[..., 3:], shadow_m, s)[..., 0]
    sh = (
        np.asarray(
            Image.fromarray((sh * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(s * 0.03)), dtype=np.float32
        )
        / 255
    )
    scene = scene * (1 - cam["shadow"] * sh)[..., None]
    shade = (1 + 0.5 * cam["falloff"] * (xx * cam["light_dir"][0] + yy * cam["light_dir"][1]))[..., None]
    scene = obj[..., :3] * level * tint * shade + scene * (1 - alpha)
    # the lens: distortion about the centre, then blur, at the output size
    r2 = xx**2 + yy**2
    k = cam["distortion"] * (1 + rng.normal(0, 0.05))
    src_x, src_y = (xx * (1 + k * r2) + 1) * s / 2 - 0.5, (yy * (1 + k * r2) + 1) * s / 2 - 0.5
    scene = bilinear(scene, src_x, src_y)
    img = Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).resize((side, side), Image.BOX)
    blur = float(cam["blur"] * math.exp(rng.normal(0, 0.2)))
    if blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    x = np.asarray(img, dtype=np.float32) / 255
    # the sensor and its processing: white balance, saturation, exposure, vignetting, gamma, noise
    x = x * cam["gains"] * cam["exposure"] * math.exp(rng.normal(0, 0.06))
    grey = x.mean(-1, keepdims=True)
    x = grey + cam["saturation"] * (x - grey)
    small_r2 = r2[::2, ::2]
    x = x * (1 - cam["vignette"] * small_r2[..., None] / 2)
    x = np.clip(x, 0, 1) ** cam["gamma"]
    noise = cam["noise"] * (0.5 + np.sqrt(np.clip(x, 0, 1)))  # shot noise grows with the signal
    x = x + rng.normal(0, 1, x.shape) * noise
    return Image.fromarray((np.clip(x, 0, 1) * 255).round().astype(np.uint8))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, clients=8, per_client=200, size=32)
    args = p.parse_args(argv)
    check_common_options(p, args, len(NAMES), len(CLASSES))
    found = find_icons({n for names in CLASSES.values() for n in names})
    if not found:
        fail_missing(f"icon themes ({ICON_ROOT}/<theme>)", PACKAGES)
    table = designs(found)
    short = [c for c, d in table.items() if len(d) < MIN_DESIGNS]
    if short:
        fail_missing(f"icons of {MIN_DESIGNS}+ themes for {', '.join(short)}", PACKAGES)
    if any(t[1].suffix == ".svg" for d in table.values() for t in d) and shutil.which("rsvg-convert") is None:
        fail_missing("rsvg-convert (to draw the SVG icons)", "librsvg2-bin")
    start = time.perf_counter()
    icons = {c: [load_icon(path) for _, path in d] for c, d in table.items()}
    cols = camera_columns(args.seed, args.clients)
    counts = per_class_counts(args.per_client, len(CLASSES))
    yy, xx = np.mgrid[-1 : 1 : 2 * args.size * 1j, -1 : 1 : 2 * args.size * 1j].astype(np.float32)
    cameras: dict[str, dict] = {}

    def build(root: Path) -> int:
        written = 0
        for k in range(args.clients):
            cam = make_camera(client_rng(args.seed, k, 0), k, cols)
            cameras[NAMES[k]] = cam
            rng = client_rng(args.seed, k, 1)
            for cls, n in zip(CLASSES, counts, strict=True):
                folder = root / NAMES[k] / cls
                folder.mkdir(parents=True)
                # every design about equally often, in a shuffled order
                order = rng.permutation(np.resize(np.arange(len(icons[cls])), n))
                for i, d in enumerate(order):
                    photo = shoot(icons[cls][d], cam, rng, args.size, (yy, xx))
                    photo.save(folder / f"{i:04d}.jpg", quality=cam["quality"])
                    written += 1
        details = {
            "classes": {c: [f"{t}:{p.relative_to(ICON_ROOT)}" for t, p in d] for c, d in table.items()},
            "cameras": cameras,
        }
        write_manifest(root, "make_object_dataset.py", args, details)
        return written

    written = build_atomically(args.out, args.overwrite, build)
    print(
        f"wrote {written} images ({args.clients} cameras x {len(CLASSES)} classes, {args.size}x{args.size}) "
        f"to {args.out} in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
