"""Checkpoints of a running audit: saved between rounds to OUT/checkpoint.pt, resumed bit for bit.

With our simulator, a run can be checkpointed between rounds (`RunControl`): the
oracle, the finished passive trace and the current trace's (or both traces')
simulator and observers go to OUT/checkpoint.pt (`mganai.checkpoint`), and a resumed
run continues from there to the same numbers, bit for bit, as a run that was never
interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from mganai import checkpoint
from mganai.audit.traces import SIDES, PhaseRunner, Trace, TraceSetup, setup_trace
from mganai.config import RunConfig
from mganai.data import FederatedDataset
from mganai.errors import CheckpointError
from mganai.eval.curves import CurveProbe
from mganai.eval.oracle import Oracle, OracleNet
from mganai.fl.server import FedAvgSimulator, FLResult
from mganai.threat import PublicData

T = TypeVar("T")


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


class AuditCheckpoints:
    """Saves an audit's state to OUT/checkpoint.pt between rounds, and resumes from it.

    `common` holds what outlives a trace (oracle, the finished passive trace,
    timing); each save adds the current trace: its name, the simulator, the FL
    result so far, every stateful observer and torch's global RNG.
    """

    def __init__(self, cfg: RunConfig, out: Path, control: RunControl, device: torch.device):
        self.cfg, self.control = cfg, control
        self.path = out / checkpoint.FILENAME
        self.saved = control.resume
        saved_device = self.saved.get("device", "cpu") if self.saved is not None else str(device)
        if saved_device != str(device):
            raise CheckpointError(
                f"{out}: the run started on {saved_device} and would continue on {device}; "
                f"resume it with --device {saved_device}"
            )
        self.common: dict[str, Any] = {"device": str(device)}  # its tensors live there: resumed there only

    def checked(self, load: Callable[[], T]) -> T:
        """Run a restore step; a checkpoint whose contents do not fit this run is a one-line CheckpointError."""
        try:
            return load()
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(checkpoint.corrupt(self.path, exc)) from None

    def phase(self, name: str) -> PhaseRunner:
        """A PhaseRunner for trace `name` ('passive' or 'active') that saves and stops between rounds."""

        def run(setup: TraceSetup, data: FederatedDataset, tick: Callable[[int, float], None]) -> FLResult:
            cfg = self.cfg
            sim = FedAvgSimulator(
                setup.model, setup.init, data, cfg.fl, cfg.seed, setup.observers, setup.isolation, setup.defense
            )
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
            raise CheckpointError(checkpoint.corrupt(self.path, exc)) from None
        for i, current in enumerate(currents):
            results[i] = self._restore(current, sims[i], setups[i])
        if len(results[0].test_accuracy) != len(results[1].test_accuracy):
            problem = ValueError("its two traces stopped at different rounds")
            raise CheckpointError(checkpoint.corrupt(self.path, problem)) from None

    def finish(self) -> None:
        """The run is complete: nothing is left to resume."""
        self.path.unlink(missing_ok=True)

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

        def restore() -> FLResult:
            sim.load_state_dict(current["sim"])
            result = FLResult.from_state_dict(current["fl"])
            load_objects(setup.stateful(), current["objects"])
            torch.set_rng_state(current["torch_rng"])
            return result

        return self.checked(restore)


def load_objects(objects: dict[str, Any], states: dict[str, Any]) -> None:
    """Restore every stateful object of a trace from a checkpoint (the same names must be there)."""
    if set(objects) != set(states):
        raise ValueError(f"the checkpoint holds {sorted(states)}, this run has {sorted(objects)}")
    for k, obj in objects.items():
        checkpoint.restore(obj, states[k])


def restore_trace(
    cfg: RunConfig,
    data: FederatedDataset,
    methods: list[str],
    device: torch.device,
    probe: CurveProbe | None,
    saved: dict[str, Any],
    public: PublicData | None = None,
) -> Trace:
    """The finished passive trace, from a checkpoint: nothing is retrained."""
    setup = setup_trace(cfg, data, methods, False, device, probe, public)
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
    """A finished trace as plain data, for the checkpoint of the trace after it."""
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
