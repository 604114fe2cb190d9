"""Benchmark: the same audit on an idle machine and beside one CPU-bound process, per thread setting.

Issue 25's first item: torch's intra-op threads spin-wait, so a run that uses both
cores of a 2-core machine slows down many times when another process takes one of
them. This runs one small audit (the issue's: 4 clients, 6 rounds, mganai-passive,
loop engine) per variant, first idle, then while a `while True: pass` process keeps
one core busy, and prints wall times and the busy / idle ratio.

    .venv/bin/python bench/threads.py                                  # the variants below, idle then busy
    .venv/bin/python bench/threads.py --variants default,threads1      # some of them
    .venv/bin/python bench/threads.py --repeat 2 -- --methods mganai-passive,mganai-active   # other run flags

Other engineers' jobs share the machine: the load they add while a run lasts
(cores in use by processes other than the run and the busy loop, from /proc/stat)
is printed beside every time. `--wait-idle S` waits up to S seconds before each run
for that load to fall below 0.2 cores; `--max-other-load L` repeats a run (up to
`--tries` times) whose other load exceeded L cores, printing the discarded one. A variant is environment variables plus
`mganai run` flags, so the same script measures an older checkout too
(`PYTHONPATH=/path/to/old/src .venv/bin/python bench/threads.py --variants env-default,env-omp1,env-passive`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = ["--clients", "4", "--rounds", "6", "--methods", "mganai-passive", "--engine", "loop"]

# name -> (environment, extra flags, description)
VARIANTS: dict[str, tuple[dict[str, str], list[str], str]] = {
    "default": ({}, [], "this checkout's default"),
    "threads1": ({}, ["--threads", "1"], "--threads 1"),
    "threads2": ({}, ["--threads", "2"], "--threads 2"),
    "env-default": ({}, [], "no flag, no variable (an older checkout's default)"),
    "env-omp1": ({"OMP_NUM_THREADS": "1"}, [], "OMP_NUM_THREADS=1"),
    "env-passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, [], "OMP_WAIT_POLICY=PASSIVE"),
}
DEFAULT_VARIANTS = "default,threads1,threads2"


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system) a live process has used."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after = stat[stat.rindex(")") + 2 :].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def other_load(seconds: float, busy_before: int, run_cpu: float, loop_cpu: float) -> float:
    """Cores used, on average over `seconds`, by processes other than the run and the busy loop."""
    busy_after, _ = cpu_jiffies()
    machine = (busy_after - busy_before) / os.sysconf("SC_CLK_TCK")
    return max(0.0, (machine - run_cpu - loop_cpu) / seconds)


def wait_idle(limit: float) -> float:
    """Wait (up to `limit` s) until other processes use < 0.2 cores over 5 s; returns the last load seen."""
    deadline = time.monotonic() + limit
    while True:
        before, _ = cpu_jiffies()
        time.sleep(5)
        after, _ = cpu_jiffies()
        load = (after - before) / os.sysconf("SC_CLK_TCK") / 5
        if load < 0.2 or time.monotonic() > deadline:
            return load


def run_once(variant: str, extra: list[str], busy: bool) -> dict:
    env_add, flags, _ = VARIANTS[variant]
    env = {**os.environ, **env_add}
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            cmd = [sys.executable, "-m", "mganai", "run", "--quiet", "--out", str(out), *CONFIG, *flags, *extra]
            busy_before, _ = cpu_jiffies()
            cpu_before, loop_before = children_seconds(), process_seconds(loop.pid) if loop else 0.0
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            loop_cpu = process_seconds(loop.pid) - loop_before if loop else 0.0
            load = other_load(wall, busy_before, children_seconds() - cpu_before, loop_cpu)
            metrics = json.loads((out / "metrics.json").read_text())
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    timing = metrics["timing"]
    joint = {m: round(s["joint_success"], 3) for m, s in metrics.get("methods", {}).items()}
    return {"wall": wall, "oracle": timing.get("oracle_s", 0.0), "load": load, "joint": joint}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--repeat", type=int, default=1, help="runs per variant and condition (the median is kept)")
    p.add_argument("--conditions", default="idle,busy", help="idle, busy or both")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="S", help="wait up to S s for a quiet machine")
    p.add_argument("--max-other-load", type=float, default=None, metavar="L", help="redo runs beside more load")
    p.add_argument("--tries", type=int, default=5, help="most runs per measurement with --max-other-load")
    args, extra = p.parse_known_args()
    extra = [a for a in extra if a != "--"]
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    print(f"config: {' '.join(CONFIG + extra)}; {os.cpu_count()} CPUs", flush=True)
    walls: dict[tuple[str, str], float] = {}
    for condition in args.conditions.split(","):
        for variant in variants:
            runs = []
            for _ in range(args.repeat):
                for attempt in range(1, args.tries + 1):
                    quiet = wait_idle(args.wait_idle) if args.wait_idle else None
                    r = run_once(variant, extra, condition == "busy")
                    waited = f", load before {quiet:.2f}" if quiet is not None else ""
                    kept = args.max_other_load is None or r["load"] <= args.max_other_load or attempt == args.tries
                    print(
                        f"{condition:<5} {variant:<12} wall {r['wall']:6.1f} s  oracle {r['oracle']:6.1f} s  "
                        f"other load {r['load']:.2f} cores{waited}  joint {r['joint']}{'' if kept else '  (redone)'}",
                        flush=True,
                    )
                    if kept:
                        runs.append(r)
                        break
            walls[(condition, variant)] = statistics.median(r["wall"] for r in runs)
    print(f"\n{'variant':<12}{'idle s':>9}{'busy s':>9}{'busy/idle':>11}  what")
    for variant in variants:
        idle, busy = walls.get(("idle", variant)), walls.get(("busy", variant))
        ratio = f"{busy / idle:.2f}" if idle and busy else "—"
        cells = "".join(f"{v:>9.1f}" if v else f"{'—':>9}" for v in (idle, busy))
        print(f"{variant:<12}{cells}{ratio:>11}  {VARIANTS[variant][2]}")


if __name__ == "__main__":
    main()
