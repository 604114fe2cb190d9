"""Lab benchmark (issue 23): can update matching find a client's *camera*, given public photos?

A different generator for the public-data threat model, tried outside the attack:
the content is the server's public images of the asked class, and the only thing
conditioned on the client is a small differentiable camera (colour matrix, gains,
offsets, per-channel gamma, vignetting, barrel/pincushion distortion, blur or
sharpening, sensor noise: 23 numbers per client for colour images). Nothing can
collapse (the content is real public images) and nothing can draw noise textures
(every output is a photo through a lens); the question is whether the updates
carry a client's acquisition well enough to fit it.

For each seed: the dataset with `--public-clients` clients withheld (as `mganai run
--public-clients`), FL with the default recipe, the default open-set judge; then
one camera per federated client fitted at once by update matching (every round
from `attack.start_round` on, 16 public images per client per step), and every client scored as the victim:
its camera over 20 public images per class, judged against the same images through
the other clients' cameras (`as others`). `--fit judge` fits the cameras to the
judge's identity head instead: a diagnostic upper bound on what the camera family
can express, which no attacker has. The other options change the objective
(`--no-blur`, `--class-weight`, `--local-class-weight`, `--difference`,
`--first-layer`) or fit several times and keep, per client, the fit that best
explains its updates (`--restarts`); docs/experiments.md (stop 29) has what each gave.

    .venv/bin/python bench/camera_style.py --dataset folder:DIR --public-clients 3 --seeds 10,11 [--png PREFIX]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mganai.attack.representatives import labels_for, present_classes, update_match_loss
from mganai.config import RunConfig
from mganai.data.public import load_federation
from mganai.device import set_determinism
from mganai.errors import MganaiError
from mganai.eval.metrics import nn_ssim, oracle_rates, real_data_reference, sample_diversity
from mganai.eval.oracle import Oracle, train_oracle
from mganai.fl.client import stacked_grads
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from mganai.io import write_png
from mganai.report.grids import class_rows, panel_grid


class Camera(nn.Module):
    """One camera per client: a bounded photometric and lens model applied to images in [-1, 1]."""

    def __init__(self, clients: int, channels: int, side: int, seed: int, blur: bool = True, spread: float = 0.0):
        super().__init__()
        self.can_blur = blur
        c = channels
        self.matrix = nn.Parameter(torch.zeros(clients, c, c))
        self.gain, self.offset, self.gamma = (nn.Parameter(torch.zeros(clients, c)) for _ in range(3))
        self.vignette, self.distortion, self.blur, self.sharpen, self.noise = (
            nn.Parameter(torch.zeros(clients)) for _ in range(5)
        )
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        self.register_buffer("grid", torch.stack([xx, yy], -1)[None])
        self.register_buffer("r2", (xx**2 + yy**2)[None, None])
        self.register_buffer("kernel", torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]).expand(c, 1, 3, 3) / 16)
        self.rng = torch.Generator().manual_seed(seed)
        if spread:  # a random start (restarts): every parameter drawn around 0
            g = torch.Generator().manual_seed(seed + 7)
            with torch.no_grad():
                for q in self.parameters():
                    q.copy_(spread * torch.randn(q.shape, generator=g))

    def _smooth(self, u: Tensor) -> Tensor:
        return F.conv2d(F.pad(u, (1, 1, 1, 1), mode="replicate"), self.kernel, groups=u.shape[1])

    def forward(self, x: Tensor, k: Tensor) -> Tensor:
        c = x.shape[1]

        def off(p: Tensor) -> Tensor:  # a per-client strength in (0, 1), 0.05 at the start
            return torch.sigmoid(3 * p[k] - 3)[:, None, None, None]

        u = (x + 1) / 2
        m = torch.eye(c) + 0.15 * torch.tanh(self.matrix[k])
        u = torch.einsum("bij,bjhw->bihw", m, u * torch.exp(0.25 * torch.tanh(self.gain[k]))[..., None, None])
        u = u + 0.1 * torch.tanh(self.offset[k])[..., None, None]
        u = u.clamp(1e-3, 1) ** torch.exp(0.5 * torch.tanh(self.gamma[k]))[..., None, None]
        u = u * (1 - 0.5 * off(self.vignette) * self.r2)
        once = self._smooth(u)
        blur = off(self.blur) if self.can_blur else 0.0
        u = u + blur * (self._smooth(once) - u) + 0.5 * off(self.sharpen) * (u - once)
        u = u + 0.08 * off(self.noise) * torch.randn(u.shape, generator=self.rng)
        d = 0.3 * torch.tanh(self.distortion[k])[:, None, None, None]
        u = F.grid_sample(u, self.grid * (1 + d * self.r2.squeeze(1)[..., None]), align_corners=True)
        return (u * 2 - 1).clamp(-1, 1)


class Rounds:
    """Every round the server observed."""

    def __init__(self) -> None:
        self.seen: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.seen.append(obs)


def draw_public(public: tuple[Tensor, Tensor], classes: Tensor, gen: torch.Generator) -> Tensor:
    """One public image of each entry's class, drawn uniformly among that class's images."""
    px, py = public
    by_class = {int(c): torch.nonzero(py == c).flatten() for c in classes.unique()}
    flat = [by_class[int(c)] for c in classes.flatten()]
    return px[torch.stack([idx[int(torch.randint(len(idx), (1,), generator=gen))] for idx in flat])]


def difference_match_loss(
    model: SharedCNN, obs: RoundObservation, images: Tensor, labels: Tensor, first: bool = False, centre: bool = True
) -> Tensor:
    """Sum over clients of 1 - cos(g_k - mean g, -(u_k - mean u)) (`centre`): the part of each update that is
    not the round's common direction, against the same part of each simulated gradient; without `centre`, plain
    1 - cos(g_k, -u_k). `first`: the first convolution's parameters only."""
    names = [n for n in sorted(obs.updates) if not first or n.startswith("features.0.")]
    k = labels.shape[0]
    g = stacked_grads(model, obs.sent, images, labels, images.new_ones(labels.shape), create_graph=True)
    assert g is not None
    grads = torch.cat([g[n].reshape(k, -1) for n in names], dim=1)
    target = torch.cat([-obs.updates[n].reshape(k, -1) for n in names], dim=1)
    if centre:
        grads, target = grads - grads.mean(0), target - target.mean(0)
    return (1 - F.cosine_similarity(grads, target, dim=1)).sum()


def fit(
    camera: Camera,
    model: SharedCNN,
    rounds: list[RoundObservation],
    public: tuple[Tensor, Tensor],
    oracle: Oracle | None,
    steps: int,
    per_client: int,
    gen: torch.Generator,
    class_weight: float = 0.0,
    local_class_weight: float = 0.0,
    difference: bool = False,
    first_layer: bool = False,
) -> None:
    """Fit every client's camera at once: to its updates (`oracle` None), or to the judge's identity head."""
    opt = torch.optim.Adam(camera.parameters(), lr=0.05)
    if oracle is not None:
        oracle.net.eval().requires_grad_(False)
    for _ in range(steps):
        obs = rounds[int(torch.randint(len(rounds), (1,), generator=gen))]
        ids = torch.tensor(obs.client_ids)
        labels = labels_for(present_classes(obs.updates), per_client)
        if difference:  # one content batch (the first client's labels) for all: gradients differ by the camera alone
            labels = labels[:1].expand_as(labels)
        rows = labels[:1] if difference else labels
        content = draw_public(public, rows, gen)
        x = camera(content.repeat(len(labels) // len(rows), 1, 1, 1), ids.repeat_interleave(per_client))
        xs = x.view(*labels.shape, *x.shape[1:])  # [K, R, C, H, W]: client k's batch in row k
        if oracle is None and (difference or first_layer):
            loss = difference_match_loss(model, obs, xs, labels, first_layer, centre=difference)
        elif oracle is None:
            loss = update_match_loss(model, obs.sent, obs.updates, xs, labels).sum()
        else:
            loss = F.cross_entropy(oracle.net(x)[0], ids.repeat_interleave(per_client)) * len(ids)
        if class_weight:  # the asked class for the last shared model the server sent
            logits = torch.func.functional_call(model, rounds[-1].global_params, (x,))
            loss = loss + class_weight * len(ids) * F.cross_entropy(logits, labels.flatten())
        if local_class_weight:  # the asked class for each client's own model (sent + update): it knows its camera
            local = {n: obs.sent[n] + obs.updates[n] for n in obs.sent}
            logits = torch.func.vmap(lambda q, xi: torch.func.functional_call(model, q, (xi,)))(local, xs)
            loss = loss + local_class_weight * len(ids) * F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def match_scores(
    camera: Camera, model: SharedCNN, rounds: list[RoundObservation], public: tuple[Tensor, Tensor], seed: int
) -> Tensor:
    """Each client's mean 1 - cos over every kept round, on content drawn the same way for every camera: [K].
    What the attacker can compare restarts by (lower: the camera explains the client's updates better)."""
    gen = torch.Generator().manual_seed(seed + 99)
    total = torch.zeros(len(rounds[0].client_ids))
    for obs in rounds:
        labels = labels_for(present_classes(obs.updates), 16)
        ids = torch.tensor(obs.client_ids)
        x = camera(draw_public(public, labels, gen), ids.repeat_interleave(16)).detach()
        scores = update_match_loss(model, obs.sent, obs.updates, x.view(*labels.shape, *x.shape[1:]), labels)
        total[ids] += scores.detach()
    return total / len(rounds)


def fit_one(
    args: argparse.Namespace,
    camera: Camera,
    model: SharedCNN,
    kept: list[RoundObservation],
    public: tuple[Tensor, Tensor],
    oracle: Oracle,
    seed: int,
) -> None:
    """One fit with the command line's objective."""
    fit(
        camera,
        model,
        kept,
        public,
        oracle if args.fit == "judge" else None,
        args.steps,
        16,
        torch.Generator().manual_seed(seed),
        args.class_weight,
        args.local_class_weight,
        args.difference,
        args.first_layer,
    )


def one_seed(args: argparse.Namespace, seed: int) -> list[dict[str, float]]:
    cfg = RunConfig()
    cfg.seed, cfg.data.dataset, cfg.data.public_clients = seed, args.dataset, args.public_clients
    fed = load_federation(cfg.data, 0, seed)
    data, public = fed.data, fed.public
    assert public is not None
    c, h, _ = data.image_shape
    model = SharedCNN(c, data.num_classes, h)
    init = params_of(seeded(lambda: SharedCNN(c, data.num_classes, h), seed))
    rounds = Rounds()
    t0 = time.perf_counter()
    result = FedAvgSimulator(model, init, data, cfg.fl, seed, observers=[rounds]).run()
    oracle = train_oracle(data, seed + cfg.eval.oracle_seed_offset, cfg.eval.oracle_epochs)
    t1 = time.perf_counter()
    kept = [o for o in rounds.seen if o.round >= cfg.attack.start_round]
    best: Camera | None = None
    best_score = torch.full((data.num_clients,), float("inf"))
    for r in range(args.restarts):
        camera = Camera(data.num_clients, c, h, seed + 1000 * r, not args.no_blur, args.spread if r else 0.0)
        fit_one(args, camera, model, kept, (public.x, public.y), oracle, seed + 1000 * r)
        if args.restarts == 1:
            best = camera
            break
        score = match_scores(camera, model, kept, (public.x, public.y), seed)
        print(f"  restart {r}: match score per client " + " ".join(f"{v:.4f}" for v in score.tolist()), flush=True)
        if best is None:
            best = camera
        better = score < best_score
        with torch.no_grad():  # every parameter is indexed by client first: keep each client's best row
            for q_best, q in zip(best.parameters(), camera.parameters(), strict=True):
                q_best[better] = q[better]
        best_score = torch.minimum(best_score, score)
    assert best is not None
    camera = best
    t2 = time.perf_counter()
    print(
        f"seed {seed}: FL {result.test_accuracy[-1]:.3f}, FL + judge {t1 - t0:.0f} s, fit {t2 - t1:.0f} s", flush=True
    )
    classes = torch.arange(data.num_classes).repeat_interleave(20)
    draw = torch.Generator().manual_seed(seed + 1)
    content = draw_public((public.x, public.y), classes, draw)
    with torch.no_grad():
        outs = [camera(content, torch.full_like(classes, k)) for k in range(data.num_clients)]
    rows = []
    for k in range(data.num_clients):
        s = oracle_rates(oracle, outs[k], classes, k)
        others = [
            oracle_rates(oracle, outs[j], classes, k)["victim_identity_rate"] for j in range(data.num_clients) if j != k
        ]
        ref = real_data_reference(data, k)
        sim = nn_ssim(data, outs[k], classes, k)
        row = {
            "identity": s["victim_identity_rate"],
            "as_others": statistics.mean(others),
            "joint": s["joint_success"],
            "data_like": s["data_like_rate"],
            "nn_ssim": sim["nn_ssim_victim"],
            "floor": ref["heldout_nn_ssim_others"],
            "diversity": sample_diversity(outs[k], classes) / ref["victim_diversity"],
        }
        row["advantage"] = row["identity"] - row["as_others"]
        rows.append(row)
        print(
            f"  client {k}: advantage {row['advantage']:+.3f} (identity {row['identity']:.3f}, as others "
            f"{row['as_others']:.3f}) joint {row['joint']:.3f} data-like {row['data_like']:.2f} NN-SSIM "
            f"{row['nn_ssim']:.3f} (floor {row['floor']:.3f}) diversity {row['diversity']:.2f}",
            flush=True,
        )
    if args.png:
        v = data.clients[args.png_client]
        panels = [
            class_rows(content, classes, data.num_classes, 6),
            class_rows(outs[args.png_client], classes, data.num_classes, 6),
        ]
        write_png(
            f"{args.png}.seed{seed}.png", panel_grid([*panels, class_rows(v.x_train, v.y_train, data.num_classes, 6)])
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="a dataset spec, e.g. folder:DIR")
    p.add_argument("--public-clients", type=int, default=3)
    p.add_argument("--seeds", default="10")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--fit", choices=("updates", "judge"), default="updates")
    p.add_argument(
        "--png", help="write PREFIX.seedS.png: public content | client's camera over it | client's real data"
    )
    p.add_argument("--png-client", type=int, default=1)
    p.add_argument("--no-blur", action="store_true", help="the camera may sharpen but not blur")
    p.add_argument("--class-weight", type=float, default=0.0, help="the asked class under the last shared model")
    p.add_argument("--restarts", type=int, default=1, help="fits; keep each client's that best explains its updates")
    p.add_argument("--spread", type=float, default=0.5, help="how far from the identity camera a restart starts")
    p.add_argument("--first-layer", action="store_true", help="match the first convolution's update only")
    p.add_argument(
        "--difference",
        action="store_true",
        help="match updates minus the round's mean update, on one content batch with the first client's labels",
    )
    p.add_argument("--local-class-weight", type=float, default=0.0, help="the asked class under each client's model")
    args = p.parse_args()
    if args.public_clients < 1 or args.restarts < 1:
        p.error("--public-clients and --restarts must be at least 1 (the camera needs public photos)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    set_determinism()
    try:
        rows = [r for s in args.seeds.split(",") for r in one_seed(args, int(s))]
    except MganaiError as exc:  # a missing folder, a bad dataset spec, too many withheld clients: one line
        raise SystemExit(f"camera_style: {exc}") from None
    for key in ("advantage", "identity", "joint", "data_like", "diversity"):
        vals = [r[key] for r in rows]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"{key}: {statistics.mean(vals):.3f} +- {sd:.3f}, min {min(vals):.3f} over {len(vals)} clients x seeds")
    above = sum(r["nn_ssim"] > r["floor"] for r in rows)
    print(f"NN-SSIM above the other-client floor: {above} of {len(rows)}")


if __name__ == "__main__":
    main()
