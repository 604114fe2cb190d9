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
