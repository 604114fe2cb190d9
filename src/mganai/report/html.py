"""OUT/report.html: one self-contained page (images as base64 data URIs, no scripts, no network).

Rendered with Jinja2 from `templates/`, only from what `load_run` reads: the same
run directory always renders to the same bytes (no timestamps, no absolute paths
other than those stored in metrics.json's config).
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mganai.io import atomic_write_bytes
from mganai.report import plots
from mganai.report.load import RunOutput, is_number, load_run, num_clients, threat_sentence, victim_of
from mganai.report.tables import COLUMNS, METHOD_NOTES, best_marks, defense_label, fmt, verdict, with_derived

PHASES = {
    "data_s": "load data",
    "oracle_s": "train the oracle",
    "fl_and_passive_attacks_s": "FL + passive attacks",
    "fl_and_active_attack_s": "FL + active attack",
    "fl_and_attacks_side_by_side_s": "FL + all attacks (both traces at once)",
    "curves_s": "curves (inside the FL phases)",
    "evaluation_s": "score methods, draw grids",
    "total_s": "total",
}


@cache
def environment() -> jinja2.Environment:
    """Templates from the package, HTML-escaped, and a missing variable is an error rather than blank."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mganai.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%" if is_number(v) else "—"
    env.filters["sd"] = lambda v, kind: "" if not is_number(v) else f"{100 * v:.1f}" if kind == "cost" else f"{v:.3f}"
    return env


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def config_rows(config: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The config as (section, [(key, value)]) with run-level settings first, for a compact table."""
    top = [(k, _show(v)) for k, v in config.items() if not isinstance(v, dict)]
    sections = [(k, [(kk, _show(vv)) for kk, vv in v.items()]) for k, v in config.items() if isinstance(v, dict)]
    return [("run", top), *sections]


def _client_name(metrics: dict[str, Any], k: int) -> str:
    names = (metrics.get("data") or {}).get("clients")
    return str(names[k]) if isinstance(names, list) and 0 <= k < len(names) else ""


def _show(v: Any) -> str:
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def report_context(run: RunOutput) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Everything the template shows, and the plot PNGs (also saved beside the report)."""
    m = run.metrics
    cfg = run.config
    names = list(run.methods)
    rows = {name: with_derived(scores) for name, scores in run.methods.items()}
    pngs = {"fl_curve.png": plots.fl_curve(m)}
    if run.curves:
        pngs["attack_curves.png"] = plots.attack_curves(run.curves, names, num_clients(m))
    art = run.artefacts
    grids = [
        {"name": name, "note": METHOD_NOTES.get(name, ""), "scores": rows[name], "src": data_uri(run.image(file))}
        for name, file in art.get("grids", {}).items()
    ]
    reps = [{"client": r["client"], "src": data_uri(run.image(r["file"]))} for r in art.get("representatives", [])]
    timing = m["timing"]
    ctx = {
        "cfg": cfg,
        "n": num_clients(m),
        "victim": victim_of(m),
        "victim_name": _client_name(m, victim_of(m)),
        "threat": threat_sentence(m),
        "fl": m["fl"],
        "verdict": verdict(m),
        "defense": defense_label(m),
        "columns": COLUMNS,
        "rows": rows,
        "notes": METHOD_NOTES,
        "marks": best_marks(rows),
        "names": names,
        "grids": grids,
        "grid_columns": art.get("grid_columns"),
        "other_client": art.get("other_client"),
        "reps": reps,
        "oracle": m.get("oracle"),
        "curve_every": cfg.get("eval", {}).get("curve_every"),
        "curve_per_class": cfg.get("eval", {}).get("curve_samples_per_class"),
        "plots": {k: data_uri(v) for k, v in pngs.items()},
        "timing": [(PHASES.get(k, k), v) for k, v in timing.items() if k.endswith("_s")],
        "peak_rss_mb": timing.get("peak_rss_mb"),
        "device": timing.get("device"),
        "config_rows": config_rows(cfg),
    }
    return ctx, pngs


def render_report(out: str | Path) -> Path:
    """(Re-)write OUT/report.html and its plot PNGs from OUT's metrics.json and saved images."""
    run = load_run(out)
    ctx, pngs = report_context(run)
    html = environment().get_template("report.html.j2").render(**ctx)
    for name, png in pngs.items():
        atomic_write_bytes(run.path / name, png)
    path = run.path / "report.html"
    atomic_write_bytes(path, html.encode("utf-8"))
    return path
