"""Data representatives: images whose training gradient points like a client's update.

For every client k the attacker solves, on the model the client received,

    X_k = argmin_X  1 - cos(grad_M L(M; X, y_k), -u_k)  +  tv_weight * TV(X)

with labels y_k read off the update itself (see `present_classes`). All clients are
solved in one optimisation: per-client gradients come from one batched computation
over the stacked client models (`mganai.fl.client.stacked_grads`, the FL engine's
grouped-conv fast path, or `vmap(grad(...))` for other models), so N clients cost
one batched computation, not N.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from mganai.fl.client import stacked_grads
from mganai.fl.model import Params


def present_classes(update: Params, weight_key: str = "classifier.weight", rel_tol: float = 1e-3) -> Tensor:
    """Which classes a client trained on, from its update of the last layer: [K, C] bool.

    The classifier sees ReLU features h >= 0, and the cross-entropy gradient of class
    j's weight row is sum_i (p_ij - [y_i = j]) h_i. For a class absent from the
    client's data every term is >= 0, so SGD (with or without momentum) only ever
    lowers that row: its update has no positive entry, and an absent class is never
    reported. A class the client holds pushes some entries up in the steps that see
    it; over many local steps the other steps can outweigh that, so a rarely seen
    class may be missed (the representatives then skip it).
    """
    dw = update[weight_key]  # [K, C, H]
    top = dw.amax(dim=2)
    scale = dw.abs().amax(dim=(1, 2), keepdim=False).clamp_min(1e-12)
    present = top > rel_tol * scale.unsqueeze(1)
    # A client always holds at least one class: fall back to the row pushed up most.
    none = ~present.any(dim=1)
    if none.any():
        present[none, top[none].argmax(dim=1)] = True
    return present


def labels_for(present: Tensor, per_client: int) -> Tensor:
    """`per_client` labels per client cycling over its present classes: [K, R] (on `present`'s device)."""
    rows = []
    for mask in present.cpu():  # a few tiny steps per client: on the CPU, not one GPU sync each
        classes = mask.nonzero().flatten()
        rows.append(classes[torch.arange(per_client) % len(classes)])
    return torch.stack(rows).to(present.device)


def total_variation(x: Tensor) -> Tensor:
    """Mean absolute difference between neighbouring pixels."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def update_match_loss(
    model: nn.Module, sent: Params, updates: Params, images: Tensor, labels: Tensor, fused: bool = True
) -> Tensor:
    """Per-client 1 - cos(grad of the loss on `images`, -update): [K].

    `sent`/`updates` are stacked over K clients, `images` is [K, R, C, H, W] and
    `labels` [K, R]. The K gradients come from one batched computation (`fused=False`:
    always `vmap(grad(...))`, which benchmarks compare against), and the result
    is differentiable in `images` (double backpropagation).
    """
    names = sorted(updates)
    k = labels.shape[0]
    target = torch.cat([-updates[n].reshape(k, -1) for n in names], dim=1)

    ones = images.new_ones(labels.shape)
    stacked = stacked_grads(model, sent, images, labels, ones, create_graph=True) if fused else None
    if stacked is not None:  # the FL engine's fast path: grouped convs, channels-last
        grads = torch.cat([stacked[n].reshape(k, -1) for n in names], dim=1)
        return 1 - F.cosine_similarity(grads, target, dim=1)

    def client_grad(params: Params, x: Tensor, y: Tensor) -> Tensor:
        g = grad(lambda p: F.cross_entropy(functional_call(model, p, (x,)), y))(params)
        return torch.cat([g[n].reshape(-1) for n in names])

    return 1 - F.cosine_similarity(vmap(client_grad)(sent, images, labels), target, dim=1)


def initial_latent(n: int, image_shape: tuple[int, int, int], generator: torch.Generator) -> Tensor:
    """Where the inversion starts: n dark, slightly noisy half-resolution latents [n, C, H/2, W/2]."""
    c, h, w = image_shape
    return -1.0 + 0.3 * torch.randn((n, c, max(4, h // 2), max(4, w // 2)), generator=generator)


def latent_images(latent: Tensor, h: int, w: int) -> Tensor:
    """Latents to images in [-1, 1]: tanh, then bilinear upsampling to h x w (the smoothness prior)."""
    return F.interpolate(torch.tanh(latent), size=(h, w), mode="bilinear", align_corners=False)


def invert_updates(
    model: nn.Module,
    sent: Params,
    updates: Params,
    labels: Tensor,
    image_shape: tuple[int, int, int],
    steps: int,
    lr: float,
    tv_weight: float,
    generator: torch.Generator,
    fused: bool = True,
) -> Tensor:
    """Representatives for K clients at once: [K, R, C, H, W] in [-1, 1].

    `sent` and `updates` are stacked over the K clients; `labels` is [K, R]. The
    images live in a half-resolution latent, bilinearly upsampled: a smoothness
    prior that keeps the few constraints of one update from being spent on pixel
    noise.
    """
    k, r = labels.shape
    c, h, w = image_shape
    latent = initial_latent(k * r, image_shape, generator).to(labels.device).requires_grad_(True)
    opt = torch.optim.Adam([latent], lr=lr)

    def images() -> Tensor:
        return latent_images(latent, h, w).view(k, r, c, h, w)

    for _ in range(steps):
        x = images()
        # k * TV over all clients' images = the sum of the clients' own TV terms (equal sizes)
        loss = update_match_loss(model, sent, updates, x, labels, fused).sum() + tv_weight * k * total_variation(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return images().detach()


def invert_updates_loop(
    model: nn.Module,
    sent: Params,
    updates: Params,
    labels: Tensor,
    image_shape: tuple[int, int, int],
    steps: int,
    lr: float,
    tv_weight: float,
    generator: torch.Generator,
) -> Tensor:
    """`invert_updates` one client at a time: the reference it is tested and benchmarked against.

    Same objective, same initial latent (drawn for all clients at once, then split)
    and Adam per client; Adam is elementwise, so K separate optimisations equal the
    batched one up to float rounding. Gradients by plain double backpropagation, no vmap.
    """
    k, r = labels.shape
    _, h, w = image_shape
    start = initial_latent(k * r, image_shape, generator).to(labels.device)
    names = sorted(updates)
    out = []
    for i in range(k):
        latent = start[i * r : (i + 1) * r].clone().requires_grad_(True)
        opt = torch.optim.Adam([latent], lr=lr)
        params = {n: sent[n][i].detach().requires_grad_(True) for n in names}
        target = torch.cat([-updates[n][i].reshape(-1) for n in names])

        def image(latent: Tensor = latent) -> Tensor:  # this client's latent, bound now
            return latent_images(latent, h, w)

        for _ in range(steps):
            x = image()
            loss_fit = F.cross_entropy(functional_call(model, params, (x,)), labels[i])
            g = torch.autograd.grad(loss_fit, [params[n] for n in names], create_graph=True)
            flat = torch.cat([t.reshape(-1) for t in g])
            loss = 1 - F.cosine_similarity(flat, target, dim=0) + tv_weight * total_variation(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out.append(image().detach())
    return torch.stack(out)
