"""One audit, end to end: data -> FL (with the attack observing) -> oracle evaluation -> outputs.

Every passive method watches the *same* FL trace; the active method needs FL to
behave differently, so it gets a second trace with the same seed. Everything is
seeded from `cfg.seed`, so the same config gives the same numbers.

The FL engine is a parameter (`FLRunner`): our own simulator by default, Flower's
when the audit runs inside a Flower ServerApp (`mganai.flower.app`). Attack set-up,
evaluation and outputs are the same code either way.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from mganai.attack.active import VictimIsolation
from mganai.attack.bank import RepresentativeBank
from mganai.attack.gan import CLASS_GAN, MGANAI, NO_IDENTITY, GanAttack
from mganai.attack.replay import RepresentativeReplay
from mganai.config import RunConfig
from mganai.data import FederatedDataset, check_victim, load_dataset
from mganai.eval.curves import CurveProbe, curves_csv
from mganai.eval.metrics import nn_ssim, oracle_rates, real_data_reference, sample_diversity
from mganai.eval.oracle import Oracle, train_oracle
from mganai.fl.model import Params, SharedCNN, params_of, seeded
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.server import FedAvgSimulator, FLResult, accuracy
from mganai.io import atomic_write_bytes, write_json, write_png
from mganai.report import render_report
from mganai.report.grids import class_rows, panel_grid

PASSIVE_GANS = {"mganai-passive": MGANAI, "no-identity": NO_IDENTITY, "class-gan": CLASS_GAN}
NEEDS_BANK = {"mganai-passive", "no-identity", "representatives"}


class Sampler(Protocol):
    def generate(self, classes: Tensor, seed: int) -> Tensor: ...


@dataclass
class Trace:
    """One FL run and the attack methods that watched it."""

    fl: FLResult
    samplers: dict[str, Sampler] = field(default_factory=dict)
    victim_accuracy: float = float("nan")  # the victim's model on the victim's held-out data
    victim_global_accuracy: float = float("nan")  # the victim's model on every client's held-out data
    seconds: float = 0.0
    bank: RepresentativeBank | None = None


def set_determinism() -> None:
    """Same seed, same numbers: deterministic kernels and no denormal slow paths."""
    torch.use_deterministic_algorithms(True)
    torch.set_flush_denormal(True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _progress(cfg: RunConfig, label: str) -> tuple[Callable[[int, float], None], Callable[[], None]]:
    """A tqdm bar over FL rounds (silent with --quiet)."""
    from tqdm import tqdm

    bar = tqdm(total=cfg.fl.rounds, desc=label, unit="round", disable=cfg.quiet, leave=False, dynamic_ncols=True)

    def tick(t: int, acc: float) -> None:
        bar.set_postfix(acc=f"{acc:.3f}")
        bar.update(1)

    return tick, bar.close


# (model, initial params, data, config, observers, dispatcher, on_round) -> the FL run
FLRunner = Callable[
    [
        nn.Module, Params, FederatedDataset, RunConfig, list[ServerObserver], ModelDispatcher | None,
        Callable[[int, float], None],
    ],
    FLResult,
]


def simulate(
    model: nn.Module,
    init: Params,
    data: FederatedDataset,
    cfg: RunConfig,
    observers: list[ServerObserver],
    dispatcher: ModelDispatcher | None,
    on_round: Callable[[int, float], None],
) -> FLResult:
    """The default FL engine: our FedAvg simulator in this process."""
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=observers, dispatcher=dispatcher)
    return sim.run(on_round=on_round)


def run_trace(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: list[str],
    active: bool,
    run_fl: FLRunner = simulate,
    probe: CurveProbe | None = None,
) -> Trace:
    """FedAvg (run by `run_fl`) with the given attack methods attached (the active one changes FL);
    `probe` scores them over rounds."""
    start = time.perf_counter()
    a = cfg.attack
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    observers: list[Any] = []
    samplers: dict[str, Sampler] = {}
    gans: list[GanAttack] = []
    bank = None
    if active or NEEDS_BANK & set(methods):
        bank = RepresentativeBank(model, shape, data.num_clients, a, cfg.seed)
        observers.append(bank)
    isolation = VictimIsolation(a.victim, a.start_round) if active else None
    if isolation:
        observers.insert(0, isolation)
        gan = GanAttack(MGANAI, model, bank, data.num_classes, data.num_clients, a.victim, shape, a, cfg.seed)
        gans.append(gan)
        samplers["mganai-active"] = gan
    for name, recipe in PASSIVE_GANS.items():
        if name in methods and not active:
            gan = GanAttack(recipe, model, bank, data.num_classes, data.num_clients, a.victim, shape, a, cfg.seed)
            gans.append(gan)
            samplers[name] = gan
    if "representatives" in methods and not active and bank is not None:
        samplers["representatives"] = RepresentativeReplay(bank, a.victim, shape)
    observers += gans
    if probe is not None:  # last: it sees each round after every attack has learnt from it
        probe.attach(samplers)
        observers.append(probe)
    tick, close = _progress(cfg, "FL + active attack" if active else "FL + passive attacks")
    try:
        fl = run_fl(model, init, data, cfg, observers, isolation, tick)
    finally:
        close()
    for gan in gans:
        gan.finish(fl.final_params)
    if probe is not None and probe.every > 0:
        probe.score(cfg.fl.rounds, "final")
    victim = data.clients[a.victim]
    victim_params = isolation.isolated if isolation and isolation.isolated is not None else fl.final_params
    heldout = data.heldout()
    trace = Trace(
        fl, samplers, accuracy(model, victim_params, victim.x_test, victim.y_test),
        accuracy(model, victim_params, heldout[0], heldout[1]), bank=bank,
    )
    trace.seconds = time.perf_counter() - start
    return trace


def evaluation_classes(num_classes: int, per_class: int) -> Tensor:
    """The fixed request every method answers: `per_class` samples of every class, class-major."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def run_audit(
    cfg: RunConfig, out: Path, run_fl: FLRunner = simulate, runtime: str = "mganai-simulator"
) -> dict[str, Any]:
    """Run FL (with `run_fl`) and every requested method, score them, write metrics.json and grids to `out`."""
    set_determinism()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, cfg.seed)
    check_victim(data, cfg.attack.victim)
    timing["data_s"] = time.perf_counter() - t0
    methods = [] if cfg.attack.methods == ["none"] else list(cfg.attack.methods)
    passive = [m for m in methods if m != "mganai-active"]
    oracle: Oracle | None = None
    if methods:  # the oracle needs only the data; trained first so the curves can use it during FL
        t1 = time.perf_counter()
        oracle = train_oracle(data, cfg.seed + cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs)
        timing["oracle_s"] = time.perf_counter() - t1
    probes: list[CurveProbe | None] = [None, None]
    if oracle is not None and cfg.eval.curve_every > 0:
        probes = [_probe(cfg, data, oracle) for _ in range(2)]  # one per FL trace
    base = run_trace(cfg, data, passive, active=False, run_fl=run_fl, probe=probes[0])
    timing["fl_and_passive_attacks_s"] = base.seconds
    traces = {m: base for m in passive}
    if "mganai-active" in methods:
        traces["mganai-active"] = run_trace(cfg, data, [], active=True, run_fl=run_fl, probe=probes[1])
        timing["fl_and_active_attack_s"] = traces["mganai-active"].seconds
    metrics: dict[str, Any] = {
        "fl": {
            "test_accuracy": base.fl.test_accuracy[-1],
            "rounds": cfg.fl.rounds,
            "test_accuracy_per_round": base.fl.test_accuracy,
            "victim_accuracy": base.victim_accuracy,
            "runtime": runtime,
        },
        "config": cfg.to_dict(),
        "data": describe(data),
    }
    metrics["artefacts"] = {}
    if oracle is not None:
        metrics["oracle"] = {
            "heldout_identity_accuracy": oracle.heldout_identity_accuracy,
            "heldout_class_accuracy": oracle.heldout_class_accuracy,
        }
        t2 = time.perf_counter()
        classes = evaluation_classes(data.num_classes, cfg.eval.samples_per_class)
        metrics["methods"] = {}
        reference = real_data_reference(data, cfg.attack.victim)
        metrics["reference"] = reference
        other = comparison_client(data, cfg.attack.victim)
        grid_cols = min(8, cfg.eval.samples_per_class)
        metrics["artefacts"] = {"grids": {}, "other_client": other, "grid_columns": grid_cols}
        for name in methods:
            trace = traces[name]
            samples = trace.samplers[name].generate(classes, cfg.seed + 4242)
            scores = oracle_rates(oracle, samples, classes, cfg.attack.victim)
            scores.update(nn_ssim(data, samples, classes, cfg.attack.victim))
            scores["diversity_ratio"] = sample_diversity(samples, classes) / reference["victim_diversity"]
            scores["fl_test_accuracy"] = trace.fl.test_accuracy[-1]
            scores["fl_accuracy_cost"] = base.fl.test_accuracy[-1] - trace.fl.test_accuracy[-1]
            scores["victim_accuracy"] = trace.victim_accuracy
            scores["victim_accuracy_cost"] = base.victim_accuracy - trace.victim_accuracy
            # An isolated victim's private model may fit its own style well; on the federation's task it pays.
            scores["victim_model_global_accuracy"] = trace.victim_global_accuracy
            metrics["methods"][name] = scores
            write_png(out / f"{name}.png", method_grid(data, cfg.attack.victim, other, samples, classes, grid_cols))
            metrics["artefacts"]["grids"][name] = f"{name}.png"
        bank = base.bank or traces.get("mganai-active", base).bank
        if bank is not None:
            metrics["artefacts"]["representatives"] = save_representatives(out, data, bank, cfg.attack.victim)
        if probes[0] is not None:
            points = sorted((p for pr in probes if pr for p in pr.points), key=lambda p: methods.index(p.method))
            atomic_write_bytes(out / "curves.csv", curves_csv(points))
            metrics["artefacts"]["curves"] = "curves.csv"
            timing["curves_s"] = sum(pr.seconds for pr in probes if pr)
        if "mganai-active" in traces:
            metrics["fl"]["active_test_accuracy_per_round"] = traces["mganai-active"].fl.test_accuracy
        timing["evaluation_s"] = time.perf_counter() - t2
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = peak_rss_mb()
    metrics["timing"] = timing
    write_json(out / "metrics.json", metrics)
    render_report(out)
    return metrics


def describe(data: FederatedDataset) -> dict[str, Any]:
    """What was actually loaded (a folder's client names, the resolution a default picked), for metrics.json."""
    return {
        "name": data.name,
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "clients": data.client_names(),
        "train_samples": [len(c.y_train) for c in data.clients],
        "heldout_samples": [len(c.y_test) for c in data.clients],
    }


def _probe(cfg: RunConfig, data: FederatedDataset, oracle: Oracle) -> CurveProbe:
    """Scores every method on a small fixed request every `eval.curve_every` rounds."""
    e = cfg.eval
    return CurveProbe(oracle, cfg.attack.victim, data.num_classes, e.curve_samples_per_class, cfg.seed + 777,
                      e.curve_every, cfg.fl.rounds)


def comparison_client(data: FederatedDataset, victim: int) -> int:
    """The client shown beside the victim: the next one (in id order after the victim) holding the most classes."""
    others = [(victim + i) % data.num_clients for i in range(1, data.num_clients)]
    return max(others, key=lambda k: len(data.clients[k].y_train.unique()))


def method_grid(data: FederatedDataset, victim: int, other: int, samples: Tensor, classes: Tensor, cols: int) -> Any:
    """Grid image, one row per class: `cols` real victim samples | the method's samples | another client's real ones."""
    real = [data.clients[k] for k in (victim, other)]
    rows = [class_rows(c.x_train, c.y_train, data.num_classes, cols) for c in real]
    return panel_grid([rows[0], class_rows(samples, classes, data.num_classes, cols), rows[1]])


def save_representatives(
    out: Path, data: FederatedDataset, bank: RepresentativeBank, victim: int
) -> list[dict[str, Any]]:
    """Per shown client (victim first, up to 4): its newest representatives | its real samples, one PNG each."""
    shown = [(victim + i) % data.num_clients for i in range(min(4, data.num_clients))]
    files = []
    for k in shown:
        x, y = bank.client(k)
        reps = class_rows(x.flip(0), y.flip(0), data.num_classes, 4)  # newest first
        real = class_rows(data.clients[k].x_train, data.clients[k].y_train, data.num_classes, 4)
        write_png(out / f"client{k}_representatives.png", panel_grid([reps, real]))
        files.append({"client": k, "file": f"client{k}_representatives.png"})
    return files
