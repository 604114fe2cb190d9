"""What an audit writes besides numbers: each method's grid, the representatives, the curves, the report.

Every file is written atomically (`mganai.io`); the HTML report is rendered last,
from metrics.json and these files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from mganai.attack.bank import RepresentativeBank
from mganai.audit.traces import Trace
from mganai.data import FederatedDataset
from mganai.eval.curves import CurveProbe, curves_csv
from mganai.io import atomic_write_bytes, write_json, write_png
from mganai.report import render_report
from mganai.report.grids import class_rows, panel_grid

MAX_GRID_COLUMNS = 8  # real and generated samples shown per class row
SHOWN_CLIENTS = 4  # clients whose representatives are drawn, the victim first


def write_artefacts(
    out: Path,
    data: FederatedDataset,
    victim: int,
    samples: dict[str, Tensor],
    classes: Tensor,
    per_class: int,
    traces: list[Trace],
    probes: list[CurveProbe | None],
) -> dict[str, Any]:
    """Every method's grid, the representatives of a few clients, the curves; what metrics.json lists of them."""
    other = comparison_client(data, victim)
    cols = min(MAX_GRID_COLUMNS, per_class)
    artefacts: dict[str, Any] = {"grids": {}, "other_client": other, "grid_columns": cols}
    for name, x in samples.items():
        write_png(out / f"{name}.png", method_grid(data, victim, other, x, classes, cols))
        artefacts["grids"][name] = f"{name}.png"
    bank = next((t.bank for t in traces if t.bank is not None), None)
    if bank is not None:
        artefacts["representatives"] = save_representatives(out, data, bank, victim)
    if probes[0] is not None:
        order = list(samples)
        points = sorted((p for pr in probes if pr for p in pr.points), key=lambda p: order.index(p.method))
        atomic_write_bytes(out / "curves.csv", curves_csv(points))
        artefacts["curves"] = "curves.csv"
    return artefacts


def write_outputs(out: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, then the HTML report rendered from it."""
    write_json(out / "metrics.json", metrics)
    render_report(out)


def comparison_client(data: FederatedDataset, victim: int) -> int:
    """The client shown beside the victim: the next one (in id order after the victim) holding the most classes."""
    others = [(victim + i) % data.num_clients for i in range(1, data.num_clients)]
    return max(others, key=lambda k: len(data.clients[k].y_train.unique()))


def method_grid(
    data: FederatedDataset, victim: int, other: int, samples: Tensor, classes: Tensor, cols: int
) -> np.ndarray:
    """Grid image, one row per class: `cols` real victim samples | the method's samples | another client's real ones."""
    real = [data.clients[k] for k in (victim, other)]
    rows = [class_rows(c.x_train, c.y_train, data.num_classes, cols) for c in real]
    return panel_grid([rows[0], class_rows(samples, classes, data.num_classes, cols), rows[1]])


def save_representatives(
    out: Path, data: FederatedDataset, bank: RepresentativeBank, victim: int
) -> list[dict[str, Any]]:
    """Per shown client (victim first): its newest representatives | its real samples, one PNG each."""
    shown = [(victim + i) % data.num_clients for i in range(min(SHOWN_CLIENTS, data.num_clients))]
    files = []
    for k in shown:
        x, y = (t.cpu() for t in bank.client(k))
        reps = class_rows(x.flip(0), y.flip(0), data.num_classes, 4)  # newest first
        real = class_rows(data.clients[k].x_train, data.clients[k].y_train, data.num_classes, 4)
        write_png(out / f"client{k}_representatives.png", panel_grid([reps, real]))
        files.append({"client": k, "file": f"client{k}_representatives.png"})
    return files
