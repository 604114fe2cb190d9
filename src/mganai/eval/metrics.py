"""Metrics computed the same way for every method: oracle rates and nearest-neighbour SSIM.

The oracle's rates count a sample only when it looks like data (`Oracle.judge`'s
open set): a sample like no client's real image is credited to nobody and to no
class. The closed-set rates, which credit every sample to some client, are kept
beside them (`*_closed_set`) for comparison with earlier runs.

Identity is read against a request that cannot know the victim: the same method,
asked for the same classes with the same noise but *as another client*
(`identity_as_others`). A method that ignores whose data it is asked for (a
class-level GAN) answers both requests alike, so its `identity_advantage` is
exactly 0; what a user-level method leaks about the victim is the advantage.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from pytorch_msssim import ssim
from torch import Tensor

from mganai.data.federated import FederatedDataset
from mganai.eval.oracle import Oracle


def oracle_rates(oracle: Oracle, samples: Tensor, classes: Tensor, victim: int) -> dict[str, float]:
    """Shares of samples that look like data and that the oracle assigns to the victim, to the asked class, and
    to both; the share that looks like data; and the same three rates over every sample (closed set)."""
    v = oracle.judge(samples)
    is_victim, is_class, data = v.client == victim, v.category == classes, v.data_like
    return {
        "victim_identity_rate": _share(is_victim & data),
        "class_accuracy": _share(is_class & data),
        "joint_success": _share(is_victim & is_class & data),
        "data_like_rate": _share(data),
        "victim_identity_rate_closed_set": _share(is_victim),
        "class_accuracy_closed_set": _share(is_class),
        "joint_success_closed_set": _share(is_victim & is_class),
    }


def identity_as_others(oracle: Oracle, as_others: Mapping[int, Tensor], victim: int) -> float:
    """The share of samples requested as another client that the oracle calls the victim's data (data-like only),
    averaged over the other clients (`as_others`: client -> the samples requested as that client)."""
    shares = []
    for client, samples in as_others.items():
        if client == victim:
            raise ValueError("identity_as_others: the victim is not another client")
        v = oracle.judge(samples)
        shares.append(_share((v.client == victim) & v.data_like))
    return sum(shares) / len(shares) if shares else float("nan")


def other_clients(victim: int, num_clients: int, most: int) -> list[int]:
    """The clients a request 'as another client' is made for: every other client, or `most` of them spread evenly
    over the others (in index order after the victim) when there are more."""
    others = [(victim + i) % num_clients for i in range(1, num_clients)]
    if len(others) <= most:
        return sorted(others)
    return sorted(others[round(j * len(others) / most)] for j in range(most))


def _share(mask: Tensor) -> float:
    return float(mask.float().mean()) if len(mask) else float("nan")


_PAIRS_PER_CALL = 4096  # bounds the memory of one batched SSIM call


def _ssim_window(size: int) -> int:
    return 11 if size >= 32 else 7 if size >= 16 else 3


@torch.no_grad()
def nearest_ssim(samples: Tensor, reference: Tensor) -> Tensor:
    """For each sample, the SSIM of its most similar reference image: [n]."""
    if len(reference) == 0:
        return torch.full((len(samples),), float("nan"))
    win = _ssim_window(samples.shape[-1])
    m = len(reference)
    step = max(1, _PAIRS_PER_CALL // m)  # samples per batched call: every (sample, reference) pair at once
    best = []
    for part in samples.split(step):
        pairs = part.repeat_interleave(m, dim=0)
        refs = reference.repeat(len(part), 1, 1, 1)
        # data_range 2: images live in [-1, 1]; shift to [0, 2] as SSIM expects non-negative data.
        scores = ssim(pairs + 1, refs + 1, data_range=2.0, size_average=False, win_size=win)
        best.append(scores.view(len(part), m).amax(dim=1))
    return torch.cat(best) if best else torch.zeros(0)


def nn_ssim(data: FederatedDataset, samples: Tensor, classes: Tensor, victim: int) -> dict[str, float]:
    """Nearest-neighbour SSIM of each sample to the victim's real samples of its class, and to others'.

    `nn_ssim_others` averages over the other clients one at a time, so both numbers
    search among the same number of candidates (one client's samples of a class);
    searching all other clients at once would favour them by sheer count.
    """
    per_client = []
    for client in data.clients:
        scores = torch.zeros(len(samples))
        for c in classes.unique():
            mask = classes == c
            scores[mask] = nearest_ssim(samples[mask], client.x_train[client.y_train == c])
        per_client.append(scores.nanmean())
    others = [float(v) for k, v in enumerate(per_client) if k != victim]
    return {"nn_ssim_victim": float(per_client[victim]), "nn_ssim_others": sum(others) / len(others)}


def sample_diversity(samples: Tensor, classes: Tensor) -> float:
    """Mean per-pixel standard deviation among the samples of one class, averaged over classes.

    Near 0 when a generator draws the same image whatever its noise (mode collapse);
    compare it with the same number for real data.
    """
    spreads = [samples[classes == c].std(0).mean() for c in classes.unique() if int((classes == c).sum()) > 1]
    return float(torch.stack(spreads).mean()) if spreads else float("nan")


def real_data_reference(data: FederatedDataset, victim: int) -> dict[str, float]:
    """The same similarity and diversity numbers for real images, to read a method's against.

    `heldout_nn_ssim_victim`/`_others`: the victim's real held-out images scored as if
    they were a method's samples. A method whose `nn_ssim_victim` is below
    `heldout_nn_ssim_others` makes images less like the victim's data than another
    person's real data of the same class is: whatever the oracle says, they do not look
    like data.
    """
    v = data.clients[victim]
    scores = nn_ssim(data, v.x_test, v.y_test, victim)
    return {
        "heldout_nn_ssim_victim": scores["nn_ssim_victim"],
        "heldout_nn_ssim_others": scores["nn_ssim_others"],
        "victim_diversity": sample_diversity(v.x_train, v.y_train),
    }
