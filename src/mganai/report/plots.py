"""Plots as PNG bytes, drawn with matplotlib's headless Agg canvas (no display, no pyplot state).

Every figure is a pure function of the numbers it is given, and the PNGs carry no
timestamp, so re-rendering a report gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
PANELS = ("joint_success", "victim_identity_rate")


def method_colours(names: Sequence[str]) -> dict[str, str]:
    """One fixed colour per method, by position, shared by every plot of a report."""
    palette = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def to_png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes without metadata (no version string, no date)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def fl_curve(metrics: Mapping[str, Any]) -> bytes:
    """Shared-model test accuracy per round, without and (if it ran) with the active attack."""
    fl = metrics["fl"]
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.add_subplot()
    base = fl["test_accuracy_per_round"]
    rounds = range(1, len(base) + 1)
    ax.plot(rounds, base, color="#1f77b4", marker=".", label="no attack / passive attacks (identical FL)")
    if "active_test_accuracy_per_round" in fl:
        ax.plot(
            rounds,
            fl["active_test_accuracy_per_round"],
            color="#d62728",
            marker=".",
            label="active attack (victim isolated)",
        )
    start = metrics["config"]["attack"].get("start_round")
    if metrics.get("methods") and start is not None and 0 < start < len(base):
        ax.axvline(start + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.text(start + 0.7, 0.02, "attack starts", color="grey", fontsize=8, transform=ax.get_xaxis_transform())
    ax.set_xlabel("FL round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("test accuracy (held-out, all clients)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return to_png(fig)


def attack_curves(rows: Sequence[Mapping[str, Any]], methods: Sequence[str], num_clients: int) -> bytes:
    """Joint success and victim identity rate per method over rounds (stars: after the final GAN steps)."""
    colours = method_colours(methods)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for ax, key, title in zip(axes, PANELS, ("joint success", "victim identity rate")):
        for name in methods:
            during = [r for r in rows if r["method"] == name and r["stage"] == "fl"]
            final = [r for r in rows if r["method"] == name and r["stage"] == "final"]
            ax.plot(
                [r["round"] for r in during],
                [r[key] for r in during],
                marker="o",
                markersize=3,
                color=colours[name],
                label=name,
            )
            ax.scatter(
                [r["round"] for r in final],
                [r[key] for r in final],
                marker="*",
                s=90,
                color=colours[name],
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
            )
        if key == "victim_identity_rate":
            ax.axhline(1 / num_clients, color="grey", linestyle="--", linewidth=1)
            ax.text(
                0.01,
                1 / num_clients + 0.015,
                f"chance 1/{num_clients}",
                color="grey",
                fontsize=8,
                transform=ax.get_yaxis_transform(),
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("FL round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].text(
        0.99, 0.98, "★ after the final GAN steps", ha="right", va="top", fontsize=8, transform=axes[1].transAxes
    )
    return to_png(fig)


def compare_bars(
    runs: Sequence[str],
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    methods: Sequence[str],
    num_clients: Sequence[int],
) -> bytes:
    """Grouped bars: per method, one bar per run, for joint success and victim identity rate.

    `table[run][method]` holds that run's scores; a run without the method leaves a gap.
    """
    colours = method_colours(list(runs))
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    width = 0.8 / max(1, len(runs))
    for ax, key, title in zip(axes, PANELS, ("joint success", "victim identity rate")):
        for i, run in enumerate(runs):
            xs = [m + (i - (len(runs) - 1) / 2) * width for m in range(len(methods))]
            ys = [table[run].get(name, {}).get(key, float("nan")) for name in methods]
            ax.bar(xs, ys, width=width, color=colours[run], label=run)
        if key == "victim_identity_rate" and len(set(num_clients)) == 1:
            ax.axhline(1 / num_clients[0], color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(methods)), methods, rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    return to_png(fig)


SWEEP_PANELS = (
    ("identity_advantage", "identity advantage"),
    ("joint_success", "joint success"),
    ("victim_identity_rate", "victim identity"),
    ("nn_ssim_victim", "NN-SSIM victim"),
    ("data_like_rate", "data-like rate"),
    ("fl_test_accuracy", "FL test accuracy"),
)
SWEEP_X = ("epsilon", "dp_noise", "local_steps", "local_epochs", "batch_size")  # the first that varies is the x-axis


def sweep_x(rows: Sequence[Mapping[str, Any]]) -> str:
    """The x-axis of a sweep's plot: ε when every DP run has one, else the first setting that varies."""
    dp = [r for r in rows if r.get("dp_noise") is not None]
    if dp and all(isinstance(r.get("epsilon"), (int, float)) for r in dp):
        return "epsilon"
    for key in SWEEP_X[1:]:
        if len({r.get(key) for r in rows if r.get(key) is not None}) > 1:
            return key
    return "dp_noise"


def sweep_plot(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The privacy/utility picture of a sweep: one panel per score, one line per (defense, method); runs without
    a value on the x-axis (no DP: none, secagg, shuffle) are horizontal dashed lines; chance (and no advantage)
    as a dotted line."""
    x_key = sweep_x(rows)
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["defense"], r["method"]), []).append(r)
    colours = method_colours(list(dict.fromkeys(f"{d} {m}" for d, m in groups)))
    fig = Figure(figsize=(15, 7.5), layout="constrained")
    axes = fig.subplots(2, 3).flatten()
    for ax, (key, title) in zip(axes, SWEEP_PANELS):
        for (defense, method), rs in groups.items():
            name = f"{defense} {method}".strip()
            pts = sorted(
                (r[x_key], r[key]) for r in rs if isinstance(r.get(x_key), (int, float)) and r.get(key) is not None
            )
            if pts and (x_key != "epsilon" or rs[0].get("epsilon") is not None):
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="o",
                    color=colours[f"{defense} {method}"],
                    label=name,
                )
            elif rs[0].get(key) is not None:
                ax.axhline(
                    rs[0][key], linestyle="--", color=colours[f"{defense} {method}"], label=f"{name} (no {x_key})"
                )
        if key in ("joint_success", "victim_identity_rate") and rows:
            ax.axhline(rows[0]["chance"], linestyle=":", color="black", label="chance 1/N")
        if key == "identity_advantage":
            ax.axhline(0.0, linestyle=":", color="grey", label="no advantage")
        if x_key in ("epsilon", "dp_noise"):
            ax.set_xscale("log")
        ax.set_xlabel("ε (user-level, δ per run)" if x_key == "epsilon" else x_key)
        ax.set_title(title)
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize="small")
    return to_png(fig)
