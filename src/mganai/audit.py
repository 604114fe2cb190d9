"""One audit, end to end: data -> FL (with the attack observing) -> oracle evaluation -> outputs.

Every passive method watches the *same* FL trace; the active method needs FL to
behave differently, so it gets a second trace with the same seed. With two or more
threads the two traces run side by side, one thread each (`run_side_by_side`).
Everything is seeded from `cfg.seed`, so the same config gives the same numbers.

The FL engine is a parameter (`FLRunner`): our own simulator by default, Flower's
when the audit runs inside a Flower ServerApp (`mganai.flower.app`). Attack set-up,
evaluation and outputs are the same code either way.

With our simulator, a run can be checkpointed between rounds (`RunControl`): the
oracle, the finished passive trace and the current trace's (or both traces')
simulator and observers go to OUT/checkpoint.pt (`mganai.checkpoint`), and a resumed
run continues from there to the same numbers, bit for bit, as a run that was never
interrupted.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from mganai import checkpoint
from mganai.attack.active import VictimIsolation
from mganai.attack.bank import RepresentativeBank
from mganai.attack.concurrent import ConcurrentGans
from mganai.attack.gan import CLASS_GAN, MGANAI, NO_IDENTITY, GanAttack
from mganai.attack.replay import RepresentativeReplay
from mganai.config import RunConfig
from mganai.data import FederatedDataset, check_victim, load_dataset
from mganai.device import resolve_device, set_determinism
from mganai.eval.curves import CurveProbe, curves_csv
from mganai.eval.metrics import nn_ssim, oracle_rates, real_data_reference, sample_diversity
from mganai.eval.oracle import Oracle, OracleNet, train_oracle
from mganai.fl.model import Params, SharedCNN, clone_params, params_of, seeded
from mganai.fl.observers import ModelDispatcher, ServerObserver
from mganai.fl.server import FedAvgSimulator, FLResult, accuracy
from mganai.io import atomic_write_bytes, write_json, write_png
from mganai.report import render_report
from mganai.report.grids import class_rows, panel_grid

SIDES = ("passive", "active")  # the two FL traces of an audit, in the order `run_side_by_side` keeps them
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
    objects: dict[str, Any] = field(
        default_factory=dict
    )  # what a checkpoint keeps of the attack (`TraceSetup.stateful`)


@dataclass
class RunControl:
    """How a command-line run is checkpointed, stopped and resumed (our simulator only).

    `stop()` returns a signal number once the user asked the run to stop (checked
    between rounds, never mid-round); `resume` is a loaded checkpoint to continue from.
    """

    checkpoint_every: int = 0  # save every K rounds (0: only when stopped)
    resume: dict[str, Any] | None = None
    stop: Callable[[], int | None] = lambda: None


class RunInterrupted(Exception):
    """The run stopped at a round boundary on request, after saving a checkpoint."""

    def __init__(self, signum: int, path: Path, where: str):
        super().__init__(f"stopped after {where}; checkpoint {path}")
        self.signum, self.path, self.where = signum, path, where


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
        nn.Module,
        Params,
        FederatedDataset,
        RunConfig,
        list[ServerObserver],
        ModelDispatcher | None,
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


@dataclass
class TraceSetup:
    """The model, observers and samplers of one FL trace, before it runs."""

    model: nn.Module
    init: Params
    observers: list[Any]
    samplers: dict[str, Sampler]
    gans: ConcurrentGans
    bank: RepresentativeBank | None
    isolation: VictimIsolation | None
    probe: CurveProbe | None

    def stateful(self) -> dict[str, Any]:
        """Every object whose state a checkpoint keeps, by a stable name."""
        objects: dict[str, Any] = {"bank": self.bank, "isolation": self.isolation, "probe": self.probe}
        objects.update({name: s for name, s in self.samplers.items() if isinstance(s, GanAttack)})
        return {k: v for k, v in objects.items() if v is not None}


def setup_trace(
    cfg: RunConfig, data: FederatedDataset, methods: list[str], active: bool, probe: CurveProbe | None = None
) -> TraceSetup:
    """Build the shared model and the attack observers of a trace (the active one changes FL), all on
    `cfg.device`."""
    a = cfg.attack
    shape = data.image_shape
    device = resolve_device(cfg.device)
    model = SharedCNN(shape[0], data.num_classes, shape[1]).to(device)
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed).to(device))
    observers: list[Any] = []
    samplers: dict[str, Sampler] = {}
    gans: list[GanAttack] = []
    bank = None
    if active or NEEDS_BANK & set(methods):
        bank = RepresentativeBank(model, shape, data.num_clients, a, cfg.seed)
        observers.append(bank)
    isolation = VictimIsolation(a.victim, a.start_round, a.isolation_rebase_every) if active else None
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
    group = ConcurrentGans(gans)
    observers.append(group)
    if probe is not None:  # last: it sees each round after every attack has learnt from it
        probe.attach(samplers)
        observers.append(probe)
    return TraceSetup(model, init, observers, samplers, group, bank, isolation, probe)


def run_trace(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: list[str],
    active: bool,
    run_fl: FLRunner = simulate,
    probe: CurveProbe | None = None,
    phase: PhaseRunner | None = None,
) -> Trace:
    """FedAvg (run by `run_fl`, or by `phase` when checkpointing) with the given attack methods attached
    (the active one changes FL); `probe` scores them over rounds."""
    start = time.perf_counter()
    setup = setup_trace(cfg, data, methods, active, probe)
    tick, close = _progress(cfg, "FL + active attack" if active else "FL + passive attacks")
    try:
        if phase is not None:
            fl = phase(setup, data, tick)
        else:
            fl = run_fl(setup.model, setup.init, data, cfg, setup.observers, setup.isolation, tick)
    finally:
        close()
    setup.gans.finish(fl.final_params)
    return close_trace(cfg, data, setup, fl, start)


def close_trace(cfg: RunConfig, data: FederatedDataset, setup: TraceSetup, fl: FLResult, start: float) -> Trace:
    """A trace whose FL and GAN training are done: its last curve point, its victim's model's accuracy."""
    if setup.probe is not None and setup.probe.every > 0:
        setup.probe.score(cfg.fl.rounds, "final")
    victim = data.clients[cfg.attack.victim]
    isolation = setup.isolation
    victim_params = isolation.isolated if isolation and isolation.isolated is not None else fl.final_params
    heldout = data.heldout()
    trace = Trace(
        fl,
        setup.samplers,
        accuracy(setup.model, victim_params, victim.x_test, victim.y_test),
        accuracy(setup.model, victim_params, heldout[0], heldout[1]),
        bank=setup.bank,
    )
    trace.objects = setup.stateful()
    trace.seconds = time.perf_counter() - start
    return trace


def run_side_by_side(
    cfg: RunConfig,
    data: FederatedDataset,
    passive: list[str],
    probes: list[CurveProbe | None],
    ckpt: AuditCheckpoints | None,
) -> tuple[Trace, Trace]:
    """The passive and the active trace at once, round by round, each on one CPU thread (the passive trace's
    GANs on threads of their own).

    The traces are independent, and the active trace's one GAN gains little from a second intra-op thread
    (~1.3x), so on two cores this finishes sooner than one trace after the other. Each trace computes
    exactly what it computes alone at one thread: the attacks train as in an OMP_NUM_THREADS=1 run.
    """
    start = time.perf_counter()
    setups = [setup_trace(cfg, data, passive, False, probes[0]), setup_trace(cfg, data, [], True, probes[1])]
    sims = [FedAvgSimulator(s.model, s.init, data, cfg.fl, cfg.seed, s.observers, s.isolation) for s in setups]
    results = [FLResult(final_params=sim.params) for sim in sims]
    if ckpt is not None:
        ckpt.resume_side_by_side(sims, results, setups)
    tick, close = _progress(cfg, "FL + passive and active attacks")
    for t, acc in enumerate(results[0].test_accuracy):
        tick(t, acc)
    try:
        with ThreadPoolExecutor(2) as pool:

            def both(work: Callable[[int], Any]) -> list[Any]:
                futures = [pool.submit(_on_one_thread, work, i) for i in range(2)]
                return [f.result() for f in futures]  # re-raises a trace's error here

            for t in range(len(results[0].test_accuracy), cfg.fl.rounds):
                tick(t, both(lambda i: sims[i].next_round(results[i]))[0])
                if ckpt is not None:
                    ckpt.between_rounds_side_by_side(t, sims, results, setups)
            for sim, result in zip(sims, results):
                result.final_params = clone_params(sim.params)
            both(lambda i: setups[i].gans.finish(results[i].final_params))
            passive_trace, active_trace = both(lambda i: close_trace(cfg, data, setups[i], results[i], start))
    finally:
        close()
    return passive_trace, active_trace


def _on_one_thread(work: Callable[[int], Any], i: int) -> Any:
    torch.set_num_threads(1)  # this worker thread only
    return work(i)


# (trace setup, data, progress tick) -> the FL run of one trace, checkpointed
PhaseRunner = Callable[[TraceSetup, FederatedDataset, Callable[[int, float], None]], FLResult]


class AuditCheckpoints:
    """Saves an audit's state to OUT/checkpoint.pt between rounds, and resumes from it.

    `common` holds what outlives a trace (oracle, the finished passive trace,
    timing); each save adds the current trace: its name, the simulator, the FL
    result so far, every stateful observer and torch's global RNG.
    """

    def __init__(self, cfg: RunConfig, out: Path, control: RunControl):
        self.cfg, self.control = cfg, control
        self.path = out / checkpoint.FILENAME
        self.saved = control.resume
        self.common: dict[str, Any] = {}

    def phase(self, name: str) -> PhaseRunner:
        """A PhaseRunner for trace `name` ('passive' or 'active') that saves and stops between rounds."""

        def run(setup: TraceSetup, data: FederatedDataset, tick: Callable[[int, float], None]) -> FLResult:
            cfg = self.cfg
            sim = FedAvgSimulator(setup.model, setup.init, data, cfg.fl, cfg.seed, setup.observers, setup.isolation)
            result = None
            if self.saved is not None and self.saved["phase"] == name and self.saved["current"] is not None:
                result = self._restore(self.saved["current"], sim, setup)
                for t, acc in enumerate(result.test_accuracy):
                    tick(t, acc)

            def after_round(t: int, result: FLResult) -> None:
                stop, every = self.control.stop(), self.control.checkpoint_every
                if stop or (every and (t + 1) % every == 0):
                    self.save(name, sim, result, setup)
                if stop:
                    raise RunInterrupted(stop, self.path, f"round {t + 1} of {cfg.fl.rounds} of the {name} FL trace")

            return sim.run(on_round=tick, after_round=after_round, result=result)

        return run

    def stop_before(self, name: str) -> None:
        """Between two traces: if a stop was asked for, save (trace `name` not begun) and stop."""
        signum = self.control.stop()
        if signum:
            checkpoint.save(self.path, {"config": self.cfg.to_dict(), "phase": name, "current": None, **self.common})
            raise RunInterrupted(signum, self.path, "the passive FL trace")

    def save(self, name: str, sim: FedAvgSimulator, result: FLResult, setup: TraceSetup) -> None:
        current = self._current(sim, result, setup)
        checkpoint.save(self.path, {"config": self.cfg.to_dict(), "phase": name, "current": current, **self.common})

    def between_rounds_side_by_side(
        self, t: int, sims: list[FedAvgSimulator], results: list[FLResult], setups: list[TraceSetup]
    ) -> None:
        """After round t of both traces (`run_side_by_side`): save both if asked to, and stop if asked to."""
        stop, every = self.control.stop(), self.control.checkpoint_every
        if stop or (every and (t + 1) % every == 0):
            current = {name: self._current(*state) for name, state in zip(SIDES, zip(sims, results, setups))}
            checkpoint.save(
                self.path, {"config": self.cfg.to_dict(), "phase": "both", "current": current, **self.common}
            )
        if stop:
            raise RunInterrupted(stop, self.path, f"round {t + 1} of {self.cfg.fl.rounds} of both FL traces")

    def resume_side_by_side(
        self, sims: list[FedAvgSimulator], results: list[FLResult], setups: list[TraceSetup]
    ) -> None:
        """Continue both traces from a checkpoint saved by `between_rounds_side_by_side`, if that is what we have."""
        if self.saved is None or self.saved["phase"] != "both":
            return
        try:
            currents = [self.saved["current"][name] for name in SIDES]
        except (KeyError, TypeError) as exc:
            raise checkpoint.CheckpointError(checkpoint.corrupt(self.path, exc)) from None
        for i, current in enumerate(currents):
            results[i] = self._restore(current, sims[i], setups[i])
        if len(results[0].test_accuracy) != len(results[1].test_accuracy):
            problem = ValueError("its two traces stopped at different rounds")
            raise checkpoint.CheckpointError(checkpoint.corrupt(self.path, problem)) from None

    @staticmethod
    def _current(sim: FedAvgSimulator, result: FLResult, setup: TraceSetup) -> dict[str, Any]:
        return {
            "sim": sim.state_dict(),
            "fl": result.state_dict(),
            "objects": {k: checkpoint.capture(o) for k, o in setup.stateful().items()},
            "torch_rng": torch.get_rng_state(),
        }

    def _restore(self, current: dict[str, Any], sim: FedAvgSimulator, setup: TraceSetup) -> FLResult:
        """One trace's simulator and observers as saved by `_current`; the FL result so far."""
        try:
            sim.load_state_dict(current["sim"])
            result = FLResult.from_state_dict(current["fl"])
            load_objects(setup.stateful(), current["objects"])
            torch.set_rng_state(current["torch_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise checkpoint.CheckpointError(checkpoint.corrupt(self.path, exc)) from None
        return result


def load_objects(objects: dict[str, Any], states: dict[str, Any]) -> None:
    """Restore every stateful object of a trace from a checkpoint (the same names must be there)."""
    if set(objects) != set(states):
        raise ValueError(f"the checkpoint holds {sorted(states)}, this run has {sorted(objects)}")
    for k, obj in objects.items():
        checkpoint.restore(obj, states[k])


def restore_trace(
    cfg: RunConfig, data: FederatedDataset, methods: list[str], probe: CurveProbe | None, saved: dict[str, Any]
) -> Trace:
    """The finished passive trace, from a checkpoint: nothing is retrained."""
    setup = setup_trace(cfg, data, methods, False, probe)
    load_objects(setup.stateful(), saved["objects"])
    fl = FLResult.from_state_dict(saved["fl"])
    trace = Trace(
        fl,
        setup.samplers,
        float(saved["victim_accuracy"]),
        float(saved["victim_global_accuracy"]),
        float(saved["seconds"]),
        setup.bank,
    )
    trace.objects = setup.stateful()
    return trace


def trace_state(trace: Trace) -> dict[str, Any]:
    return {
        "fl": trace.fl.state_dict(),
        "victim_accuracy": trace.victim_accuracy,
        "victim_global_accuracy": trace.victim_global_accuracy,
        "seconds": trace.seconds,
        "objects": {k: checkpoint.capture(o) for k, o in trace.objects.items()},
    }


def restore_oracle(data: FederatedDataset, state: dict[str, Any], device: torch.device) -> Oracle:
    oracle = Oracle(OracleNet(data.image_shape[0], data.num_clients, data.num_classes).to(device), 0.0, 0.0)
    checkpoint.restore(oracle, state)
    return oracle


def faults(fl: FLResult, victim: int) -> dict[str, Any]:
    """Faulty clients of one trace, for metrics.json."""
    return {
        "rejected_updates": len(fl.rejected),
        "rejections": fl.rejected,
        "dropped_updates": len(fl.dropped),
        "victim_absent_rounds": fl.absent_rounds(victim),
    }


def evaluation_classes(num_classes: int, per_class: int) -> Tensor:
    """The fixed request every method answers: `per_class` samples of every class, class-major."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def run_audit(
    cfg: RunConfig,
    out: Path,
    run_fl: FLRunner = simulate,
    runtime: str = "mganai-simulator",
    control: RunControl | None = None,
) -> dict[str, Any]:
    """Run FL (with `run_fl`) and every requested method, score them, write metrics.json and grids to `out`.

    With `control` (our simulator only), the run saves checkpoints, stops on request
    (`RunInterrupted`) and resumes from `control.resume`; the checkpoint is removed
    once the outputs are written."""
    device = resolve_device(cfg.device)
    set_determinism(device)
    ckpt = AuditCheckpoints(cfg, out, control) if control is not None else None
    saved = control.resume if control is not None else None
    if saved is not None and saved.get("device", "cpu") != str(device):
        raise checkpoint.CheckpointError(
            f"{out}: the run started on {saved.get('device', 'cpu')} and would continue on {device}; "
            f"resume it with --device {saved.get('device', 'cpu')}"
        )
    timing: dict[str, Any] = dict(saved.get("timing", {})) if saved is not None else {}
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, cfg.seed)
    check_victim(data, cfg.attack.victim)
    timing["data_s"] = time.perf_counter() - t0
    methods = [] if cfg.attack.methods == ["none"] else list(cfg.attack.methods)
    passive = [m for m in methods if m != "mganai-active"]
    oracle: Oracle | None = None
    timing["device"] = str(device)
    if ckpt is not None:
        ckpt.common["timing"] = timing
        ckpt.common["device"] = str(device)  # a checkpoint's tensors live there: resumed on the same device only
        if saved is not None:
            timing["resumed"] = True
    if methods:  # the oracle needs only the data; trained first so the curves can use it during FL
        t1 = time.perf_counter()
        if saved is not None and "oracle" in saved:
            oracle = _checked(ckpt, lambda: restore_oracle(data, saved["oracle"], device))
        else:
            oracle = train_oracle(data, cfg.seed + cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs, device=device)
        timing["oracle_s"] = time.perf_counter() - t1
        if ckpt is not None:
            ckpt.common["oracle"] = checkpoint.capture(oracle)
    probes: list[CurveProbe | None] = [None, None]
    if oracle is not None and cfg.eval.curve_every > 0:
        probes = [_probe(cfg, data, oracle) for _ in range(2)]  # one per FL trace
    # Both traces at once when there are two cores to share (our simulator only); a resumed run keeps its mode.
    together = (
        "mganai-active" in methods
        and bool(passive)
        and run_fl is simulate
        and (saved["phase"] == "both" if saved is not None else torch.get_num_threads() > 1)
    )
    if together:
        base, active_trace = run_side_by_side(cfg, data, passive, probes, ckpt)
        timing["fl_and_attacks_side_by_side_s"] = base.seconds
    elif saved is not None and saved["phase"] == "active":
        base = _checked(ckpt, lambda: restore_trace(cfg, data, passive, probes[0], saved["passive"]))
    else:
        base = run_trace(
            cfg,
            data,
            passive,
            active=False,
            run_fl=run_fl,
            probe=probes[0],
            phase=ckpt.phase("passive") if ckpt else None,
        )
        timing["fl_and_passive_attacks_s"] = base.seconds
    traces = {m: base for m in passive}
    if together:
        traces["mganai-active"] = active_trace
    elif "mganai-active" in methods:
        if ckpt is not None:
            ckpt.common["passive"] = trace_state(base)
            ckpt.stop_before("active")
        traces["mganai-active"] = run_trace(
            cfg, data, [], active=True, run_fl=run_fl, probe=probes[1], phase=ckpt.phase("active") if ckpt else None
        )
        timing["fl_and_active_attack_s"] = traces["mganai-active"].seconds
    metrics: dict[str, Any] = {
        "fl": {
            "test_accuracy": base.fl.test_accuracy[-1],
            "rounds": cfg.fl.rounds,
            "test_accuracy_per_round": base.fl.test_accuracy,
            "victim_accuracy": base.victim_accuracy,
            "runtime": runtime,
            **faults(base.fl, cfg.attack.victim),
        },
        "config": cfg.to_dict(),
        "data": describe(data),
    }
    metrics["artefacts"] = {}
    if oracle is not None:
        metrics["oracle"] = {
            "heldout_identity_accuracy": oracle.heldout_identity_accuracy,
            "heldout_class_accuracy": oracle.heldout_class_accuracy,
            "heldout_softened_identity_accuracy": oracle.heldout_softened_identity_accuracy,
            "heldout_softened_class_accuracy": oracle.heldout_softened_class_accuracy,
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
            metrics["fl"]["active_faults"] = faults(traces["mganai-active"].fl, cfg.attack.victim)
        timing["evaluation_s"] = time.perf_counter() - t2
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = peak_rss_mb()
    metrics["timing"] = timing
    write_json(out / "metrics.json", metrics)
    render_report(out)
    if ckpt is not None:
        ckpt.path.unlink(missing_ok=True)  # the run is complete: nothing left to resume
    return metrics


def _checked(ckpt: AuditCheckpoints | None, load: Callable[[], Any]) -> Any:
    """Run a restore step; a checkpoint whose contents do not fit this run is a one-line CheckpointError."""
    try:
        return load()
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        path = ckpt.path if ckpt else Path(checkpoint.FILENAME)
        raise checkpoint.CheckpointError(checkpoint.corrupt(path, exc)) from None


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
    return CurveProbe(
        oracle,
        cfg.attack.victim,
        data.num_classes,
        e.curve_samples_per_class,
        cfg.seed + 777,
        e.curve_every,
        cfg.fl.rounds,
    )


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
        x, y = (t.cpu() for t in bank.client(k))
        reps = class_rows(x.flip(0), y.flip(0), data.num_classes, 4)  # newest first
        real = class_rows(data.clients[k].x_train, data.clients[k].y_train, data.num_classes, 4)
        write_png(out / f"client{k}_representatives.png", panel_grid([reps, real]))
        files.append({"client": k, "file": f"client{k}_representatives.png"})
    return files
