"""Attack curves: how much each method leaks as FL goes on, measured every K rounds.

A `CurveProbe` is a server observer attached after the attacks: every `every`
rounds (and after the last round) it asks each method for the same small fixed
request (`per_class` samples of every class, one fixed seed) and lets the oracle
score them (open set: only samples that look like data count, as in metrics.json).
It only reads: the samplers generate from their own seeded generators, so the FL
trace and the attacks' final numbers are the same with and without it (tested).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mganai.checkpoint import Checkpointed
from mganai.eval.metrics import oracle_rates
from mganai.eval.oracle import Oracle
from mganai.fl.observers import RoundObservation
from mganai.methods import Sampler

CURVE_COLUMNS = ("method", "round", "stage", "victim_identity_rate", "class_accuracy", "joint_success")


@dataclass(frozen=True)
class CurvePoint:
    """One method scored after `round` completed FL rounds (`stage` 'final': after the attack's last steps)."""

    method: str
    round: int
    stage: str
    victim_identity_rate: float
    class_accuracy: float
    joint_success: float


class CurveProbe(Checkpointed):
    """Observer that scores every attached sampler on a fixed request every `every` rounds."""

    STATE = ("points", "seconds")
    STRUCTURE = ("oracle", "victim", "seed", "every", "rounds", "classes", "samplers")

    def __init__(
        self, oracle: Oracle, victim: int, num_classes: int, per_class: int, seed: int, every: int, rounds: int
    ):
        self.oracle, self.victim, self.seed, self.every, self.rounds = oracle, victim, seed, every, rounds
        self.classes = torch.arange(num_classes).repeat_interleave(per_class)
        self.samplers: dict[str, Sampler] = {}
        self.points: list[CurvePoint] = []
        self.seconds = 0.0  # time spent scoring: the curves' whole cost to a run

    def attach(self, samplers: Mapping[str, Sampler]) -> None:
        self.samplers.update(samplers)

    def observe(self, obs: RoundObservation) -> None:
        done = obs.round + 1
        if self.every > 0 and (done % self.every == 0 or done == self.rounds):
            self.score(done, "fl")

    def score(self, round_: int, stage: str) -> None:
        """Score every sampler now and keep the points."""
        start = time.perf_counter()
        for name, sampler in self.samplers.items():
            rates = oracle_rates(self.oracle, sampler.generate(self.classes, self.seed), self.classes, self.victim)
            self.points.append(CurvePoint(name, round_, stage, *(rates[k] for k in CURVE_COLUMNS[3:])))
        self.seconds += time.perf_counter() - start

    def state_dict(self) -> dict[str, Any]:
        """The points so far (plain dicts), for a checkpoint."""
        return {"points": [asdict(p) for p in self.points], "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.points = [CurvePoint(**p) for p in state["points"]]
        self.seconds = float(state["seconds"])


def curves_csv(points: list[CurvePoint]) -> bytes:
    """The points as CSV, one row per (method, round, stage), methods in the order given."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for p in points:
        row = asdict(p)
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")
