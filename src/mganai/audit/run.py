"""`run_audit`: data -> oracle -> FL traces with the attack observing -> scores -> outputs, top to bottom."""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mganai.attack.gan import GanAttack
from mganai.audit.artefacts import write_artefacts, write_outputs
from mganai.audit.checkpointing import AuditCheckpoints, RunControl, restore_trace, trace_state
from mganai.audit.plan import Plan, make_plan
from mganai.audit.scoring import (
    AS_OTHERS_MAX,
    SAMPLES_SEED_OFFSET,
    curve_probes,
    defense_summary,
    describe,
    evaluation_classes,
    faults,
    fl_summary,
    oracle_summary,
    prepare_oracle,
    requests_as_others,
    score_methods,
)
from mganai.audit.traces import FLRunner, Trace, run_side_by_side, run_trace, simulate
from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.data.public import load_federation
from mganai.device import one_thread, resolve_device, set_determinism
from mganai.eval.curves import CurveProbe
from mganai.eval.metrics import other_clients
from mganai.methods import METHODS
from mganai.threat import PublicData, threat_model


def run_audit(
    cfg: RunConfig,
    out: Path,
    run_fl: FLRunner = simulate,
    runtime: str = "mganai-simulator",
    control: RunControl | None = None,
) -> dict[str, Any]:
    """Run FL (with `run_fl`) and every requested method, score them, write metrics.json, images and the report
    to `out`, and return the metrics.

    With `control` (our simulator only), the run saves checkpoints, stops on request
    (`RunInterrupted`) and resumes from `control.resume`; the checkpoint is removed
    once the outputs are written.

    On the CPU it computes on one thread per computation and up to `cfg.threads` computations at once
    (`mganai.device`); the caller's torch thread setting is restored when it returns.

    metrics.json records `cfg` as given; the run itself uses the victim's index among the clients that train
    (it moves down when withheld clients (`data.public_clients`) had lower indices)."""
    with one_thread():
        return _audit(cfg, out, run_fl, runtime, control)


def _audit(cfg: RunConfig, out: Path, run_fl: FLRunner, runtime: str, control: RunControl | None) -> dict[str, Any]:
    settings = cfg
    device = resolve_device(cfg.device)
    set_determinism(device)
    ckpt = AuditCheckpoints(cfg, out, control, device) if control is not None else None
    timing = _timing(ckpt, device)
    t0 = time.perf_counter()
    federation = load_federation(cfg.data, cfg.attack.victim, cfg.seed)
    data, public = federation.data, federation.public
    if federation.victim != cfg.attack.victim:
        cfg = dataclasses.replace(cfg, attack=dataclasses.replace(cfg.attack, victim=federation.victim))
    timing["data_s"] = time.perf_counter() - t0
    say = _progress(cfg)
    say(f"data: {data.name}, {data.num_clients} clients, {sum(len(c.y_train) for c in data.clients)} training images")
    plan = make_plan(cfg, simulator=run_fl is simulate, saved=ckpt.saved if ckpt else None)
    oracle = None
    if plan.methods:
        say(f"oracle: training the judge ({cfg.eval.oracle_epochs} epochs on every client's real data)")
        oracle = prepare_oracle(cfg, data, device, ckpt, timing)
        say(f"oracle: done in {timing['oracle_s']:.1f} s, held-out identity {oracle.heldout_identity_accuracy:.3f}")
    probes = curve_probes(cfg, data, oracle)
    shield = f", defense {cfg.defense.name}" if cfg.defense.name != "none" else ""
    say(f"FL + attacks: {cfg.fl.rounds} rounds{shield}, {_traces_line(plan)}")
    if public is not None and any(METHODS[m].recipe for m in plan.methods):
        steps = cfg.attack.prior_pretrain_steps
        say(f"public prior: the GANs first learn the {len(public.y)} public images ({steps} steps)")
    t1 = time.perf_counter()
    base, traces = _run_traces(cfg, data, public, plan, device, run_fl, probes, ckpt, timing)
    timing.update(_prior_timing(traces))
    say(f"FL + attacks: done in {time.perf_counter() - t1:.1f} s, FL test accuracy {base.fl.test_accuracy[-1]:.3f}")
    metrics: dict[str, Any] = {
        "threat_model": threat_model(public),
        "smoke_run": cfg.preset == "quick",
        "fl": fl_summary(cfg, base, runtime),
        "defense": defense_summary(cfg, data.num_clients, base),
        "config": settings.to_dict(),
        "data": describe(data, cfg.attack.victim),
        "artefacts": {},
    }
    if oracle is not None:
        t2 = time.perf_counter()
        say(f"evaluation: {len(plan.methods)} methods, {cfg.eval.samples_per_class} samples per class each; grids")
        classes = evaluation_classes(data.num_classes, cfg.eval.samples_per_class)
        seed, others = cfg.seed + SAMPLES_SEED_OFFSET, other_clients(cfg.attack.victim, data.num_clients, AS_OTHERS_MAX)
        samplers = {m: traces[m].samplers[m] for m in plan.methods}
        samples = {m: s.generate(classes, seed) for m, s in samplers.items()}
        as_others = {m: requests_as_others(s, classes, seed, others) for m, s in samplers.items()}
        metrics["oracle"] = oracle_summary(oracle, others)
        scored = score_methods(cfg, data, oracle, traces, base, samples, classes, as_others)
        metrics["methods"], metrics["reference"] = scored
        per_class, shown = cfg.eval.samples_per_class, [base, *(traces[m] for m in plan.active)]
        metrics["artefacts"] = write_artefacts(out, data, cfg.attack.victim, samples, classes, per_class, shown, probes)
        _curves_and_active_fl(metrics["fl"], timing, plan, traces, probes, cfg.attack.victim)
        timing["evaluation_s"] = time.perf_counter() - t2
        say(f"evaluation: done in {timing['evaluation_s']:.1f} s")
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = peak_rss_mb()
    metrics["timing"] = timing
    write_outputs(out, metrics)
    if ckpt is not None:
        ckpt.finish()
    return metrics


def _progress(cfg: RunConfig) -> Callable[[str], None]:
    """One line on stderr as each phase starts and ends (the rounds have their own bar); silent with `quiet`."""

    def say(text: str) -> None:
        if not cfg.quiet:
            print(f"mganai: {text}", file=sys.stderr, flush=True)

    return say


def _traces_line(plan: Plan) -> str:
    """What the FL phase runs, for its progress line."""
    if not plan.methods:
        return "FL only"
    if plan.together:
        return "the passive and the active trace side by side"
    return "the passive trace, then the active one" if plan.active else "one trace"


def _timing(ckpt: AuditCheckpoints | None, device: torch.device) -> dict[str, Any]:
    """Seconds per phase; a resumed run keeps (and adds to) the phases it had timed before it stopped."""
    saved = ckpt.saved if ckpt is not None else None
    timing: dict[str, Any] = dict(saved.get("timing", {})) if saved is not None else {}
    timing["device"] = str(device)
    if ckpt is not None:
        ckpt.common["timing"] = timing  # the same dict: every checkpoint saves the phases timed so far
        if saved is not None:
            timing["resumed"] = True
    return timing


def _run_traces(
    cfg: RunConfig,
    data: FederatedDataset,
    public: PublicData | None,
    plan: Plan,
    device: torch.device,
    run_fl: FLRunner,
    probes: list[CurveProbe | None],
    ckpt: AuditCheckpoints | None,
    timing: dict[str, Any],
) -> tuple[Trace, dict[str, Trace]]:
    """The unattacked trace and, if a method changes FL, the active one: side by side, one after the other, or
    continued from a checkpoint. Returns the unattacked trace and the trace of every method."""
    saved = ckpt.saved if ckpt is not None else None
    active: Trace | None = None
    if plan.together:
        base, active = run_side_by_side(cfg, data, (plan.passive, plan.active), device, probes, ckpt, public)
        timing["fl_and_attacks_side_by_side_s"] = base.seconds
    elif ckpt is not None and saved is not None and saved["phase"] == "active":
        base = ckpt.checked(lambda: restore_trace(cfg, data, plan.passive, device, probes[0], saved["passive"], public))
    else:
        phase = ckpt.phase("passive") if ckpt else None
        base = run_trace(cfg, data, plan.passive, False, device, run_fl, probes[0], phase, public)
        timing["fl_and_passive_attacks_s"] = base.seconds
    if plan.active and active is None:
        if ckpt is not None:
            ckpt.common["passive"] = trace_state(base)
            ckpt.stop_before("active")
        phase = ckpt.phase("active") if ckpt else None
        active = run_trace(cfg, data, plan.active, True, device, run_fl, probes[1], phase, public)
        timing["fl_and_active_attack_s"] = active.seconds
    traces = {m: base for m in plan.passive}
    if active is not None:
        traces.update({m: active for m in plan.active})
    return base, traces


def _prior_timing(traces: dict[str, Trace]) -> dict[str, float]:
    """`public_prior_s`: the public prior's pretraining (part of the FL + attacks phase), when there was one."""
    gans = [s for t in traces.values() for s in t.samplers.values() if isinstance(s, GanAttack)]
    priors = {id(g.prior): g.prior for g in gans if g.prior is not None}
    return {"public_prior_s": sum(p.seconds for p in priors.values())} if priors else {}


def _curves_and_active_fl(
    fl: dict[str, Any],
    timing: dict[str, Any],
    plan: Plan,
    traces: dict[str, Trace],
    probes: list[CurveProbe | None],
    victim: int,
) -> None:
    """The curves' cost, and the active trace's FL beside the unattacked one's."""
    if probes[0] is not None:
        timing["curves_s"] = sum(pr.seconds for pr in probes if pr)
    if plan.active:
        active = traces[plan.active[0]].fl
        fl["active_test_accuracy_per_round"] = active.test_accuracy
        fl["active_faults"] = faults(active, victim)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
