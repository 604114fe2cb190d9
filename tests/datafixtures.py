"""Tiny data fixtures the data tests write themselves: IDX files, image folder trees, face folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int16): 0x0B, np.dtype(np.float32): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """An array in the IDX format (big-endian header and values)."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def class_images(labels: np.ndarray, side: int = 28, seed: int = 0) -> np.ndarray:
    """uint8 [n, side, side]: a bright bar whose position and angle depend on the class, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = []
    for c in labels:
        angle = 0.6 * int(c)
        d = np.abs((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle) - 0.05 * (int(c) % 3))
        img = np.clip(1.0 - d * 8, 0, 1) * 230 + rng.uniform(0, 20, size=(side, side))
        out.append(img.astype(np.uint8))
    return np.stack(out)


def write_idx_dir(
    d: Path, n: int = 240, classes: int = 4, gz: bool = True, prefix: str = "train", first_label: int = 0
) -> Path:
    """One images/labels pair of `n` samples with labels first_label.. (all classes equally often)."""
    d.mkdir(parents=True, exist_ok=True)
    labels = (np.arange(n) % classes + first_label).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(d / f"{prefix}-images-idx3-ubyte{ext}", class_images(labels - first_label))
    write_idx(d / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return d


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_folder_tree(
    root: Path,
    clients: dict[str, dict[str, int]],
    size: tuple[int, int] = (20, 20),
    colour: bool = False,
    suffix: str = ".png",
) -> Path:
    """root/<client>/<class>/<i><suffix>: client k's images are offset in brightness by k (its "style")."""
    rng = np.random.default_rng(1)
    for k, (client, classes) in enumerate(clients.items()):
        for c, (cls, count) in enumerate(classes.items()):
            for i in range(count):
                w, h = size
                base = class_images(np.array([c]), side=max(w, h), seed=i)[0][:h, :w].astype(np.float64)
                img = np.clip(base * (0.5 + 0.2 * k) + rng.uniform(0, 10, size=(h, w)), 0, 255).astype(np.uint8)
                if colour:
                    img = np.stack([img, img[::-1], np.full_like(img, 40 * k)], axis=2)
                write_image(root / client / cls / f"{i}{suffix}", img)
    return root
