"""Which FL traces an audit runs, and which methods watch each (read off the method registry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mganai.config import RunConfig
from mganai.device import cpu_workers
from mganai.methods import NONE, active_methods, passive_methods


@dataclass(frozen=True)
class Plan:
    """The methods of an audit and the traces they need."""

    methods: list[str]  # every method, in the order metrics.json lists them
    passive: list[str]  # they watch the unchanged FL trace (which always runs: it is the no-attack baseline)
    active: list[str]  # they change FL: a second trace with the same seed, in which the server isolates the victim
    together: bool  # both traces at once, round by round, one thread each (`run_side_by_side`)


def make_plan(cfg: RunConfig, simulator: bool, saved: dict[str, Any] | None) -> Plan:
    """The plan of `cfg`'s audit. Both traces run at once when there are two cores to share (`threads`) and our
    simulator runs FL; a resumed run keeps the mode it was saved in."""
    methods = [] if cfg.attack.methods == [NONE] else list(cfg.attack.methods)
    passive, active = passive_methods(methods), active_methods(methods)
    cores = saved["phase"] == "both" if saved is not None else cpu_workers(cfg.threads) > 1
    return Plan(methods, passive, active, together=bool(active) and bool(passive) and simulator and cores)
