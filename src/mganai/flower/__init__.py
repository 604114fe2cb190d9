"""Flower integration: the attack as a Flower server strategy, and a Flower app around it.

The only part of mganai that imports `flwr` (the optional extra `mganai[flower]`).
`strategy.AuditStrategy` is FedAvg from `flwr.serverapp.strategy` that shows every
round to the same observers as our simulator; `app` holds the ServerApp/ClientApp
used by `mganai flower-sim` and by the loopback deployment in `examples/flower/`.
"""

from __future__ import annotations

import os

# Flower and Ray report usage to their developers unless told not to; an audit tool must not phone home.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray (flower-sim's backend) has its own

FLOWER_MISSING = "Flower is not installed: pip install 'mganai[flower]' (pins flwr[simulation]==1.42.0)"


def flower_available() -> bool:
    """True when `flwr` can be imported (the `flower` extra is installed)."""
    import importlib.util

    return importlib.util.find_spec("flwr") is not None
