"""Data representatives: the batched inversion equals a per-client loop of the same optimisation."""

from __future__ import annotations

import torch

from mganai.attack.representatives import invert_updates, invert_updates_loop, labels_for, present_classes
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator


class _Last:
    obs: RoundObservation | None = None

    def observe(self, obs: RoundObservation) -> None:
        self.obs = obs


def test_batched_inversion_gives_the_per_client_loops_images(small_fed, model, init_params, fl_cfg):
    last = _Last()
    FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0, observers=[last]).run()
    obs = last.obs
    assert obs is not None
    labels = labels_for(present_classes(obs.updates), 3)
    args = (model, obs.sent, obs.updates, labels, (1, 16, 16), 6, 0.1, 0.05)
    batched = invert_updates(*args, torch.Generator().manual_seed(1))
    looped = invert_updates_loop(*args, torch.Generator().manual_seed(1))
    start = invert_updates(*args[:5], 0, 0.1, 0.05, torch.Generator().manual_seed(1))  # no step: the initial images
    assert batched.shape == looped.shape == (4, 3, 1, 16, 16)
    # Adam normalises each pixel's gradient, so a pixel whose gradient is ~0 moves on float rounding alone and
    # a few pixels may differ by ~1e-3 (more on some CPUs' kernels): the images agree on average and everywhere
    # by far less than they moved.
    diff = (batched - looped).abs()
    assert diff.mean() < 1e-4 and diff.max() < 1e-2, (diff.mean(), diff.max())
    assert (batched - start).abs().mean() > 0.05
    assert (batched - start).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-2  # every client's images moved
