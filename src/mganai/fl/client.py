"""Client-side local training: SGD on each client's private data, as a loop or vectorised.

Both engines follow the same plan. A client's plan is a list of steps, each a batch
of sample indices with weights (1 = real sample, 0 = padding), so that clients with
different amounts of data can be stacked: padding never contributes to the loss and
a step of pure padding leaves the model unchanged. The loop engine trains one client
after another; the vmap engine trains all clients of a round at once with
`torch.func.vmap(torch.func.grad(...))` over stacked client parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from mganai.fl.model import Params


@dataclass
class TrainPlan:
    """Batches of every participating client: indices [K, S, B] and weights [K, S, B]."""

    index: Tensor
    weight: Tensor


def client_generator(seed: int, round_: int, client: int) -> torch.Generator:
    """A generator private to (seed, round, client): independent of who else trains and of the engine."""
    return torch.Generator().manual_seed(seed * 1_000_003 + round_ * 10_007 + client)


def make_plan(sizes: list[int], batch_size: int, epochs: int, generators: list[torch.Generator]) -> TrainPlan:
    """Shuffled mini-batches per client for `epochs` epochs, padded to a common step count."""
    plans = []
    for n, gen in zip(sizes, generators):
        steps = []
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            steps += list(perm.split(batch_size))
        plans.append(steps)
    s_max = max(len(p) for p in plans)
    index = torch.zeros(len(plans), s_max, batch_size, dtype=torch.long)
    weight = torch.zeros(len(plans), s_max, batch_size)
    for k, steps in enumerate(plans):
        for s, batch in enumerate(steps):
            index[k, s, : len(batch)] = batch
            weight[k, s, : len(batch)] = 1.0
    return TrainPlan(index, weight)


def weighted_loss(model: nn.Module, params: Params, x: Tensor, y: Tensor, w: Tensor) -> Tensor:
    """Mean cross-entropy over the real (weight 1) samples of a batch; 0 for a batch of padding."""
    logits = functional_call(model, params, (x,))
    per_sample = F.cross_entropy(logits, y, reduction="none")
    return (per_sample * w).sum() / w.sum().clamp_min(1.0)


def sgd_step(params: Params, velocity: Params, grads: Params, lr: float, momentum: float) -> tuple[Params, Params]:
    """Heavy-ball SGD (PyTorch's convention: v = m v + g; p = p - lr v). Works stacked or not."""
    velocity = {n: momentum * velocity[n] + grads[n] for n in params}
    return {n: params[n] - lr * velocity[n] for n in params}, velocity


def train_loop(
    model: nn.Module, start: Params, xs: list[Tensor], ys: list[Tensor], plan: TrainPlan, lr: float, momentum: float
) -> Params:
    """Train each client in turn from its start model (stacked [K, ...]); returns stacked end models."""
    ends: list[Params] = []
    for k in range(len(xs)):
        params = {n: v[k].clone() for n, v in start.items()}
        velocity = {n: torch.zeros_like(v) for n, v in params.items()}
        for s in range(plan.index.shape[1]):
            real = plan.weight[k, s] > 0
            if not real.any():
                continue
            idx = plan.index[k, s][real]
            live = {n: p.requires_grad_(True) for n, p in params.items()}
            loss = F.cross_entropy(functional_call(model, live, (xs[k][idx],)), ys[k][idx])
            grads = dict(zip(live, torch.autograd.grad(loss, list(live.values()))))
            with torch.no_grad():
                params, velocity = sgd_step({n: p.detach() for n, p in live.items()}, velocity, grads, lr, momentum)
        ends.append(params)
    return {n: torch.stack([e[n] for e in ends]) for n in start}


def pad_stack(tensors: list[Tensor]) -> Tensor:
    """Stack tensors of different lengths along a new client axis, zero-padding the sample axis."""
    n_max = max(len(t) for t in tensors)
    out = tensors[0].new_zeros((len(tensors), n_max, *tensors[0].shape[1:]))
    for k, t in enumerate(tensors):
        out[k, : len(t)] = t
    return out


def train_vmap(
    model: nn.Module, start: Params, xs: list[Tensor], ys: list[Tensor], plan: TrainPlan, lr: float, momentum: float
) -> Params:
    """Train all clients at once: one vmapped gradient per step over stacked client parameters.

    A step of pure padding has a zero gradient, but momentum would still move the
    model, so such clients keep their parameters and velocity for that step.
    """
    x_all, y_all = pad_stack(xs), pad_stack(ys)
    rows = torch.arange(len(xs)).unsqueeze(1)
    step_grad = vmap(grad(lambda p, x, y, w: weighted_loss(model, p, x, y, w)))
    params = dict(start)
    velocity = {n: torch.zeros_like(v) for n, v in params.items()}
    for s in range(plan.index.shape[1]):
        idx, w = plan.index[:, s], plan.weight[:, s]
        grads = step_grad(params, x_all[rows, idx], y_all[rows, idx], w)
        stepped, moved = sgd_step(params, velocity, grads, lr, momentum)
        if bool((w.sum(1) > 0).all()):
            params, velocity = stepped, moved
        else:
            active = w.sum(1) > 0
            params = {n: _where(active, stepped[n], params[n]) for n in params}
            velocity = {n: _where(active, moved[n], velocity[n]) for n in params}
    return params


def _where(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Per-client choice between stacked tensors: a where mask[k], else b."""
    return torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)


ENGINES = {"loop": train_loop, "vmap": train_vmap}
