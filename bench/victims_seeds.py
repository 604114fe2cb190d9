"""Benchmark: do the results hold for other victims and seeds?

Runs the default audit for every (victim, seed) pair and prints, per method, the
mean and standard deviation of the identity advantage, joint success, identity
rate, class accuracy, data-like share and NN-SSIM.

    .venv/bin/python bench/victims_seeds.py --victims 0,3,7 --seeds 0,1,2 [extra flags]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

KEYS = (
    "identity_advantage",
    "joint_success",
    "victim_identity_rate",
    "class_accuracy",
    "data_like_rate",
    "nn_ssim_victim",
    "nn_ssim_others",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--victims", default="0,3,7")
    p.add_argument("--seeds", default="0,1,2")
    args, extra = p.parse_known_args()
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds.split(","):
            for victim in args.victims.split(","):
                out = Path(tmp) / f"v{victim}s{seed}"
                cmd = [
                    sys.executable,
                    "-m",
                    "mganai",
                    "run",
                    "--quiet",
                    "--victim",
                    victim,
                    "--seed",
                    seed,
                    "--out",
                    str(out),
                    *extra,
                ]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                metrics = json.loads((out / "metrics.json").read_text())
                for name, m in metrics["methods"].items():
                    for k in KEYS:
                        rows[name][k].append(m[k])
                summary = {n: round(m["joint_success"], 3) for n, m in metrics["methods"].items()}
                print(f"victim {victim} seed {seed}: joint success {summary}", flush=True)
    print(f"\n{'method':<17}" + "".join(f"{k:>26}" for k in KEYS))
    for name, vals in rows.items():
        cells = [f"{statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f}" for v in (vals[k] for k in KEYS)]
        print(f"{name:<17}" + "".join(f"{c:>26}" for c in cells))


if __name__ == "__main__":
    main()
