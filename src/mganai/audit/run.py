"""`run_audit`: data -> oracle -> FL traces with the attack observing -> scores -> outputs, top to bottom."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import torch

from mganai.audit.artefacts import write_artefacts, write_outputs
from mganai.audit.checkpointing import AuditCheckpoints, RunControl, restore_trace, trace_state
from mganai.audit.plan import Plan, make_plan
from mganai.audit.scoring import (
    SAMPLES_SEED_OFFSET,
    curve_probes,
    defense_summary,
    describe,
    evaluation_classes,
    faults,
    fl_summary,
    oracle_summary,
    prepare_oracle,
    score_methods,
)
from mganai.audit.traces import FLRunner, Trace, run_side_by_side, run_trace, simulate
from mganai.config import RunConfig
from mganai.data import FederatedDataset, check_victim, load_dataset
from mganai.device import resolve_device, set_determinism
from mganai.eval.curves import CurveProbe


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
    once the outputs are written."""
    device = resolve_device(cfg.device)
    set_determinism(device)
    ckpt = AuditCheckpoints(cfg, out, control, device) if control is not None else None
    timing = _timing(ckpt, device)
    t0 = time.perf_counter()
    data = load_dataset(cfg.data, cfg.seed)
    check_victim(data, cfg.attack.victim)
    timing["data_s"] = time.perf_counter() - t0
    plan = make_plan(cfg, simulator=run_fl is simulate, saved=ckpt.saved if ckpt else None)
    oracle = prepare_oracle(cfg, data, device, ckpt, timing) if plan.methods else None
    probes = curve_probes(cfg, data, oracle)
    base, traces = _run_traces(cfg, data, plan, device, run_fl, probes, ckpt, timing)
    metrics = {"fl": fl_summary(cfg, base, runtime), "config": cfg.to_dict(), "data": describe(data), "artefacts": {}}
    metrics["defense"] = defense_summary(cfg, data.num_clients, base)
    if oracle is not None:
        t2 = time.perf_counter()
        classes = evaluation_classes(data.num_classes, cfg.eval.samples_per_class)
        samples = {m: traces[m].samplers[m].generate(classes, cfg.seed + SAMPLES_SEED_OFFSET) for m in plan.methods}
        metrics["oracle"] = oracle_summary(oracle)
        metrics["methods"], metrics["reference"] = score_methods(cfg, data, oracle, traces, base, samples, classes)
        per_class, shown = cfg.eval.samples_per_class, [base, *(traces[m] for m in plan.active)]
        metrics["artefacts"] = write_artefacts(out, data, cfg.attack.victim, samples, classes, per_class, shown, probes)
        _curves_and_active_fl(metrics["fl"], timing, plan, traces, probes, cfg.attack.victim)
        timing["evaluation_s"] = time.perf_counter() - t2
    timing["total_s"] = time.perf_counter() - t0
    timing["peak_rss_mb"] = peak_rss_mb()
    metrics["timing"] = timing
    write_outputs(out, metrics)
    if ckpt is not None:
        ckpt.finish()
    return metrics


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
        base, active = run_side_by_side(cfg, data, (plan.passive, plan.active), device, probes, ckpt)
        timing["fl_and_attacks_side_by_side_s"] = base.seconds
    elif ckpt is not None and saved is not None and saved["phase"] == "active":
        base = ckpt.checked(lambda: restore_trace(cfg, data, plan.passive, device, probes[0], saved["passive"]))
    else:
        phase = ckpt.phase("passive") if ckpt else None
        base = run_trace(cfg, data, plan.passive, False, device, run_fl, probes[0], phase)
        timing["fl_and_passive_attacks_s"] = base.seconds
    if plan.active and active is None:
        if ckpt is not None:
            ckpt.common["passive"] = trace_state(base)
            ckpt.stop_before("active")
        phase = ckpt.phase("active") if ckpt else None
        active = run_trace(cfg, data, plan.active, True, device, run_fl, probes[1], phase)
        timing["fl_and_active_attack_s"] = active.seconds
    traces = {m: base for m in plan.passive}
    if active is not None:
        traces.update({m: active for m in plan.active})
    return base, traces


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
