"""The comparison table: which numbers, which direction is 'more leakage', and what to mark.

"Best" is read from the auditor's question *how much leaked, at what cost*: the
highest identity, class, joint and victim-similarity values and the lowest costs
are marked. NN-SSIM to other clients is context (a blurry class average scores
high against everyone), so it is shown but not ranked; the gap victim - others is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mganai.methods import METHODS
from mganai.report.load import is_number, num_clients

METHOD_NOTES = {name: m.note for name, m in METHODS.items()}


def _changes_fl(name: str) -> bool:
    """A method that isolates the victim (an unknown name, from another version's run, counts as passive)."""
    return name in METHODS and METHODS[name].changes_fl


def _class_level(name: str) -> bool:
    return name in METHODS and METHODS[name].class_level


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None  # "max", "min" or None (shown, not ranked)
    kind: str = "rate"  # "rate" (0..1), "ssim" or "cost" (accuracy points lost)
    help: str = ""
    short: str = ""  # header in the terminal table


COLUMNS = (
    Column(
        "victim_identity_rate",
        "victim identity",
        "max",
        help="share the oracle attributes to the victim",
        short="identity",
    ),
    Column(
        "class_accuracy", "class accuracy", "max", help="share the oracle assigns to the asked class", short="class"
    ),
    Column("joint_success", "joint success", "max", help="victim and asked class at once: the headline", short="joint"),
    Column(
        "nn_ssim_victim", "NN-SSIM victim", "max", "ssim", "similarity to the nearest real victim sample", "ssim(v)"
    ),
    Column("nn_ssim_others", "NN-SSIM others", None, "ssim", "same, to other clients' samples (context)", "ssim(o)"),
    Column(
        "ssim_gap", "SSIM gap v−o", "max", "ssim", "victim minus others: closer to the victim than to others?", "gap"
    ),
    Column(
        "diversity_ratio",
        "diversity",
        None,
        "rate",
        "spread among a class's samples, relative to the victim's real data (near 0: mode collapse)",
        "div",
    ),
    Column(
        "fl_accuracy_cost",
        "FL accuracy lost",
        "min",
        "cost",
        "shared-model test accuracy lost vs. no attack",
        "FL lost",
    ),
    Column(
        "victim_accuracy_cost", "victim accuracy lost", "min", "cost", "the victim's own accuracy lost", "victim lost"
    ),
)


def with_derived(scores: Mapping[str, Any]) -> dict[str, Any]:
    """A method's scores plus the derived SSIM gap."""
    row = dict(scores)
    v, o = row.get("nn_ssim_victim"), row.get("nn_ssim_others")
    row["ssim_gap"] = v - o if is_number(v) and is_number(o) else float("nan")
    return row


def best_marks(rows: Mapping[str, Mapping[str, Any]], columns: tuple[Column, ...] = COLUMNS) -> dict[str, set[str]]:
    """Per ranked column, the names of the rows holding the best value (ties all marked; needs 2+ rows)."""
    marks: dict[str, set[str]] = {}
    for col in columns:
        values: dict[str, Any] = {name: r.get(col.key) for name, r in rows.items() if is_number(r.get(col.key))}
        if col.better is None or len(values) < 2:
            marks[col.key] = set()
            continue
        # Round first: values equal to the shown precision are equally good.
        rounded = {name: round(float(v), 6) for name, v in values.items()}
        best = max(rounded.values()) if col.better == "max" else min(rounded.values())
        winners = {name for name, v in rounded.items() if v == best}
        marks[col.key] = winners if len(winners) < len(rounded) else set()  # all equal: nothing stands out
    return marks


def fmt(value: Any, kind: str) -> str:
    """How a number is shown: rates and SSIM with 3 decimals, costs in accuracy points."""
    if not is_number(value):
        return "—"
    if kind == "cost":
        points = round(100 * value, 1)
        return "0.0 pts" if points == 0 else f"{points:+.1f} pts".replace("-", "−")
    return f"{value:.3f}".replace("-", "−")


def verdict(metrics: Mapping[str, Any]) -> list[str]:
    """A few plain sentences: which method leaked the victim's data, how much, and at what cost to FL."""
    methods = metrics.get("methods") or {}
    warnings = _warnings(metrics)
    if not methods:
        return ["No attack method ran (methods = none): this report shows federated learning only.", *warnings]
    n = num_clients(metrics)
    victim = metrics["config"]["attack"]["victim"]
    ranked = sorted(methods, key=lambda m: -_num(methods[m].get("joint_success")))
    top, s = ranked[0], methods[ranked[0]]
    out = [
        (
            f"Most leakage: {top}. {_pct(s['joint_success'])} of the samples it generated as client {victim} "
            f"(the victim) are judged by the oracle to be the victim's data of the requested class (joint success); "
            f"{_pct(s['victim_identity_rate'])} are attributed to the victim at all (chance: 1/{n} = {_pct(1 / n)})."
        )
    ]
    cost, vcost = s.get("fl_accuracy_cost"), s.get("victim_accuracy_cost")
    out.append(
        f"Cost to FL of {top}: shared-model test accuracy {_pct(s.get('fl_test_accuracy'))} "
        f"({_change(cost)} vs. no attack); the victim's own accuracy {_change(vcost)}."
    )
    passive = [m for m in ranked if not _changes_fl(m)]
    active = [m for m in ranked if _changes_fl(m)]
    if _changes_fl(top) and passive:
        p = passive[0]
        out.append(
            f"Without touching FL (undetectable by the clients), the best method is {p}: "
            f"joint success {_pct(methods[p]['joint_success'])}, "
            f"victim identity {_pct(methods[p]['victim_identity_rate'])}."
        )
    if not _changes_fl(top) and active:
        a = methods[active[0]]
        out.append(
            f"The active variant (isolating the victim) reaches joint success {_pct(a['joint_success'])}, "
            f"victim identity {_pct(a['victim_identity_rate'])}; shared-model accuracy "
            f"{_change(a.get('fl_accuracy_cost'))}, the victim's accuracy {_change(a.get('victim_accuracy_cost'))}."
        )
    reference = [m for m in ranked if _class_level(m)]
    if reference and top != reference[0]:
        c = methods[reference[0]]
        out.append(
            f"For reference, the class-level GAN (no user identity) reaches joint success {_pct(c['joint_success'])}, "
            f"victim identity {_pct(c['victim_identity_rate'])}: the difference is what is user-level."
        )
    return out + warnings


def _warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Signs that the numbers above should not be trusted: FL that diverged, methods whose images are invalid."""
    out = []
    acc = [a for a in metrics["fl"].get("test_accuracy_per_round", []) if is_number(a)]
    if acc and max(acc) - acc[-1] > 0.3:
        best = max(acc)
        out.append(
            f"Warning: federated learning diverged (test accuracy fell from {_pct(best)} in round "
            f"{acc.index(best) + 1} to {_pct(acc[-1])}); the attack numbers describe a broken run."
        )
    broken = [m for m, s in (metrics.get("methods") or {}).items() if not is_number(s.get("nn_ssim_victim"))]
    if broken:
        out.append(
            f"Warning: {', '.join(broken)} produced invalid images (their NN-SSIM is undefined, e.g. NaN pixels); "
            "their rates are not meaningful."
        )
    out += realism_warnings(metrics)
    return out


def realism_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """Methods whose images do not look like data, though the oracle may still score them well."""
    ref = metrics.get("reference") or {}
    floor = ref.get("heldout_nn_ssim_others")
    out = []
    methods = metrics.get("methods") or {}
    unlike = [
        m
        for m, s in methods.items()
        if is_number(floor) and is_number(s.get("nn_ssim_victim")) and s["nn_ssim_victim"] < floor
    ]
    if unlike:
        out.append(
            f"Warning: the samples of {', '.join(unlike)} are less like the victim's images (nearest-neighbour SSIM "
            f"{', '.join(fmt(methods[m]['nn_ssim_victim'], 'ssim') for m in unlike)}) than another client's real "
            f"images of the same class are ({fmt(floor, 'ssim')}; the victim's own held-out images: "
            f"{fmt(ref.get('heldout_nn_ssim_victim'), 'ssim')}). Their oracle rates may come from patterns that fool "
            "classifiers rather than from recognisable data: look at the grids before quoting them."
        )
    collapsed = [m for m, s in methods.items() if is_number(s.get("diversity_ratio")) and s["diversity_ratio"] < 0.25]
    if collapsed:
        out.append(
            f"Warning: {', '.join(collapsed)} draw nearly the same image whatever the noise (diversity "
            f"{', '.join(fmt(methods[m]['diversity_ratio'], 'rate') for m in collapsed)} of the victim's real data): "
            "mode collapse; the samples show one image per class, not the victim's variety."
        )
    return out


def _change(cost: Any) -> str:
    """An accuracy cost as a signed change in points: cost 0.02 -> '−2.0 pts'."""
    if not is_number(cost):
        return "—"
    return "unchanged" if round(100 * cost, 1) == 0 else fmt(-cost, "cost")


def _num(v: Any) -> float:
    return float(v) if is_number(v) else float("-inf")


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if is_number(v) else "—"


def defense_label(metrics: Mapping[str, Any]) -> str:
    """The run's defense in a few words, with its ε (or linkage): shown in every row of the report and compare.

    Runs written before defenses existed count as undefended."""
    d = metrics.get("defense") or {"name": "none"}
    name = d.get("name", "none")
    if d.get("noise_multiplier") is not None:
        eps = d.get("epsilon")
        budget = f"ε={eps:.3g}" if is_number(eps) else "ε=∞"
        return f"{name} σ={d['noise_multiplier']:g} C={d['clipping_norm']:g}, {budget} at δ={d['delta']:.2g}"
    if is_number(d.get("linkage_accuracy")):
        return f"{name}, linkage {d['linkage_accuracy']:.2f}"
    return str(name)
