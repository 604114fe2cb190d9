"""Benchmark: FL round throughput (rounds/s) of the vmap engine, the loop engine and Flower's simulation engine.

FL only (no attack), default `mganai run` FL settings (2 local epochs, batches of
16, SGD with momentum, all clients every round), the same model, initial weights,
data and seed in all three runtimes:

- vmap:   our simulator, all clients of a round in one batched computation;
- loop:   our simulator, one client after another;
- vmap-func (optional): the vmap engine forced onto its generic torch.func.vmap(grad)
          path, without the stacked grouped-conv fast path;
- flower: Flower's simulation engine (Ray, in-process), one virtual SuperNode per
          client, `--workers` ClientApps at a time, each training its client with
          the loop engine's code; the server is `AuditStrategy` with no observer.

Data: the embedded digits over 10 writers (the default run) grown to N clients by
`mganai.data.resample.resampled_federation`: client k holds a same-size bootstrap
resample of writer k mod 10 (~140 training images at 16x16), so the per-client work
is that of the default run at every N. Each round also scores the new shared model
on the 10 writers' held-out images (the same in all runtimes).

Each (runtime, N) runs in its own subprocess, so its peak RSS is its own: `rss`
is the process's ru_maxrss, `tree` the peak summed RSS of the process and all its
descendants, sampled every 0.2 s (Flower's Ray workers are separate processes).
Rounds/s excludes the first `--warmup` rounds (Ray start-up, node registration,
first-call allocations); the printed `first` column is the time to the end of
those rounds.

    OMP_NUM_THREADS=1 .venv/bin/python bench/throughput.py [--clients 10,100,1000] [--runtimes vmap,loop,flower]
        [--rounds 10:8,100:4,1000:3] [--flower-rounds 1000:3] [--workers 1] [--threads 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_ROUNDS = {10: 8, 100: 4, 1000: 3}


def parse_rounds(text: str) -> dict[int, int]:
    """'10:8,100:4' -> {10: 8, 100: 4}; a bare '5' -> the same for every N."""
    if ":" not in text:
        return {n: int(text) for n in DEFAULT_ROUNDS} | {0: int(text)}
    return {int(k): int(v) for k, v in (part.split(":") for part in text.split(","))}


def rounds_for(table: dict[int, int], n: int) -> int:
    return table.get(n, table.get(0, DEFAULT_ROUNDS.get(n, 3)))


# --- memory: this process and its descendants, from /proc ----------------------------------------


def tree_rss_mb(root: int) -> float:
    """Summed VmRSS of `root` and every descendant process, in MiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields.get("PPid", "0").strip())
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    keep, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in keep]
        keep.update(children)
        frontier += children
    return sum(rss.get(p, 0) for p in keep) / 1024


class PeakSampler:
    """Samples `tree_rss_mb` of this process every `every` seconds in a thread; `.peak` is the max seen."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak = every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_mb(os.getpid()))


# --- one measurement (runs in a subprocess) -------------------------------------------------------


def measure(runtime: str, clients: int, rounds: int, warmup: int, workers: int) -> dict:
    """Run FL for `rounds` rounds in `runtime`; per-round timestamps, rounds/s and memory."""
    import torch

    from mganai.audit import simulate
    from mganai.config import RunConfig
    from mganai.data.resample import grown_dataset
    from mganai.device import set_determinism
    from mganai.fl.model import SharedCNN, params_of, seeded

    cfg = RunConfig()
    cfg.quiet = True
    cfg.fl.rounds = rounds
    cfg.fl.engine = "loop" if runtime == "flower" else runtime
    if runtime == "vmap-func":  # the vmap engine without its stacked fast path: torch.func.vmap(grad(...)) only
        import functools

        from mganai.fl.client import ENGINES, train_vmap

        ENGINES[runtime] = functools.partial(train_vmap, fused=False)
    set_determinism()  # as `mganai run` and every Flower ClientApp do
    data = grown_dataset(cfg, clients)
    c, h, _ = data.image_shape
    model = SharedCNN(c, data.num_classes, h)
    init = params_of(seeded(lambda: SharedCNN(c, data.num_classes, h), cfg.seed))
    stamps: list[float] = []
    accs: list[float] = []

    def on_round(t: int, acc: float) -> None:
        stamps.append(time.perf_counter())
        accs.append(acc)

    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        if runtime == "flower":
            run_flower(cfg, model, init, clients, workers, on_round)
        else:
            simulate(model, init, data, cfg, [], None, on_round)
    timed = len(stamps) - warmup
    rate = timed / (stamps[-1] - stamps[warmup - 1]) if warmup and timed > 0 else len(stamps) / (stamps[-1] - t0)
    return {
        "runtime": runtime,
        "clients": clients,
        "rounds": len(stamps),
        "timed_rounds": timed,
        "first_s": stamps[warmup - 1] - t0 if warmup else 0.0,
        "rounds_per_s": rate,
        "round_s": [b - a for a, b in zip([t0, *stamps[:-1]], stamps)],
        "accuracy": accs[-1],
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tree_mb": sampler.peak,
        "threads": torch.get_num_threads(),
    }


def run_flower(cfg, model, init, clients: int, workers: int, on_round) -> None:
    """FL in Flower's simulation engine: our ServerApp main calls `flower_fl`, the ClientApps train like `loop`."""
    import functools
    import logging

    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from mganai.data.resample import grown_dataset
    from mganai.flower.app import flower_fl, make_client_app

    logging.getLogger("flwr").setLevel(logging.WARNING)
    dataset = functools.partial(grown_dataset, clients=clients)
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: object) -> None:
        flower_fl(grid)(model, init, dataset(cfg), cfg, [], None, on_round)

    backend = {
        "init_args": {"num_cpus": workers, "include_dashboard": False, "_node_ip_address": "127.0.0.1"},
        "client_resources": {"num_cpus": 1.0, "num_gpus": 0.0},
    }
    run_simulation(
        server_app=server,
        client_app=make_client_app(cfg, dataset=dataset),
        num_supernodes=clients,
        backend_config=backend,  # type: ignore[arg-type]
        verbose_logging=False,
    )


# --- the driver -------------------------------------------------------------------------------------


def run_child(runtime: str, clients: int, rounds: int, args: argparse.Namespace) -> dict:
    """One measurement in a fresh subprocess (its own peak RSS, no state shared between runtimes)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        runtime,
        "--clients",
        str(clients),
        "--rounds",
        str(rounds),
        "--warmup",
        str(args.warmup),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"runtime": runtime, "clients": clients, "error": " | ".join(tail)}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", default="10,100,1000")
    parser.add_argument("--runtimes", default="vmap,loop,flower")
    parser.add_argument("--rounds", default="10:8,100:4,1000:3", help="rounds per N ('N:R,...'), warm-up included")
    parser.add_argument("--flower-rounds", default="", help="rounds for Flower if fewer ('N:R,...')")
    parser.add_argument("--warmup", type=int, default=1, help="first rounds left out of rounds/s")
    parser.add_argument("--workers", type=int, default=1, help="Flower ClientApps at once (Ray actors, 1 CPU each)")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of every runtime")
    parser.add_argument("--repeat", type=int, default=1, help="measure each (runtime, N) this many times; best kept")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a measurement is abandoned")
    parser.add_argument("--json", default="", help="also write all results to this file")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        out = measure(args.child, int(args.clients), int(args.rounds), args.warmup, args.workers)
        print(json.dumps(out))
        return

    rounds, flower_rounds = parse_rounds(args.rounds), parse_rounds(args.flower_rounds) if args.flower_rounds else {}
    sizes = [int(n) for n in args.clients.split(",")]
    runtimes = args.runtimes.split(",")
    print(
        f"threads={args.threads} flower-workers={args.workers} warm-up rounds={args.warmup} "
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict[tuple[str, int], list[dict]] = {}
    for n in sizes:
        for rt in runtimes:
            r = rounds_for(flower_rounds, n) if rt == "flower" and flower_rounds else rounds_for(rounds, n)
            for _ in range(args.repeat):
                res = run_child(rt, n, max(r, args.warmup + 1), args)
                results.setdefault((rt, n), []).append(res)
                if "error" in res:
                    print(f"  {rt:<7} N={n:<5} FAILED: {res['error']}", flush=True)
                    break
                print(
                    f"  {rt:<7} N={n:<5} {res['rounds_per_s']:8.3f} rounds/s  rounds={res['rounds']} "
                    f"round s={[round(s, 2) for s in res['round_s']]}  rss={res['rss_mb']:.0f} MiB "
                    f"tree={res['tree_mb']:.0f} MiB  acc={res['accuracy']:.3f}  load={os.getloadavg()[0]:.2f}",
                    flush=True,
                )

    def best(rt: str, n: int) -> dict | None:
        ok = [x for x in results.get((rt, n), []) if "error" not in x]
        return max(ok, key=lambda x: x["rounds_per_s"]) if ok else None

    def med(rt: str, n: int) -> float | None:
        ok = [x["rounds_per_s"] for x in results.get((rt, n), []) if "error" not in x]
        return statistics.median(ok) if ok else None

    print(
        f"\n{'N':>6} {'runtime':<8} {'rounds/s best':>14} {'median':>8} {'s/round':>8} {'first s':>8} "
        f"{'timed':>6} {'peak RSS':>9} {'tree RSS':>9}"
    )
    for n in sizes:
        for rt in runtimes:
            b = best(rt, n)
            if b is None:
                print(f"{n:>6} {rt:<8} {'failed':>14}")
                continue
            print(
                f"{n:>6} {rt:<8} {b['rounds_per_s']:>14.4f} {med(rt, n):>8.4f} {1 / b['rounds_per_s']:>8.2f} "
                f"{b['first_s']:>8.1f} {b['timed_rounds']:>6} {b['rss_mb']:>7.0f}Mi {b['tree_mb']:>7.0f}Mi"
            )
    print()
    for n in sizes:
        v = best("vmap", n)
        for other in ("loop", "flower", "vmap-func"):
            o = best(other, n)
            if v and o:
                print(f"N={n:<5} vmap / {other:<6} = {v['rounds_per_s'] / o['rounds_per_s']:6.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}@{k[1]}": v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
