"""Draw a contact sheet of a folder dataset DIR/<client>/<class>/<image>: one row per client, a few images per class.

    .venv/bin/python scripts/dataset_grid.py DIR OUT.png [--per-class 3] [--zoom 2]

Rows are the clients in sorted order (as the loader numbers them), labelled on the
left; columns are the classes in sorted order, `--per-class` images each (the first
ones in file-name order), with a thin gap between classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

SUFFIXES = {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp"}


def dirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--per-class", type=int, default=3)
    p.add_argument("--zoom", type=int, default=2)
    p.add_argument("--side", type=int, default=0, help="cell side before zoom (default: the first image's)")
    args = p.parse_args()
    clients = dirs(args.root)
    classes = sorted({k.name for c in clients for k in dirs(c)})
    first = next(f for c in clients for k in dirs(c) for f in sorted(k.iterdir()) if f.suffix.lower() in SUFFIXES)
    side = (args.side or Image.open(first).size[0]) * args.zoom
    label, gap = 60, 4
    width = label + len(classes) * (args.per_class * side + gap)
    sheet = Image.new("RGB", (width, 14 + len(clients) * (side + 2)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for j, k in enumerate(classes):
        draw.text((label + j * (args.per_class * side + gap) + 2, 1), k, fill=(255, 255, 0))
    for i, c in enumerate(clients):
        y = 14 + i * (side + 2)
        draw.text((2, y + side // 2 - 5), c.name[:9], fill=(255, 255, 255))
        for j, k in enumerate(classes):
            files = sorted(f for f in (c / k).iterdir() if f.suffix.lower() in SUFFIXES) if (c / k).is_dir() else []
            for m, f in enumerate(files[: args.per_class]):
                img = Image.open(f).convert("RGB").resize((side, side), Image.NEAREST)
                sheet.paste(img, (label + j * (args.per_class * side + gap) + m * side, y))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({len(clients)} clients x {len(classes)} classes x {args.per_class})")


if __name__ == "__main__":
    main()
