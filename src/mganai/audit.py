"""One audit, end to end: data -> FL (with the attack observing) -> oracle evaluation -> outputs.

Every passive method watches the *same* FL trace; the active method needs FL to
behave differently, so it gets a second trace with the same seed. Everything is
seeded from `cfg.seed`, so the same config gives the same numbers.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from mganai.attack.active import VictimIsolation
from mganai.attack.bank import RepresentativeBank
from mganai.attack.gan import CLASS_GAN, MGANAI, NO_IDENTITY, GanAttack
from mganai.attack.replay import RepresentativeReplay
from mganai.config import RunConfig
from mganai.data import FederatedDataset, check_victim, load_dataset
from mganai.eval.metrics import nn_ssim, oracle_rates
from mganai.eval.oracle import train_oracle
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.server import FedAvgSimulator, FLResult, accuracy
from mganai.io import write_json, write_png
from mganai.report.grids import comparison_grid

PASSIVE_GANS = {"mganai-passive": MGANAI, "no-identity": NO_IDENTITY, "class-gan": CLASS_GAN}
NEEDS_BANK = {"mganai-passive", "no-identity", "representatives"}


class Sampler(Protocol):
    def generate(self, classes: Tensor, seed: int) -> Tensor: ...


@dataclass
class Trace:
    """One FL run and the attack methods that watched it."""

    fl: FLResult
    samplers: dict[str, Sampler] = field(default_factory=dict)
    victim_accuracy: float = float("nan")
    seconds: float = 0.0


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


def run_trace(cfg: RunConfig, data: FederatedDataset, methods: list[str], active: bool) -> Trace:
    """FedAvg with the given attack methods attached (the active one changes FL)."""
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
    tick, close = _progress(cfg, "FL + active attack" if active else "FL + passive attacks")
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=observers, dispatcher=isolation)
    try:
        fl = sim.run(on_round=tick)
    finally:
        close()
    for gan in gans:
        gan.finish(fl.final_params)
    victim = data.clients[a.victim]
    victim_params = isolation.isolated if isolation and isolation.isolated is not None else fl.final_params
    trace = Trace(fl, samplers, accuracy(model, victim_params, victim.x_test, victim.y_test))
    trace.seconds = time.perf_counter() - start
    return trace


def evaluation_classes(num_classes: int, per_class: int) -> Tensor:
    """The fixed request every method answers: `per_class` samples of every class, class-major."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def run_audit(cfg: RunConfig, out: Path) -> dict[str, Any]:
    """Run FL and every requested method, score them, write metrics.json and grids to `out`."""
    set_determinism()
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, cfg.seed)
    check_victim(data, cfg.attack.victim)
    timing["data_s"] = time.perf_counter() - t0
    methods = [] if cfg.attack.methods == ["none"] else list(cfg.attack.methods)
    passive = [m for m in methods if m != "mganai-active"]
    base = run_trace(cfg, data, passive, active=False)
    timing["fl_and_passive_attacks_s"] = base.seconds
    traces = {m: base for m in passive}
    if "mganai-active" in methods:
        traces["mganai-active"] = run_trace(cfg, data, [], active=True)
        timing["fl_and_active_attack_s"] = traces["mganai-active"].seconds
    metrics: dict[str, Any] = {
        "fl": {
            "test_accuracy": base.fl.test_accuracy[-1],
            "rounds": cfg.fl.rounds,
            "test_accuracy_per_round": base.fl.test_accuracy,
            "victim_accuracy": base.victim_accuracy,
        },
        "config": cfg.to_dict(),
        "data": describe(data),
    }
    if methods:
        t1 = time.perf_counter()
        oracle = train_oracle(data, cfg.seed + cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs)
        timing["oracle_s"] = time.perf_counter() - t1
        metrics["oracle"] = {
            "heldout_identity_accuracy": oracle.heldout_identity_accuracy,
            "heldout_class_accuracy": oracle.heldout_class_accuracy,
        }
        t2 = time.perf_counter()
        classes = evaluation_classes(data.num_classes, cfg.eval.samples_per_class)
        metrics["methods"] = {}
        for name in methods:
            trace = traces[name]
            samples = trace.samplers[name].generate(classes, cfg.seed + 4242)
            scores = oracle_rates(oracle, samples, classes, cfg.attack.victim)
            scores.update(nn_ssim(data, samples, classes, cfg.attack.victim))
            scores["fl_test_accuracy"] = trace.fl.test_accuracy[-1]
            scores["fl_accuracy_cost"] = base.fl.test_accuracy[-1] - trace.fl.test_accuracy[-1]
            scores["victim_accuracy"] = trace.victim_accuracy
            scores["victim_accuracy_cost"] = base.victim_accuracy - trace.victim_accuracy
            metrics["methods"][name] = scores
            write_png(out / f"{name}.png", method_grid(data, cfg.attack.victim, samples, classes, cfg.eval.samples_per_class))
        if "mganai-active" in traces:
            metrics["fl"]["active_test_accuracy_per_round"] = traces["mganai-active"].fl.test_accuracy
        timing["evaluation_s"] = time.perf_counter() - t2
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = peak_rss_mb()
    metrics["timing"] = timing
    write_json(out / "metrics.json", metrics)
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


def method_grid(data: FederatedDataset, victim: int, samples: Tensor, classes: Tensor, per_class: int, cols: int = 8) -> Any:
    """Grid image: per class, up to `cols` real victim samples then `cols` of the method's samples."""
    client = data.clients[victim]
    n = min(cols, per_class)
    real, fake = [], []
    for c in range(data.num_classes):
        mine = client.x_train[client.y_train == c][:n]
        if len(mine) < n:
            mine = torch.cat([mine, torch.ones(n - len(mine), *data.image_shape)])
        real.append(mine)
        fake.append(samples[classes == c][:n])
    return comparison_grid(real, fake)
