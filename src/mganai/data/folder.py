"""User-level data as a directory tree: `DIR/<client>/<class>/<image>`, one top-level folder per client.

Clients are numbered in sorted folder-name order and keep their folder name;
classes are the sorted union of the class-folder names. Images may be PNG, JPEG,
PGM/PPM or BMP, grey or colour, any size: non-square images are centre-cropped,
everything is resized to one square resolution (by default the smallest of
16/28/32 that is at least the images' median side, so 32 for larger
images: 64 costs several times the CPU time), and the data is grey
(1 channel) when every image is grey, else RGB.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from mganai.data.federated import ClientData, FederatedDataset
from mganai.data.images import IMAGE_SUFFIXES, fitting_resolution, is_grey, read_image, to_tensor
from mganai.data.notice import notice
from mganai.data.partition import holdout_split, stratified_subset
from mganai.errors import DataError

LAYOUT = "DIR/<client>/<class>/<image>"


def _visible_dirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def folder_clients(root: str | Path) -> list[str]:
    """The client names of a folder dataset, in the order that numbers them (cheap: no image is read)."""
    d = Path(root)
    if not d.is_dir():
        raise DataError(f"folder dataset not found: {d} (expected {LAYOUT})")
    names = [p.name for p in _visible_dirs(d)]
    if len(names) < 2:
        raise DataError(f"folder dataset {d} has {len(names)} client folder(s); need at least 2 ({LAYOUT})")
    return names


def _scan(root: Path) -> dict[str, dict[str, list[Path]]]:
    """client -> class -> image paths, with the layout problems as errors or notices."""
    tree: dict[str, dict[str, list[Path]]] = {}
    for name in folder_clients(root):
        cdir = root / name
        loose = [p for p in cdir.iterdir() if p.is_file() and not p.name.startswith(".")]
        if loose:
            notice(f"{len(loose)} file(s) directly in {cdir} ignored: images belong in {cdir}/<class>/")
        classes = {}
        for kdir in _visible_dirs(cdir):
            files = sorted(p for p in kdir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if files:
                classes[kdir.name] = files
        if not classes:
            raise DataError(
                f"client folder {cdir} has no images (expected {cdir}/<class>/<image> with suffix "
                f"{', '.join(IMAGE_SUFFIXES)})"
            )
        tree[name] = classes
    return tree


def load_folder(root: str | Path, resolution: int, seed: int, holdout: float, max_per_client: int) -> FederatedDataset:
    """Read a folder dataset; `resolution` 0 picks one from the image sizes."""
    root = Path(root)
    tree = _scan(root)
    class_names = sorted({c for classes in tree.values() for c in classes})
    for c in class_names:
        lacking = [name for name, classes in tree.items() if c not in classes]
        if lacking:
            notice(f"class {c!r} is missing in client(s) {', '.join(lacking)} of {root} (allowed)")
    raw: list[tuple[str, list[np.ndarray], np.ndarray]] = []
    sizes: Counter[tuple[int, int]] = Counter()
    for k, (name, classes) in enumerate(tree.items()):
        paths = [p for c in class_names for p in classes.get(c, [])]
        labels = np.array([class_names.index(c) for c in class_names for _ in classes.get(c, [])], dtype=np.int64)
        if max_per_client and len(paths) > max_per_client:
            keep = stratified_subset(labels, max_per_client, seed + 31 + k)
            paths, labels = [paths[i] for i in keep], labels[keep]
        arrays = [read_image(p) for p in paths]
        sizes.update((a.shape[1], a.shape[0]) for a in arrays)
        raw.append((name, arrays, labels))
    median_side = int(np.median([min(w, h) for (w, h), n in sizes.items() for _ in range(n)]))
    side = resolution or fitting_resolution(median_side)
    capped = not resolution and median_side > side
    hint = " (the default, for CPU time; --resolution 64 keeps more detail at a higher cost)" if capped else ""
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(3))
        notice(
            f"images in {root} have {len(sizes)} different sizes ({listed}{', ...' if len(sizes) > 3 else ''}); "
            f"all are centre-cropped to square and resized to {side}x{side}{hint}"
        )
    elif next(iter(sizes)) != (side, side):
        w, h = next(iter(sizes))
        notice(f"images in {root} are {w}x{h}; resized{' (centre-cropped)' if w != h else ''} to {side}x{side}{hint}")
    tensors = [to_tensor(arrays, side) for _, arrays, _ in raw]
    grey = all(is_grey(x) for x in tensors)
    clients = []
    for k, ((name, _, labels), x) in enumerate(zip(raw, tensors, strict=True)):
        x = (x[:, :1] if grey else x) * 2 - 1
        tr, te = holdout_split(labels, holdout, seed + 1 + k)
        if len(tr) == 0 or len(te) == 0:
            raise DataError(f"client folder {root / name} has {len(labels)} image(s); need at least 2 in some class")
        y = torch.from_numpy(labels)
        clients.append(ClientData(name, x[tr].contiguous(), y[tr], x[te].contiguous(), y[te]))
    return FederatedDataset(f"folder:{root}", clients, num_classes=len(class_names), class_names=class_names)
