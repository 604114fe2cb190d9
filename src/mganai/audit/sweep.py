"""`mganai sweep`: one audit per setting of a grid, and the privacy/utility picture across them.

A sweep is a base config (the run flags) and one or more `--vary KEY=V1,V2,...`;
every combination of the values is one audit, written to `OUT/<label>/` as by
`mganai run`. An undefended reference audit (`defense.name=none`) is added unless
the grid has one. Settings that mean nothing for a run are normalised before
duplicates are dropped (the DP parameters of a defense without DP), so
`--vary defense.name=none,secagg --vary defense.dp_noise=0.1,1` runs each of none
and secagg once.

What is reused: the data (loaded per audit: milliseconds) and the oracle, which
depends only on the data, the seed and `eval.oracle_*`, so it is trained once for
the whole sweep (`scoring.ORACLE_CACHE`). Every audit still runs its own FL and
attacks. Then OUT/sweep.csv (one row per audit and method: the varied settings,
ε, δ, linkage, the scores and FL accuracy), OUT/sweep.png (identity advantage,
joint success, victim identity, NN-SSIM to the victim, data-like rate and FL
accuracy against ε or the varied number, one line per defense and method) and,
through `mganai compare`, OUT/compare.html.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mganai.config import DefenseConfig, RunConfig, build_config
from mganai.defenses import DEFENSES
from mganai.errors import ConfigError
from mganai.io import atomic_write_bytes

SWEEP_METHODS = ["mganai-passive", "class-gan"]  # the default of a sweep: the headline attack and its class-level floor
CSV_SCORES = (
    "identity_advantage",
    "victim_identity_rate",
    "identity_as_others",
    "joint_success",
    "class_accuracy",
    "data_like_rate",
    "nn_ssim_victim",
    "nn_ssim_others",
)


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[Any]]]:
    """`KEY=V1,V2,...` -> (KEY, [values]); numbers become int or float, the rest stay strings."""
    out = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--vary {item!r}: expected KEY=V1,V2,... (e.g. defense.dp_noise=0.1,1)")
        out.append((key.strip(), [_value(v.strip()) for v in values.split(",") if v.strip()]))
    return out


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def _normalised(cfg: RunConfig) -> RunConfig:
    """DP parameters reset to their defaults where the defense adds no DP: the same audit is not run twice."""
    if DEFENSES[cfg.defense.name].dp is None:
        cfg = copy.deepcopy(cfg)
        default = DefenseConfig()
        cfg.defense.dp_noise, cfg.defense.dp_clip, cfg.defense.dp_delta = (
            default.dp_noise,
            default.dp_clip,
            default.dp_delta,
        )
    return cfg


def label(setting: dict[str, Any]) -> str:
    """A directory name for one setting: `defense.name=central-dp defense.dp_noise=0.1` -> central-dp_dp_noise0.1."""
    parts = []
    for key, value in setting.items():
        short = key.rpartition(".")[2]
        parts.append(str(value) if short == "name" else f"{short}{value}")
    return "_".join(parts).replace("/", "-") or "base"


def plan_sweep(base: RunConfig, vary: list[tuple[str, list[Any]]], out: Path) -> list[tuple[str, RunConfig]]:
    """The audits of a sweep: (label, config), the undefended reference first, duplicates dropped."""
    stored = {k: v for k, v in base.to_dict().items() if k != "out"}
    keys = [k for k, _ in vary]
    settings = [dict(zip(keys, combo)) for combo in itertools.product(*(values for _, values in vary))]
    if not any(s.get("defense.name", base.defense.name) == "none" for s in settings):
        settings.insert(0, {"defense.name": "none"})
    planned: list[tuple[str, RunConfig]] = []
    seen: list[RunConfig] = []
    for setting in settings:
        dp = DEFENSES[str(setting.get("defense.name", base.defense.name))].dp is not None
        name = label({k: v for k, v in setting.items() if dp or not k.startswith("defense.dp_")})
        cfg = _normalised(build_config(stored, {**setting, "out": str(out / name)}))
        key = _normalised(build_config(stored, setting))
        if key in seen:
            continue
        seen.append(key)
        planned.append((name, cfg))
    return planned


def run_sweep(
    planned: list[tuple[str, RunConfig]],
    out: Path,
    audit: Callable[[RunConfig, Path], dict[str, Any]],
    say: Callable[[str], None] = print,
) -> list[tuple[str, dict[str, Any]]]:
    """Run every audit (the oracle trained once) and write the sweep's CSV, plot and comparison."""
    from mganai.audit import scoring

    results = []
    scoring.ORACLE_CACHE = {}
    try:
        for i, (name, cfg) in enumerate(planned, 1):
            say(f"sweep {i}/{len(planned)}: {name}")
            results.append((name, audit(cfg, Path(cfg.out))))
    finally:
        scoring.ORACLE_CACHE = None
    write_summary(out, results, [str(Path(cfg.out)) for _, cfg in planned])
    return results


def rows(results: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per audit and method (an audit without methods: one row with FL only)."""
    out = []
    for name, m in results:
        d = m.get("defense", {})
        cfg = m["config"]
        common = {
            "run": name,
            "defense": d.get("name", "none"),
            "dp_noise": cfg.get("defense", {}).get("dp_noise") if d.get("epsilon") is not None else None,
            "dp_clip": cfg.get("defense", {}).get("dp_clip") if d.get("epsilon") is not None else None,
            "epsilon": d.get("epsilon"),
            "delta": d.get("delta"),
            "linkage_accuracy": d.get("linkage_accuracy"),
            "local_epochs": cfg["fl"]["local_epochs"],
            "local_steps": cfg["fl"].get("local_steps", 0),
            "batch_size": cfg["fl"]["batch_size"],
            "fl_test_accuracy": m["fl"]["test_accuracy"],
            "chance": 1 / len(m["data"]["clients"]),
        }
        for method, scores in (m.get("methods") or {"": {}}).items():
            out.append({**common, "method": method, **{k: scores.get(k) for k in CSV_SCORES}})
    return out


def write_summary(out: Path, results: list[tuple[str, dict[str, Any]]], dirs: list[str]) -> None:
    from mganai.report.compare import write_comparison
    from mganai.report.plots import sweep_plot

    table = rows(results)
    buf = io.StringIO()
    fields = ["run", "defense", "method", "dp_noise", "dp_clip", "epsilon", "delta", "linkage_accuracy"]
    fields += ["local_epochs", "local_steps", "batch_size", "fl_test_accuracy", "chance", *CSV_SCORES]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in table:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    atomic_write_bytes(out / "sweep.csv", buf.getvalue().encode("utf-8"))
    atomic_write_bytes(out / "sweep.png", sweep_plot(table))
    if len(dirs) > 0:
        write_comparison(dirs, out)


def finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
