"""Benchmark: full audits on real data (issue 6's done-when): wall time and joint success per method.

    .venv/bin/python bench/dataset_runs.py idx:/usr/share/datasets/fashion-mnist [extra mganai run flags...]
    .venv/bin/python bench/dataset_runs.py folder:DIR [extra flags...]

Run one at a time (each is a full `mganai run`, minutes on a CPU). Prints the
data shape, wall time, phases and per-method identity / class / joint success.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    dataset, extra = sys.argv[1], sys.argv[2:]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "mganai", "run", "--dataset", dataset, "--quiet", "--out", str(out), *extra]
        print("$", " ".join(cmd[2:]))
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        m = json.loads((out / "metrics.json").read_text())
    d = m["config"]["data"]
    print(
        f"dataset {dataset}: resolution {d['resolution'] or 'default'}, user_styles {d['user_styles']}, "
        f"max_per_client {d['max_per_client']}"
    )
    print(
        f"wall time {wall:.1f} s, peak RSS {m['timing']['peak_rss_mb']:.0f} MiB, "
        f"phases {json.dumps({k: round(v, 1) for k, v in m['timing'].items() if k.endswith('_s')})}"
    )
    print(
        f"FL test accuracy {m['fl']['test_accuracy']:.3f}; oracle held-out identity "
        f"{m['oracle']['heldout_identity_accuracy']:.3f}, class {m['oracle']['heldout_class_accuracy']:.3f}"
    )
    for name, s in m.get("methods", {}).items():
        print(
            f"  {name:<16} identity {s['victim_identity_rate']:.3f}  class {s['class_accuracy']:.3f}  "
            f"joint {s['joint_success']:.3f}"
        )


if __name__ == "__main__":
    main()
