"""Consistency: the same audit (data, seed, config) in Flower's simulation engine and in our simulator.

Runs `mganai flower-sim`, `mganai run --engine loop` (the client training the
ClientApp uses) and `mganai run` (default vmap engine, which agrees with loop to
float tolerance: the run-to-run "noise" of changing only the arithmetic order),
then prints every method's metrics side by side and the largest differences.

    .venv/bin/python bench/flower_consistency.py [extra flags for all runs, e.g. --clients 10 --rounds 40]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = (
    "victim_identity_rate",
    "class_accuracy",
    "joint_success",
    "nn_ssim_victim",
    "nn_ssim_others",
    "victim_accuracy",
)


def run(kind: str, extra: list[str], out: Path) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "mganai", *kind.split(), "--quiet", "--out", str(out), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text()), time.perf_counter() - t0


def main() -> None:
    extra = sys.argv[1:]
    kinds = {"flower-sim": "flower-sim", "sim-loop": "run --engine loop", "sim-vmap": "run --engine vmap"}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, kind in kinds.items():
            metrics, wall = run(kind, extra, Path(tmp) / name)
            results[name] = metrics
            print(f"{name:<11} wall {wall:6.1f} s  FL test accuracy {metrics['fl']['test_accuracy']:.4f}", flush=True)
    print(f"\n{'method':<16}{'metric':<22}" + "".join(f"{k:>12}" for k in kinds))
    worst = {"flower-sim vs sim-loop": 0.0, "sim-vmap vs sim-loop": 0.0}
    for method in results["sim-loop"].get("methods", {}):
        for key in KEYS:
            vals = {k: results[k]["methods"][method][key] for k in kinds}
            print(f"{method:<16}{key:<22}" + "".join(f"{v:>12.4f}" for v in vals.values()))
            for label, other in (("flower-sim vs sim-loop", "flower-sim"), ("sim-vmap vs sim-loop", "sim-vmap")):
                worst[label] = max(worst[label], abs(vals[other] - vals["sim-loop"]))
    fl = {k: results[k]["fl"]["test_accuracy_per_round"] for k in kinds}
    print(f"\nFL accuracy per round identical, flower-sim vs sim-loop: {fl['flower-sim'] == fl['sim-loop']}")
    for label, value in worst.items():
        print(f"largest metric difference, {label}: {value:.4f}")


if __name__ == "__main__":
    main()
