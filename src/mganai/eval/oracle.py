"""The oracle: an independent judge of (client, class), trained on all clients' real data.

It never sees anything of the attack. Its architecture (5x5 convolutions, BatchNorm,
dropout, two heads) and seed differ from the shared model's, so a generated image
fools it only by looking like the real thing, not by exploiting the same network.

It is trained on sharp and softened images alike (`degrade`): a reconstruction is
a little softer than a photo or a scan, and a judge trained on sharp images only
named the wrong writer and the wrong class for many softened *real* held-out
images, so its verdicts on reconstructions measured their sharpness, not whose
data they show (`heldout_softened_*` in metrics.json keeps checking it).

It is an open-set judge: it may say "like no client". A classifier names *some*
client and *some* class for any input, blobs and noise included (a class-level GAN
that knows nothing of the victim got 0.58 victim identity on blurred shapes). So
the oracle keeps its own features (the trunk's 128-d output, L2-normalised) of
every training image, and a sample counts as data only when its cosine distance to
the nearest of them is within `open_set_threshold`: the distance that 95 % of the
held-out real images, sharp and softened, stay within. Samples beyond it are like
no client's data, and the headline rates (`eval.metrics.oracle_rates`) do not
credit them to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mganai.checkpoint import Checkpointed
from mganai.data.federated import FederatedDataset
from mganai.device import module_device
from mganai.fl.model import seeded

SOFTEN_FACTORS = (1.25, 2.5)  # training: resampled down by a random factor in this range and back up
CHECK_FACTOR = 2.0  # the softening of the held-out check reported as `heldout_softened_*`
OPEN_SET_QUANTILE = 0.95  # share of held-out real images (sharp and softened) the open-set threshold lets through
FEATURES = 128  # width of the trunk's output


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
            nn.Linear(2 * width * 16, FEATURES),
            nn.ReLU(),
        )
        self.identity = nn.Linear(FEATURES, num_clients)
        self.category = nn.Linear(FEATURES, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        return self.identity(h), self.category(h)


@dataclass(frozen=True)
class Verdict:
    """The oracle on a batch of images: the client and class it names, and whether the image looks like data."""

    client: Tensor  # [n] the client it names (closed set: always some client)
    category: Tensor  # [n] the class it names
    data_like: Tensor  # [n] bool: within the open-set threshold of some client's real training image


@dataclass
class Oracle(Checkpointed):
    """A trained oracle, its held-out accuracies and its open-set calibration."""

    STATE = (
        "net",
        "heldout_identity_accuracy",
        "heldout_class_accuracy",
        "heldout_softened_identity_accuracy",
        "heldout_softened_class_accuracy",
        "features",
        "open_set_threshold",
        "heldout_data_like_rate",
        "heldout_softened_data_like_rate",
    )

    net: OracleNet
    heldout_identity_accuracy: float
    heldout_class_accuracy: float
    heldout_softened_identity_accuracy: float = 0.0  # on the held-out images softened by CHECK_FACTOR
    heldout_softened_class_accuracy: float = 0.0
    features: Tensor = field(default_factory=lambda: torch.zeros(0, FEATURES))  # every training image's, unit length
    open_set_threshold: float = 2.0  # cosine distance beyond which an image is like no client's (2: none is)
    heldout_data_like_rate: float = float("nan")  # held-out real images within the threshold
    heldout_softened_data_like_rate: float = float("nan")  # the same images softened by CHECK_FACTOR

    @torch.no_grad()
    def predict(self, x: Tensor, batch: int = 1024) -> tuple[Tensor, Tensor]:
        """Predicted client and class for each image (on the CPU, wherever the net computes)."""
        verdict = self.judge(x, batch, open_set=False)
        return verdict.client, verdict.category

    @torch.no_grad()
    def judge(self, x: Tensor, batch: int = 1024, open_set: bool = True) -> Verdict:
        """Client, class and data-likeness of each image (on the CPU); `open_set=False` skips the latter (all True)."""
        self.net.eval()
        device = module_device(self.net)
        ids, cls, near = [], [], []
        for i in range(0, len(x), batch):
            h = self.net.trunk(x[i : i + batch].to(device))
            ids.append(self.net.identity(h).argmax(1).cpu())
            cls.append(self.net.category(h).argmax(1).cpu())
            if open_set:
                near.append(nearest_distance(F.normalize(h, dim=1), self.features.to(device)).cpu())
        data_like = torch.cat(near) <= self.open_set_threshold if open_set else torch.ones(len(x), dtype=torch.bool)
        return Verdict(torch.cat(ids), torch.cat(cls), data_like)

    @torch.no_grad()
    def distance(self, x: Tensor, batch: int = 1024) -> Tensor:
        """Each image's cosine distance to the nearest training image, in the oracle's features (on the CPU)."""
        return nearest_distance(self.embed(x, batch), self.features)

    @torch.no_grad()
    def embed(self, x: Tensor, batch: int = 1024) -> Tensor:
        """The trunk's features of each image, L2-normalised, in eval mode: [n, FEATURES] on the CPU."""
        self.net.eval()
        device = module_device(self.net)
        parts = [F.normalize(self.net.trunk(x[i : i + batch].to(device)), dim=1).cpu() for i in range(0, len(x), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, FEATURES)


def nearest_distance(h: Tensor, bank: Tensor, chunk: int = 4096) -> Tensor:
    """1 - the largest cosine similarity of each unit-length row of `h` to a row of `bank` ([n]; 1 when `bank` is
    empty). A feature vector of zeros (every unit silent) is at distance 1 from everything."""
    if len(bank) == 0:
        return torch.ones(len(h), device=h.device)
    best = torch.cat([(part @ bank.T).amax(1) for part in h.split(chunk)]) if len(h) else h.new_zeros(0)
    return 1 - best


def calibrate(distances: Tensor, quantile: float = OPEN_SET_QUANTILE) -> float:
    """The open-set threshold: the `quantile` of real images' nearest-training-image distances."""
    return float(torch.quantile(distances.double(), quantile))


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
    open_set(oracle, x, xt)
    return oracle


def open_set(oracle: Oracle, train: Tensor, heldout: Tensor) -> None:
    """Keep the features of the training images and calibrate the threshold on the held-out ones, sharp and
    softened (reconstructions are softer than real images; a softened real image is still data)."""
    oracle.features = oracle.embed(train)
    sharp, soft = oracle.distance(heldout), oracle.distance(soften(heldout, CHECK_FACTOR))
    oracle.open_set_threshold = calibrate(torch.cat([sharp, soft]))
    oracle.heldout_data_like_rate = float((sharp <= oracle.open_set_threshold).float().mean())
    oracle.heldout_softened_data_like_rate = float((soft <= oracle.open_set_threshold).float().mean())


def _accuracies(oracle: Oracle, x: Tensor, owner: Tensor, y: Tensor) -> tuple[float, float]:
    """Shares of `x` whose client and whose class the oracle names right."""
    pid, pcls = oracle.predict(x)
    return float((pid == owner).float().mean()), float((pcls == y).float().mean())
