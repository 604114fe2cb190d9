"""mganai: measure user-level privacy leakage in federated learning (mGAN-AI, INFOCOM 2019).

For library use, the names below are the whole surface:

    import mganai
    from pathlib import Path

    cfg = mganai.build_config({"data": {"clients": 5}}, {"fl.rounds": 10, "seed": 1})
    metrics = mganai.run_audit(cfg, Path("runs/mine"))  # also writes metrics.json, grids, report.html
    print(metrics["methods"]["mganai-passive"]["joint_success"])

Every problem a user can fix is a `MganaiError` (its kinds: ConfigError, DataError,
CheckpointError, ReportError). `METHODS` and `DATASETS` are the registries of attack
methods and datasets. The names are imported on first use, so `import mganai` (and
`mganai --help`) load no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mganai.audit import run_audit
    from mganai.config import RunConfig, build_config, load_toml
    from mganai.data import FederatedDataset, load_dataset
    from mganai.datasets import DATASETS
    from mganai.errors import CheckpointError, ConfigError, DataError, MganaiError, ReportError
    from mganai.methods import METHODS
    from mganai.report import render_report

__version__ = "0.1.0"

_HOMES = {
    "run_audit": "mganai.audit",
    "RunConfig": "mganai.config",
    "build_config": "mganai.config",
    "load_toml": "mganai.config",
    "FederatedDataset": "mganai.data",
    "load_dataset": "mganai.data",
    "render_report": "mganai.report",
    "METHODS": "mganai.methods",
    "DATASETS": "mganai.datasets",
    "MganaiError": "mganai.errors",
    "ConfigError": "mganai.errors",
    "DataError": "mganai.errors",
    "CheckpointError": "mganai.errors",
    "ReportError": "mganai.errors",
}
__all__ = [
    "DATASETS",
    "METHODS",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "FederatedDataset",
    "MganaiError",
    "ReportError",
    "RunConfig",
    "__version__",
    "build_config",
    "load_dataset",
    "load_toml",
    "render_report",
    "run_audit",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'mganai' has no attribute {name!r}")
