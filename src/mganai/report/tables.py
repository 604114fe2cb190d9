"""The comparison table: which numbers, which direction is 'more leakage', and what to mark.

"Best" is read from the auditor's question *how much leaked, at what cost*: the
highest identity advantage, identity, class, joint, data-like and victim-similarity
values and the lowest costs are marked. NN-SSIM to other clients and identity as
other clients are context (a blurry class average scores high against everyone; a
method that ignores whose data it draws is "the victim" as often for any request),
so they are shown but not ranked; the gaps (victim - others) are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mganai.methods import METHODS
from mganai.report.load import is_number, num_clients, victim_of

METHOD_NOTES = {name: m.note for name, m in METHODS.items()}

# Below this diversity_ratio a method's grid shows about one image per class. Measured (docs/experiments.md,
# 2026-12-03): every GAN grid seen so far from 0.13 to 0.60 repeats one image along each row; the victim's real
# images repeated as 2 distinct ones per class score 0.52-0.55, as 3 distinct ones 0.70-0.72, held-out real 0.92-1.03.
DIVERSITY_FLOOR = 0.7
SMOKE_RUN = (
    "Warning: smoke run (--quick): every stage ran on tiny budgets (few clients, rounds, GAN steps and oracle "
    "epochs); the numbers below only show that the tool works and measure no leakage."
)


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
        "identity_advantage",
        "identity advantage",
        "max",
        help="victim identity minus identity as others: what the samples say about the victim (0: nothing)",
        short="advantage",
    ),
    Column(
        "victim_identity_rate",
        "victim identity",
        "max",
        help="share that looks like data and that the oracle attributes to the victim",
        short="identity",
    ),
    Column(
        "identity_as_others",
        "identity as others",
        None,
        help="the same, for the same request made as another client (context: what any request gets)",
        short="as others",
    ),
    Column(
        "class_accuracy", "class accuracy", "max", help="share (data-like) assigned to the asked class", short="class"
    ),
    Column("joint_success", "joint success", "max", help="victim and asked class at once (data-like)", short="joint"),
    Column(
        "data_like_rate",
        "data-like",
        "max",
        help="share within the oracle's open-set threshold of some client's real images (the rest: like no client)",
        short="data-like",
    ),
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
        "spread among a class's samples, relative to the victim's real data (below 0.7: about one image per class)",
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
    """A few plain sentences: which method leaked the victim's data, how much, and at what cost to FL.

    Methods are ranked by identity advantage (how much more often the victim is named for a request as the
    victim than for the same request as another client); runs written before it existed, by joint success."""
    methods = metrics.get("methods") or {}
    smoke = [SMOKE_RUN] if metrics.get("smoke_run") else []
    warnings = _warnings(metrics)
    if not methods:
        return [*smoke, "No attack method ran (methods = none): this report shows federated learning only.", *warnings]
    n = num_clients(metrics)
    victim = victim_of(metrics)
    judged = _judged(methods)
    key = "identity_advantage" if judged else "joint_success"
    ranked = sorted(methods, key=lambda m: (-_num(methods[m].get(key)), -_num(methods[m].get("joint_success"))))
    top, s = ranked[0], methods[ranked[0]]
    collapse = collapse_warning(metrics)
    caveat = " (about one image per class: read the warning below)" if top in collapsed_methods(metrics) else ""
    if judged:
        out = [
            f"Most user-level leakage: {top}{caveat}. Asked for client {victim}'s data (the victim's), its samples "
            f"are credited to the victim {_pct(s['identity_advantage'])} more often than when the same request is "
            f"made as another client (identity advantage: {_pct(s['victim_identity_rate'])} as the victim against "
            f"{_pct(s.get('identity_as_others'))} as others; chance: 1/{n} = {_pct(1 / n)}, but a method that knows "
            "nothing of the victim gets an advantage of 0 whatever its identity). "
            f"{_pct(s['joint_success'])} of them are judged to be the victim's data of the requested class (joint "
            f"success); {_pct(s.get('data_like_rate'))} look like real data at all, the rest like no client's."
        ]
    else:
        out = [
            f"Most leakage: {top}{caveat}. {_pct(s['joint_success'])} of the samples it generated as client {victim} "
            f"(the victim) are judged by the oracle to be the victim's data of the requested class (joint success); "
            f"{_pct(s['victim_identity_rate'])} are attributed to the victim at all (chance: 1/{n} = {_pct(1 / n)})."
        ]
    if collapse is not None and caveat:  # the headline's caveat goes right under it
        out.append(collapse)
        warnings.remove(collapse)
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
            f"{_numbers(methods[p], judged)}."
        )
    if not _changes_fl(top) and active:
        a = methods[active[0]]
        out.append(
            f"The active variant (isolating the victim) reaches {_numbers(a, judged)}; shared-model accuracy "
            f"{_change(a.get('fl_accuracy_cost'))}, the victim's accuracy {_change(a.get('victim_accuracy_cost'))}."
        )
    reference = [m for m in ranked if _class_level(m)]
    if reference and top != reference[0]:
        c = methods[reference[0]]
        out.append(
            f"For reference, the class-level GAN (no user identity) reaches {_numbers(c, judged)}: "
            "the difference is what is user-level."
        )
    return smoke + out + warnings


def _judged(methods: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the run measured identity against requests as other clients (runs before it did not)."""
    return any(is_number(s.get("identity_advantage")) for s in methods.values())


def _numbers(s: Mapping[str, Any], judged: bool) -> str:
    """A method's headline numbers, for the verdict's later sentences."""
    rates = f"joint success {_pct(s.get('joint_success'))}, victim identity {_pct(s.get('victim_identity_rate'))}"
    return f"identity advantage {_pct(s.get('identity_advantage'))}, {rates}" if judged else rates


def advantage_warnings(metrics: Mapping[str, Any]) -> list[str]:
    """When no method names the victim clearly more often for the victim's request than for anyone else's."""
    methods = metrics.get("methods") or {}
    if not _judged(methods):
        return []
    n = num_clients(metrics)
    best = max(methods, key=lambda m: _num(methods[m].get("identity_advantage")))
    adv = methods[best].get("identity_advantage")
    if not is_number(adv) or adv > 1.5 / n:
        return []
    return [
        f"Warning: the largest identity advantage, {best}'s {_pct(adv)}, is at most 1.5/{n} = {_pct(1.5 / n)}: no "
        "method draws data the oracle calls the victim's clearly more often when asked for the victim than when "
        f"asked for another client, so its victim identity ({_pct(methods[best].get('victim_identity_rate'))}) is "
        "what any request gets, not a leak of the victim's data."
    ]


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
    out += advantage_warnings(metrics)
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
    collapse = collapse_warning(metrics)
    return out if collapse is None else [*out, collapse]


def collapsed_methods(metrics: Mapping[str, Any]) -> list[str]:
    """Methods whose samples show about one image per class (diversity_ratio below `DIVERSITY_FLOOR`)."""
    methods = metrics.get("methods") or {}
    return [
        m for m, s in methods.items() if is_number(s.get("diversity_ratio")) and s["diversity_ratio"] < DIVERSITY_FLOOR
    ]


def collapse_warning(metrics: Mapping[str, Any]) -> str | None:
    """The caveat for methods that draw about one image per class, whose rates say little about the victim's data."""
    collapsed = collapsed_methods(metrics)
    if not collapsed:
        return None
    methods, verb = metrics["methods"], "draws" if len(collapsed) == 1 else "draw"
    return (
        f"Warning: {', '.join(collapsed)} {verb} about one image per class (diversity "
        f"{', '.join(fmt(methods[m]['diversity_ratio'], 'rate') for m in collapsed)} of the victim's real data; "
        "two distinct real images per class give about 0.5, three about 0.7). Their rates say the oracle credits "
        "that one image per class to the victim, not that the victim's data came out in its variety: look at "
        "the grids before quoting them."
    )


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


def defense_group(metrics: Mapping[str, Any]) -> str:
    """The run's defense as set (name, and σ and C under DP), not as measured (ε, linkage): `mganai compare`
    averages runs only within one defense, as within one threat model."""
    d = metrics.get("defense") or {"name": "none"}
    name = str(d.get("name", "none"))
    if d.get("noise_multiplier") is not None:
        return f"{name} σ={d['noise_multiplier']:g} C={d['clipping_norm']:g}"
    return name
