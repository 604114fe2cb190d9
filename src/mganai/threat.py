"""The threat model: what the attacking server holds besides the rounds it observes. Every number belongs to one.

- `updates-only` (the paper's server, the default): per-client updates, the models
  it sent, the architecture, the local training recipe it sent, the number of
  classes; no data of any kind.
- `public-data` (GGL, Li et al. CVPR 2022; GIAS, Jeon et al. NeurIPS 2021): also
  data of the same kind from people *outside* the federation, either another
  dataset (`data.public`) or clients withheld from FL (`data.public_clients`). It
  never holds a federated client's sample (`mganai.data.public` builds it so).

`PublicData` lives here, not in `mganai.data`, because the attack receives it
(`AttackParts.public`) and the attack never imports data code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

UPDATES_ONLY = "updates-only"
PUBLIC_DATA = "public-data"
FROM_CLIENTS = "public-clients"  # `PublicData.source`: clients withheld from the federation
FROM_DATASET = "public"  # another dataset spec


@dataclass(frozen=True)
class PublicData:
    """Images of the federation's kind from people outside it, at the federation's image shape and classes."""

    x: Tensor  # [n, C, H, W] float32 in [-1, 1]
    y: Tensor  # [n] int64, the federation's class ids
    description: str  # one line for metrics.json and the report
    source: str  # FROM_CLIENTS or FROM_DATASET
    clients: list[str] | None = None  # the withheld clients' names (FROM_CLIENTS), else None


def threat_model(public: PublicData | None) -> dict[str, Any]:
    """metrics.json's `threat_model`: its name and, with public data, what the server held."""
    if public is None:
        return {"name": UPDATES_ONLY, "public": None}
    held = {"description": public.description, "samples": len(public.y), "clients": public.clients}
    return {"name": PUBLIC_DATA, "public": {**held, "source": public.source}}
