"""Scoring an audit: the oracle, the curves' probes, and every method's numbers for metrics.json.

Every method is scored by the same code on the same request (`evaluation_classes`),
so the numbers are comparable; the judge never saw anything of the attack.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor

from mganai import checkpoint
from mganai.audit.checkpointing import AuditCheckpoints, restore_oracle
from mganai.audit.traces import Trace
from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.eval.curves import CurveProbe
from mganai.eval.metrics import (
    identity_as_others,
    nn_ssim,
    oracle_rates,
    real_data_reference,
    sample_diversity,
)
from mganai.eval.oracle import OPEN_SET_QUANTILE, Oracle, train_oracle
from mganai.fl.server import FLResult
from mganai.methods import Sampler

SAMPLES_SEED_OFFSET = 4242  # the evaluation request's noise: seed + this
CURVES_SEED_OFFSET = 777  # the curves' small request's noise: seed + this
AS_OTHERS_MAX = 9  # the request 'as another client' is made for every other client, or this many spread over them
# A sweep's judges by (data, seed, oracle settings, device): set to {} by `mganai sweep`, None otherwise.
ORACLE_CACHE: dict[str, Oracle] | None = None


def evaluation_classes(num_classes: int, per_class: int) -> Tensor:
    """The fixed request every method answers: `per_class` samples of every class, class-major."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def prepare_oracle(
    cfg: RunConfig,
    data: FederatedDataset,
    device: torch.device,
    ckpt: AuditCheckpoints | None,
    timing: dict[str, Any],
) -> Oracle:
    """The judge, trained (or restored from a checkpoint) before FL: it needs only the data, and the curves use it
    during FL."""
    t1 = time.perf_counter()
    saved = ckpt.saved if ckpt is not None else None
    # the clients that train too: with data.public_clients, which ones are withheld depends on the victim
    key = repr((cfg.data, data.client_names(), cfg.seed, cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs, device))
    if ckpt is not None and saved is not None and "oracle" in saved:
        oracle = ckpt.checked(lambda: restore_oracle(data, saved["oracle"], device))
    elif ORACLE_CACHE is not None and key in ORACLE_CACHE:  # a sweep: the same data and seed, the same judge
        oracle = ORACLE_CACHE[key]
    else:
        oracle = train_oracle(data, cfg.seed + cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs, device=device)
    if ORACLE_CACHE is not None:
        ORACLE_CACHE[key] = oracle
    timing["oracle_s"] = time.perf_counter() - t1
    if ckpt is not None:
        ckpt.common["oracle"] = checkpoint.capture(oracle)
    return oracle


def curve_probes(cfg: RunConfig, data: FederatedDataset, oracle: Oracle | None) -> list[CurveProbe | None]:
    """One probe per FL trace that scores every method on a small fixed request every `eval.curve_every` rounds."""
    e = cfg.eval
    if oracle is None or e.curve_every <= 0:
        return [None, None]
    return [
        CurveProbe(
            oracle,
            cfg.attack.victim,
            data.num_classes,
            e.curve_samples_per_class,
            cfg.seed + CURVES_SEED_OFFSET,
            e.curve_every,
            cfg.fl.rounds,
        )
        for _ in range(2)
    ]


def oracle_summary(oracle: Oracle, others: list[int]) -> dict[str, Any]:
    """The judge, for metrics.json: its accuracy on held-out real images, its open-set calibration, and the
    clients the request 'as another client' was made for."""
    return {
        "heldout_identity_accuracy": oracle.heldout_identity_accuracy,
        "heldout_class_accuracy": oracle.heldout_class_accuracy,
        "heldout_softened_identity_accuracy": oracle.heldout_softened_identity_accuracy,
        "heldout_softened_class_accuracy": oracle.heldout_softened_class_accuracy,
        "open_set_threshold": oracle.open_set_threshold,
        "open_set_quantile": OPEN_SET_QUANTILE,
        "heldout_data_like_rate": oracle.heldout_data_like_rate,
        "heldout_softened_data_like_rate": oracle.heldout_softened_data_like_rate,
        "as_others_clients": others,
    }


def requests_as_others(sampler: Sampler, classes: Tensor, seed: int, others: list[int]) -> dict[int, Tensor]:
    """The evaluation request (same classes, same seed) made as each of `others` instead of the victim."""
    return {k: sampler.generate(classes, seed, client=k) for k in others}


def score_methods(
    cfg: RunConfig,
    data: FederatedDataset,
    oracle: Oracle,
    traces: dict[str, Trace],
    base: Trace,
    samples: dict[str, Tensor],
    classes: Tensor,
    as_others: dict[str, dict[int, Tensor]],
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Every method's scores (what leaked, and what it cost FL and the victim), and the real data's own numbers
    to read them against. `as_others`: per method, the same request made as other clients."""
    victim = cfg.attack.victim
    reference = real_data_reference(data, victim)
    scored = {}
    for name, x in samples.items():
        trace = traces[name]
        scores = oracle_rates(oracle, x, classes, victim)
        scores["identity_as_others"] = identity_as_others(oracle, as_others[name], victim)
        scores["identity_advantage"] = scores["victim_identity_rate"] - scores["identity_as_others"]
        scores.update(nn_ssim(data, x, classes, victim))
        scores["diversity_ratio"] = sample_diversity(x, classes) / reference["victim_diversity"]
        scores["fl_test_accuracy"] = trace.fl.test_accuracy[-1]
        scores["fl_accuracy_cost"] = base.fl.test_accuracy[-1] - trace.fl.test_accuracy[-1]
        scores["victim_accuracy"] = trace.victim_accuracy
        scores["victim_accuracy_cost"] = base.victim_accuracy - trace.victim_accuracy
        # An isolated victim's private model may fit its own style well; on the federation's task it pays.
        scores["victim_model_global_accuracy"] = trace.victim_global_accuracy
        scored[name] = scores
    return scored, reference


def fl_summary(cfg: RunConfig, base: Trace, runtime: str) -> dict[str, Any]:
    """The unattacked FL trace, for metrics.json."""
    return {
        "test_accuracy": base.fl.test_accuracy[-1],
        "rounds": cfg.fl.rounds,
        "test_accuracy_per_round": base.fl.test_accuracy,
        "victim_accuracy": base.victim_accuracy,
        "runtime": runtime,
        **faults(base.fl, cfg.attack.victim),
    }


def faults(fl: FLResult, victim: int) -> dict[str, Any]:
    """Faulty clients of one trace, for metrics.json."""
    return {
        "rejected_updates": len(fl.rejected),
        "rejections": fl.rejected,
        "dropped_updates": len(fl.dropped),
        "victim_absent_rounds": fl.absent_rounds(victim),
    }


def describe(data: FederatedDataset, victim: int) -> dict[str, Any]:
    """What was actually loaded (a folder's client names, the resolution a default picked), for metrics.json.
    `clients` are the clients that train; `victim` is the victim's index among them."""
    return {
        "name": data.name,
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "clients": data.client_names(),
        "train_samples": [len(c.y_train) for c in data.clients],
        "heldout_samples": [len(c.y_test) for c in data.clients],
        "victim": victim,
    }


def defense_summary(cfg: RunConfig, num_clients: int, base: Trace) -> dict[str, Any]:
    """The `defense` section of metrics.json: the defense, its (ε, δ) from the accountant, and under `shuffle`
    how well the linkability attack re-linked the anonymous updates (scored against the shuffler's truth)."""
    from mganai.fl.accounting import privacy

    counts = [sum(k in ids for ids in base.fl.participants) for k in range(num_clients)]
    out = privacy(cfg.defense, num_clients, cfg.fl.rounds, cfg.fl.client_fraction, max(counts, default=0))
    relinker, ledger = base.objects.get("relinker"), base.objects.get("ledger")
    if relinker is not None and ledger is not None:
        from mganai.attack.linkability import linkage_accuracy

        out.update(linkage_accuracy(relinker.assignments, ledger.truth, cfg.attack.victim))
        out["victim_hint"] = "the server knows which update is the victim's in the first round the victim takes part in"
    return out
