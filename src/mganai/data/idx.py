"""MNIST-format IDX files (gzipped or not): the format of MNIST, Fashion-MNIST, EMNIST and KMNIST.

The format is a 4-byte magic (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values. It is simple
enough that reading it here gives better error messages than a dependency would.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from mganai.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IMAGES = re.compile(r"^(?P<stem>.*?)(?P<sep>[-.]?)images(?P<mid>[-.])idx3(?P<tail>[-.]ubyte)(?P<gz>\.gz)?$")


def read_idx(path: str | Path) -> np.ndarray:
    """The array an IDX file holds; a truncated, corrupt or non-IDX file is a DataError naming it."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"IDX file {path} is truncated (header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if 0 in shape:  # no values: numpy would refuse the reshape of a damaged header, and images need a side
        raise DataError(f"IDX file {path} holds no values (shape {shape})")
    dtype = np.dtype(_TYPES[raw[2]])
    count = math.prod(shape)  # Python ints: np.prod wraps around on a damaged header's huge dimensions
    need = count * dtype.itemsize
    if len(raw) - header < need:
        raise DataError(f"IDX file {path} is truncated: {len(raw) - header} of {need} data bytes for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx_pairs(directory: Path) -> list[tuple[Path, Path]]:
    """(images, labels) file pairs in a directory, e.g. train-images-idx3-ubyte.gz + train-labels-idx1-ubyte.gz."""
    pairs = []
    for f in sorted(directory.iterdir()):
        m = _IMAGES.match(f.name)
        if not m or not f.is_file():
            continue
        base = f"{m['stem']}{m['sep']}labels{m['mid']}idx1{m['tail']}"
        labels = next((directory / n for n in (base + ".gz", base) if (directory / n).is_file()), None)
        if labels is None:
            raise DataError(f"IDX images {f} have no labels file {base}[.gz] beside them")
        pairs.append((f, labels))
    return pairs


def load_idx_dir(directory: str | Path, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """All image/label pairs of a directory (whose names start with `prefix`), pooled: uint8 [N, 1, H, W], int64 [N].

    EMNIST files (names starting with "emnist") store images transposed; they are turned upright.
    """
    d = Path(directory)
    if not d.is_dir():
        raise DataError(f"IDX directory not found: {d}")
    pairs = [p for p in idx_pairs(d) if p[0].name.startswith(prefix)]
    if not pairs:
        raise DataError(f"no IDX image files (*-images-idx3-ubyte[.gz]) in {d}")
    xs, ys = [], []
    for img_path, lab_path in pairs:
        x, y = read_idx(img_path), read_idx(lab_path)
        if x.ndim != 3:
            raise DataError(f"IDX file {img_path} holds shape {x.shape}, expected [n, height, width]")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"IDX labels {lab_path} hold shape {y.shape}, expected [{len(x)}] to match {img_path.name}")
        if x.dtype != np.uint8:  # other types: scale each file to 0..255
            x = x.astype(np.float64)
            x = np.round(255 * (x - x.min()) / max(float(x.max() - x.min()), 1e-12)).astype(np.uint8)
        if img_path.name.lower().startswith("emnist"):
            x = x.transpose(0, 2, 1)
        xs.append(x)
        ys.append(y.astype(np.int64))
    shapes = {x.shape[1:] for x in xs}
    if len(shapes) > 1:
        raise DataError(f"IDX files in {d} have different image sizes {sorted(shapes)}")
    return np.ascontiguousarray(np.concatenate(xs)[:, None]), np.concatenate(ys)
