"""The oracle: an independent judge of (client, class), trained on all clients' real data.

It never sees anything of the attack. Its architecture (5x5 convolutions, BatchNorm,
dropout, two heads) and seed differ from the shared model's, so a generated image
fools it only by looking like the real thing, not by exploiting the same network.

It is trained on sharp and softened images alike (`degrade`): a reconstruction is
a little softer than a photo or a scan, and a judge trained on sharp images only
named the wrong writer and the wrong class for many softened *real* held-out
images, so its verdicts on reconstructions measured their sharpness, not whose
data they show (`heldout_softened_*` in metrics.json keeps checking it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mganai.checkpoint import Checkpointed
from mganai.data.federated import FederatedDataset
from mganai.device import module_device
from mganai.fl.model import seeded

SOFTEN_FACTORS = (1.25, 2.5)  # training: resampled down by a random factor in this range and back up
CHECK_FACTOR = 2.0  # the softening of the held-out check reported as `heldout_softened_*`


def soften(x: Tensor, factor: float) -> Tensor:
    """`x` [B, C, H, W] resampled down by `factor` and back up (antialiased bilinear): the same image, less detail."""
    h, w = x.shape[-2:]
    small = (max(2, round(h / factor)), max(2, round(w / factor)))
    down = F.interpolate(x, size=small, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(down, size=(h, w), mode="bilinear", align_corners=False)


def degrade(x: Tensor, generator: torch.Generator) -> Tensor:
    """A training batch with about half of its images softened by one random factor (the rest unchanged)."""
    pick = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    low, high = SOFTEN_FACTORS
    factor = low + (high - low) * float(torch.rand(1, generator=generator))
    out = x.clone()
    if pick.any():
        out[pick] = soften(x[pick], factor)
    return out


class OracleNet(nn.Module):
    """Two-headed CNN: identity over N clients and class over C classes."""

    def __init__(self, channels: int, num_clients: int, num_classes: int, width: int = 32):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, width, 5, padding=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 5, padding=2),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(2 * width * 16, 128),
            nn.ReLU(),
        )
        self.identity = nn.Linear(128, num_clients)
        self.category = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.identity(h), self.category(h)


@dataclass
class Oracle(Checkpointed):
    """A trained oracle and its held-out accuracies."""

    STATE = (
        "net",
        "heldout_identity_accuracy",
        "heldout_class_accuracy",
        "heldout_softened_identity_accuracy",
        "heldout_softened_class_accuracy",
    )

    net: OracleNet
    heldout_identity_accuracy: float
    heldout_class_accuracy: float
    heldout_softened_identity_accuracy: float = 0.0  # on the held-out images softened by CHECK_FACTOR
    heldout_softened_class_accuracy: float = 0.0

    @torch.no_grad()
    def predict(self, x: Tensor, batch: int = 1024) -> tuple[Tensor, Tensor]:
        """Predicted client and class for each image (on the CPU, wherever the net computes)."""
        self.net.eval()
        device = module_device(self.net)
        ids, cls = [], []
        for i in range(0, len(x), batch):
            a, b = self.net(x[i : i + batch].to(device))
            ids.append(a.argmax(1).cpu())
            cls.append(b.argmax(1).cpu())
        return torch.cat(ids), torch.cat(cls)


def train_oracle(
    data: FederatedDataset, seed: int, epochs: int, batch: int = 64, device: torch.device | str = "cpu"
) -> Oracle:
    """Train on every client's training split (on `device`), report accuracy on every client's held-out split."""
    device = torch.device(device)
    # dropout draws from the device's global RNG: seeded here, restored after, so nothing else sees it
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        return _train(data, seed, epochs, batch, device)


def _train(data: FederatedDataset, seed: int, epochs: int, batch: int, device: torch.device) -> Oracle:
    x, y, owner = (t.to(device) for t in data.train())
    net = seeded(lambda: OracleNet(data.image_shape[0], data.num_clients, data.num_classes), seed).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * -(-len(y) // batch))
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch):
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            id_logits, cls_logits = net(degrade(x[idx], gen))
            loss = F.cross_entropy(id_logits, owner[idx]) + F.cross_entropy(cls_logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    oracle = Oracle(net, 0.0, 0.0)
    xt, yt, ot = data.heldout()
    oracle.heldout_identity_accuracy, oracle.heldout_class_accuracy = _accuracies(oracle, xt, ot, yt)
    softened = _accuracies(oracle, soften(xt, CHECK_FACTOR), ot, yt)
    oracle.heldout_softened_identity_accuracy, oracle.heldout_softened_class_accuracy = softened
    return oracle


def _accuracies(oracle: Oracle, x: Tensor, owner: Tensor, y: Tensor) -> tuple[float, float]:
    """Shares of `x` whose client and whose class the oracle names right."""
    pid, pcls = oracle.predict(x)
    return float((pid == owner).float().mean()), float((pcls == y).float().mean())
