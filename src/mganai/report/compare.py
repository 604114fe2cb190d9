"""`mganai compare`: several finished runs (seeds, victims, defenses...) in one table and one plot.

Rows are (run, method); each run is labelled by its directory name and described
by the settings in which it differs from the others, by its threat model and by its
defense. With two or more runs of a method under one threat model and one defense
(name, σ, C), a mean ± standard deviation row is added per method, threat model and
defense (numbers of two threat models, or of two defenses, are never averaged together).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mganai.io import atomic_write_bytes
from mganai.report import plots
from mganai.report.html import data_uri, environment
from mganai.report.load import RunOutput, is_number, load_run, num_clients, threat_of
from mganai.report.tables import COLUMNS, best_marks, defense_group, defense_label, fmt, with_derived

IGNORED_SETTINGS = {"out", "quiet", "threads"}  # where a run was written, how chatty and how parallel: no number


@dataclass
class Comparison:
    """Runs, their labels and settings, and the (run, method) rows of the table."""

    runs: list[RunOutput]
    labels: list[str]
    settings: dict[str, str]  # label -> the differing settings, "key=value ..."
    threats: dict[str, str]  # label -> the run's threat model
    rows: list[dict[str, Any]]  # one per run and method: label, method, every column key
    methods: list[str]


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif k not in IGNORED_SETTINGS:
            out[f"{prefix}{k}"] = v
    return out


def differing_settings(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every config, in config order."""
    flats = [_flat(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]


def _labels(paths: Sequence[Path]) -> list[str]:
    names = [p.name or str(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def build(outs: Sequence[str | Path]) -> Comparison:
    """Load every run (one-line ReportError on the first bad one) and tabulate them."""
    runs = [load_run(o) for o in outs]
    labels = _labels([r.path for r in runs])
    keys = differing_settings([r.config for r in runs])
    settings = {}
    for label, run in zip(labels, runs):
        flat = _flat(run.config)
        settings[label] = " ".join(f"{k}={_short(flat.get(k))}" for k in keys)
    threats = {label: str(threat_of(run.metrics)["name"]) for label, run in zip(labels, runs)}
    rows, methods = [], []
    for label, run in zip(labels, runs):
        defense = run.metrics.get("defense") or {}
        for name, scores in run.methods.items():
            row: dict[str, Any] = {"run": label, "method": name, "threat": threats[label]}
            row |= {"defense": defense_label(run.metrics), "defense_group": defense_group(run.metrics)}
            rows.append({**row, "epsilon": defense.get("epsilon"), **with_derived(scores)})
            if name not in methods:
                methods.append(name)
    return Comparison(runs, labels, settings, threats, rows, methods)


def _short(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def summary_rows(cmp: Comparison) -> list[dict[str, Any]]:
    """Per method, threat model and defense present in 2+ runs: mean and (sample) standard deviation of every
    column."""

    def group(r: dict[str, Any]) -> tuple[str, str]:
        return r["threat"], r.get("defense_group", "none")

    out = []
    for name in cmp.methods:
        for threat, defense in dict.fromkeys(group(r) for r in cmp.rows):
            rows = [r for r in cmp.rows if r["method"] == name and group(r) == (threat, defense)]
            if len(rows) >= 2:
                out.append(_mean_row(name, threat, defense, rows))
    return out


def _mean_row(name: str, threat: str, defense: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation of every column over `rows` (one method, threat model and defense)."""
    row: dict[str, Any] = {"run": f"mean of {len(rows)} runs", "method": name, "threat": threat, "defense": defense}
    for col in COLUMNS:
        vals = [r[col.key] for r in rows if is_number(r.get(col.key))]
        row[col.key] = statistics.fmean(vals) if vals else float("nan")
        row[col.key + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else float("nan")
    return row


def mean_sd(row: dict[str, Any], col: Any) -> str:
    """A summary row's cell: mean ± sample standard deviation ('0.705±0.120', '+1.0±0.5 pts')."""
    mean, sd = fmt(row.get(col.key), col.kind), row.get(col.key + "_sd")
    if not is_number(sd):
        return mean
    return mean.replace(" pts", f"±{100 * sd:.1f} pts") if col.kind == "cost" else f"{mean}±{sd:.3f}"


def text_table(cmp: Comparison) -> str:
    """The table for the terminal; the rows 'mean of N runs' show mean ± sample standard deviation."""
    width = max([len(label) for label in cmp.labels] + [len("mean of 99 runs")]) + 2
    head = f"{'run':<{width}}{'method':<17}{'threat model':<14}" + "".join(f"{c.short:>14}" for c in COLUMNS)
    lines = [head + "  defense"]
    for r in cmp.rows:
        cells = "".join(f"{fmt(r.get(c.key), c.kind):>14}" for c in COLUMNS)
        lines.append(f"{r['run']:<{width}}{r['method']:<17}{r['threat']:<14}{cells}  {r['defense']}")
    for r in summary_rows(cmp):
        cells = "".join(f"{mean_sd(r, c):>14}" for c in COLUMNS)
        lines.append(f"{r['run']:<{width}}{r['method']:<17}{r['threat']:<14}{cells}  {r['defense']}")
    if len(lines) == 1:
        lines.append("(no attack methods in these runs; threat models: " + _runs_threats(cmp) + ")")
    return "\n".join(lines)


def _runs_threats(cmp: Comparison) -> str:
    return ", ".join(f"{label} {threat}" for label, threat in cmp.threats.items())


def comparison_csv(cmp: Comparison) -> bytes:
    """One row per run and method, then per method in 2+ runs a 'mean of N runs' row with `<column>_sd`."""
    buf = io.StringIO()
    keys = [c.key for c in COLUMNS]
    fields = ["run", "settings", "threat", "defense", "epsilon", "method", *keys, *(k + "_sd" for k in keys)]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in cmp.rows:
        w.writerow({**r, "settings": cmp.settings[r["run"]]})
    for r in summary_rows(cmp):
        w.writerow({**r, "settings": ""})
    return buf.getvalue().encode("utf-8")


def write_comparison(outs: Sequence[str | Path], dest: str | Path) -> tuple[Comparison, Path]:
    """Write DEST/compare.html, compare.csv and compare.png for the given run directories."""
    cmp = build(outs)
    dest = Path(dest)
    table = {label: dict(run.methods) for label, run in zip(cmp.labels, cmp.runs)}
    png = plots.compare_bars(cmp.labels, table, cmp.methods, [num_clients(r.metrics) for r in cmp.runs])
    # Best marks among the runs of each method: which setting leaked most, at what cost.
    marks = {name: best_marks({r["run"]: r for r in cmp.rows if r["method"] == name}) for name in cmp.methods}
    html = (
        environment()
        .get_template("compare.html.j2")
        .render(
            cmp=cmp,
            columns=COLUMNS,
            marks=marks,
            summary=summary_rows(cmp),
            plot=data_uri(png),
            fl=[(label, run.metrics["fl"], defense_label(run.metrics)) for label, run in zip(cmp.labels, cmp.runs)],
        )
    )
    atomic_write_bytes(dest / "compare.csv", comparison_csv(cmp))
    atomic_write_bytes(dest / "compare.png", png)
    atomic_write_bytes(dest / "compare.html", html.encode("utf-8"))
    return cmp, dest / "compare.html"
