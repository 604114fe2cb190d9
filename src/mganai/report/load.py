"""Reading a run's outputs back: metrics.json, curves.csv and the saved images.

The report never touches data, FL or the attack: everything it shows comes from
these files, so `mganai report OUT` works on any finished run directory.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from mganai.errors import ReportError
from mganai.eval.curves import CURVE_COLUMNS


@dataclass
class RunOutput:
    """One finished run as the report sees it."""

    path: Path
    metrics: dict[str, Any]
    curves: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.metrics["config"]

    @property
    def methods(self) -> dict[str, dict[str, float]]:
        return self.metrics.get("methods", {})

    @property
    def artefacts(self) -> dict[str, Any]:
        return self.metrics.get("artefacts", {})

    def image(self, name: str) -> bytes:
        """The bytes of a PNG this run saved; a missing one is a ReportError."""
        path = self.path / name
        if not path.is_file():
            raise ReportError(f"{path} is missing (the report needs it; re-run the audit)")
        return path.read_bytes()


def load_run(out: str | Path) -> RunOutput:
    """Read OUT/metrics.json (and OUT/curves.csv when the run wrote one); one-line errors otherwise."""
    out = Path(out)
    if not out.is_dir():
        raise ReportError(f"{out}: no such directory")
    path = out / "metrics.json"
    if not path.is_file():
        raise ReportError(f"{out}: no metrics.json here (not the output directory of 'mganai run')")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(metrics, dict):
        raise ReportError(f"{path} is not a metrics object")
    for key in ("fl", "config", "timing"):
        if key not in metrics:
            raise ReportError(f"{path} lacks '{key}' (not written by 'mganai run'?)")
    run = RunOutput(out, metrics)
    if "curves" in run.artefacts:
        run.curves = read_curves(out / run.artefacts["curves"])
    return run


def read_curves(path: Path) -> list[dict[str, Any]]:
    """Rows of curves.csv with numbers parsed."""
    if not path.is_file():
        raise ReportError(f"{path} is missing (the report needs it; re-run the audit)")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CURVE_COLUMNS:
            raise ReportError(f"{path}: expected columns {', '.join(CURVE_COLUMNS)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                parsed: dict[str, Any] = {k: float(v) for k, v in row.items() if k not in ("method", "round", "stage")}
                parsed.update(method=row["method"], stage=row["stage"], round=int(row["round"]))
            except (TypeError, ValueError):
                raise ReportError(f"{path}:{line}: not a number where one is expected") from None
            rows.append(parsed)
    return rows


def is_number(v: Any) -> TypeGuard[int | float]:
    """A finite int or float (NaN and missing values are shown as a dash and never ranked)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def num_clients(metrics: Mapping[str, Any]) -> int:
    """How many clients the run had: the loaded dataset's (folder: and faces bring their own), not `data.clients`.

    Runs written before metrics.json described the data fall back to the setting.
    """
    data = metrics.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("clients"), list):
        return len(data["clients"])
    return int(metrics["config"]["data"]["clients"])


def victim_of(metrics: Mapping[str, Any]) -> int:
    """The victim's index among the clients that trained (it differs from the setting when withheld public clients
    had lower indices); runs written before metrics.json said so fall back to the setting."""
    data = metrics.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("victim"), int):
        return int(data["victim"])
    return int(metrics["config"]["attack"]["victim"])


def threat_of(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The run's threat model (`mganai.threat`); runs written before metrics.json named it were updates-only."""
    threat = metrics.get("threat_model")
    return dict(threat) if isinstance(threat, Mapping) else {"name": "updates-only", "public": None}


def threat_sentence(metrics: Mapping[str, Any]) -> str:
    """One sentence saying which threat model the run's numbers belong to."""
    threat = threat_of(metrics)
    if threat.get("public"):
        return (
            f"Threat model {threat['name']}: besides every client's updates, the server holds public data from "
            f"people outside the federation, {threat['public']['description']}."
        )
    return (
        f"Threat model {threat['name']}: the server holds every client's updates, the models it sent and the "
        "training recipe, and no data of any kind (the paper's server)."
    )
