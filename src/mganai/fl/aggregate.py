"""FedAvg arithmetic as pure functions on stacked client updates (testable without a server)."""

from __future__ import annotations

import torch
from torch import Tensor

from mganai.fl.model import Params, params_device


def weighted_mean(stacked: Params, weights: Tensor) -> Params:
    """Sum_k w_k u_k / Sum_k w_k over the leading (client) axis of every tensor."""
    if not stacked:
        return {}
    w = weights.to(device=params_device(stacked), dtype=torch.float32)
    total = w.sum()
    return {k: torch.tensordot(w, v, dims=1) / total for k, v in stacked.items()}


def apply_update(params: Params, update: Params) -> Params:
    """M + u, tensor by tensor."""
    return {k: params[k] + update[k] for k in params}
