"""Benchmark: do the results hold for other victims and seeds (and datasets)?

Runs one audit per (victim, seed) pair and prints, per method, the mean ± standard
deviation and the minimum over the pairs of the identity advantage, joint success,
identity rate, identity as others, class accuracy, data-like share, NN-SSIM and
diversity. A single GAN run says little; this is the number to quote.

    .venv/bin/python bench/victims_seeds.py --victims 0,3,7 --seeds 0,1,2 [mganai run flags]
    .venv/bin/python bench/victims_seeds.py --keep runs/grid-writers --jobs 2 \\
        --dataset folder:DIR --public-clients 3 --methods mganai-passive,class-gan

`--keep DIR` keeps every run in DIR/v<victim>s<seed> and reuses a finished one, so
an interrupted grid continues where it stopped; `--jobs N` runs N audits at once,
each with `--threads 1`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KEYS = (
    "identity_advantage",
    "joint_success",
    "victim_identity_rate",
    "identity_as_others",
    "class_accuracy",
    "data_like_rate",
    "nn_ssim_victim",
    "nn_ssim_others",
    "diversity_ratio",
)


def run_one(out: Path, victim: str, seed: str, extra: list[str], threads: list[str]) -> dict:
    """The metrics of one audit, run now unless `out` already holds a finished one."""
    done = out / "metrics.json"
    if not done.is_file():
        cmd = [sys.executable, "-m", "mganai", "run", "--quiet", "--overwrite", "--victim", victim, "--seed", seed]
        subprocess.run([*cmd, "--out", str(out), *threads, *extra], check=True, stdout=subprocess.DEVNULL)
    return json.loads(done.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--victims", default="0,3,7")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--keep", type=Path, help="keep the runs here and reuse finished ones")
    p.add_argument("--jobs", type=int, default=1, help="audits at once (each on one thread)")
    args, extra = p.parse_known_args()
    pairs = [(v, s) for s in args.seeds.split(",") for v in args.victims.split(",")]
    threads = ["--threads", "1"] if args.jobs > 1 else []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        with ThreadPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(lambda vs: run_one(root / f"v{vs[0]}s{vs[1]}", *vs, extra, threads), pairs))
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for metrics in runs:
        for name, m in metrics["methods"].items():
            for k in KEYS:
                rows[name][k].append(m[k])
    first = runs[0]
    print(f"threat model {first['threat_model']['name']}; {len(pairs)} (victim, seed) pairs: {pairs}")
    print(f"FL test accuracy {statistics.fmean(r['fl']['test_accuracy'] for r in runs):.3f} (mean)")
    print(f"total time per run {statistics.fmean(r['timing']['total_s'] for r in runs):.0f} s (mean)")
    for name, cols in rows.items():
        print(name)
        for k in KEYS:
            vals = cols[k]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            print(f"  {k:<22} {statistics.fmean(vals):.3f} ± {sd:.3f}   min {min(vals):.3f}")


if __name__ == "__main__":
    main()
