"""One audit, end to end: data -> FL (with the attack observing) -> oracle evaluation -> outputs.

- `plan`: which FL traces run and which methods watch each (from `mganai.methods`);
- `traces`: one trace, or the passive and active traces side by side;
- `checkpointing`: saving between rounds and resuming bit for bit;
- `scoring`: the oracle and every method's numbers;
- `artefacts`: grids, representatives, curves, metrics.json and the report;
- `run`: `run_audit`, which calls them in that order.

Everything is seeded from `cfg.seed`, so the same config gives the same numbers.
"""

from mganai.audit.checkpointing import RunControl, RunInterrupted
from mganai.audit.run import run_audit
from mganai.audit.traces import FLRunner, simulate

__all__ = ["FLRunner", "RunControl", "RunInterrupted", "run_audit", "simulate"]
