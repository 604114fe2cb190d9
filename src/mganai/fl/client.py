"""Client-side local training: SGD on each client's private data, as a loop or vectorised.

Both engines follow the same plan. A client's plan is a list of steps, each a batch
of sample indices with weights (1 = real sample, 0 = padding), so that clients with
different amounts of data can be stacked: padding never contributes to the loss and
a step of pure padding leaves the model unchanged. The loop engine trains one client
after another; the vmap engine trains all clients of a round at once over stacked
client parameters.

How the vmap engine gets its per-client gradients: for a model made of the layers
of `SharedCNN` (conv, ReLU, max/avg pool, flatten, linear) it runs the stacked
forward pass itself, the way vmap's batching rules would (the K clients' convs as
one grouped conv, their linears as one batched matmul), but keeps the activations
channels-last, where CPU pooling is much faster than in vmap's layout; the
gradient of the sum of the K independent client losses is then each client's own
gradient. Any other model goes through `torch.func.vmap(torch.func.grad(...))`.
Both give the loop engine's numbers to float tolerance (tests/test_fl.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from torch.nn.modules.utils import _pair

from mganai.fl.model import Params, SharedCNN


@dataclass
class TrainPlan:
    """Batches of every participating client: indices [K, S, B] and weights [K, S, B]."""

    index: Tensor
    weight: Tensor


def client_generator(seed: int, round_: int, client: int) -> torch.Generator:
    """A generator private to (seed, round, client): independent of who else trains and of the engine."""
    return torch.Generator().manual_seed(seed * 1_000_003 + round_ * 10_007 + client)


def make_plan(
    sizes: list[int], batch_size: int, epochs: int, generators: list[torch.Generator], max_steps: int = 0
) -> TrainPlan:
    """Shuffled mini-batches per client for `epochs` epochs (only the first `max_steps` of them when > 0), padded
    to a common step count."""
    plans = []
    for n, gen in zip(sizes, generators):
        steps = []
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            steps += list(perm.split(batch_size))
        plans.append(steps[:max_steps] if max_steps > 0 else steps)
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


def stacked_logits(model: nn.Module, params: Params, x: Tensor) -> Tensor | None:
    """Logits of K models (params stacked [K, ...]) on their own inputs x [K, B, C, H, W]: [K, B, classes].

    vmap's batching rules written out for `SharedCNN`'s layers, in a layout that is
    fast on CPU: images as [B, K*C, H, W] channels-last, so the K clients' convs are
    one conv with groups=K and pooling runs on contiguous channels. Returns None for
    a model with any other layer (the caller then uses torch.func.vmap).
    """
    if type(model).forward is not SharedCNN.forward:  # the layers below are only what `forward` runs
        return None
    features, head = getattr(model, "features", None), getattr(model, "classifier", None)
    if not isinstance(features, nn.Sequential) or not isinstance(head, nn.Linear):
        return None
    k, b = x.shape[:2]
    h = x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:]).contiguous(memory_format=torch.channels_last)
    flat = False  # after Flatten, h is [K, B, F]
    layers = [*(("features." + n, m) for n, m in features.named_children()), ("classifier", head)]
    for i, (_name, layer) in enumerate(layers):
        if isinstance(layer, nn.ReLU) and i + 1 < len(layers) and isinstance(layers[i + 1][1], nn.MaxPool2d):
            # max_pool(relu(h)) == relu(max_pool(h)), with the same gradient (the window's
            # max gets it, or nothing when it is <= 0): the ReLU then runs on a 4x smaller tensor.
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    for name, layer in layers:
        if isinstance(layer, nn.Conv2d) and not flat and layer.padding_mode == "zeros" and layer.bias is not None:
            w = params[f"{name}.weight"]
            h = F.conv2d(
                h,
                w.reshape(-1, *w.shape[2:]),
                params[f"{name}.bias"].reshape(-1),
                layer.stride,
                layer.padding,
                layer.dilation,
                k * layer.groups,
            )
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        elif isinstance(layer, nn.MaxPool2d) and not flat:
            h = F.max_pool2d(h, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        elif isinstance(layer, nn.AdaptiveAvgPool2d) and not flat:
            if _pair(layer.output_size) != tuple(h.shape[-2:]):  # at its own size it is the identity
                h = F.adaptive_avg_pool2d(h, layer.output_size)
        elif isinstance(layer, nn.Flatten) and not flat and layer.start_dim == 1 and layer.end_dim == -1:
            h, flat = h.reshape(b, k, -1).transpose(0, 1), True
        elif isinstance(layer, nn.Linear) and flat and layer.bias is not None:
            h = torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), h, params[f"{name}.weight"].transpose(1, 2))
        else:
            return None
    return h if flat else None


def stacked_grads(
    model: nn.Module, params: Params, x: Tensor, y: Tensor, w: Tensor, create_graph: bool = False
) -> Params | None:
    """Each client's gradient of `weighted_loss` at its own params (stacked), or None if unsupported.

    The K losses are independent, so the gradient of their sum with respect to the
    stacked params is, row k, client k's own gradient. `create_graph=True` keeps it
    differentiable in `x` (the update inversion optimises the images through it).
    """
    live = {n: p.detach().requires_grad_(True) for n, p in params.items()}
    logits = stacked_logits(model, live, x)
    if logits is None:
        return None
    k, b = y.shape
    per_sample = F.cross_entropy(logits.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b)
    loss = ((per_sample * w).sum(1) / w.sum(1).clamp_min(1.0)).sum()
    return dict(zip(live, torch.autograd.grad(loss, list(live.values()), create_graph=create_graph)))


def train_vmap(
    model: nn.Module,
    start: Params,
    xs: list[Tensor],
    ys: list[Tensor],
    plan: TrainPlan,
    lr: float,
    momentum: float,
    chunk: int = 32,
    fused: bool = True,
) -> Params:
    """Train all clients at once: one batched gradient per step over stacked client parameters.

    Clients are trained `chunk` at a time (independent, so the result does not
    depend on it): the activations of a chunk's batches stay in the CPU caches,
    and memory stays flat as the federation grows (bench/throughput.py measures
    both). `fused=False` forces the torch.func.vmap path (benchmarks compare the two).
    """
    if len(xs) > chunk:
        parts = [
            train_vmap(
                model,
                {n: v[i : i + chunk] for n, v in start.items()},
                xs[i : i + chunk],
                ys[i : i + chunk],
                TrainPlan(plan.index[i : i + chunk], plan.weight[i : i + chunk]),
                lr,
                momentum,
                chunk,
                fused,
            )
            for i in range(0, len(xs), chunk)
        ]
        return {n: torch.cat([p[n] for p in parts]) for n in start}
    return _train_stacked(model, start, xs, ys, plan, lr, momentum, fused)


def _train_stacked(
    model: nn.Module,
    start: Params,
    xs: list[Tensor],
    ys: list[Tensor],
    plan: TrainPlan,
    lr: float,
    momentum: float,
    fused: bool,
) -> Params:
    """`train_vmap` for one chunk of clients.

    A step of pure padding has a zero gradient, but momentum would still move the
    model, so such clients keep their parameters and velocity for that step.
    """
    x_all, y_all = pad_stack(xs), pad_stack(ys)
    weight = plan.weight.to(x_all.device)  # the plan is drawn on the CPU; indices may stay there
    rows = torch.arange(len(xs)).unsqueeze(1)
    vmapped = vmap(grad(lambda p, x, y, w: weighted_loss(model, p, x, y, w)))

    def step_grad(p: Params, x: Tensor, y: Tensor, w: Tensor) -> Params:
        fast = stacked_grads(model, p, x, y, w) if fused else None
        return fast if fast is not None else vmapped(p, x, y, w)

    params = dict(start)
    velocity = {n: torch.zeros_like(v) for n, v in params.items()}
    for s in range(plan.index.shape[1]):
        idx, w = plan.index[:, s], weight[:, s]
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
