"""The oracle judges whose data an image shows, also when the image is softer than a scan."""

from __future__ import annotations

import pytest
import torch

from mganai.attack.representatives import total_variation
from mganai.config import DataConfig
from mganai.data import load_dataset
from mganai.eval import oracle as oracle_module
from mganai.eval.oracle import degrade, soften, train_oracle


def test_soften_keeps_the_picture_and_drops_its_detail():
    x = load_dataset(DataConfig(), 0).clients[0].x_train[:32]
    soft = soften(x, 2.0)
    assert soft.shape == x.shape
    assert total_variation(soft) < 0.8 * total_variation(x)  # less fine detail
    assert torch.corrcoef(torch.stack([soft.flatten(), x.flatten()]))[0, 1] > 0.8  # the same picture
    assert torch.allclose(soften(x, 1.0), x, atol=1e-5)


def test_degrade_softens_about_half_of_a_batch_and_leaves_the_rest_untouched():
    x = torch.rand(200, 1, 16, 16) * 2 - 1
    out = degrade(x, torch.Generator().manual_seed(3))
    same = (out == x).flatten(1).all(1)
    assert 60 < int(same.sum()) < 140
    changed = out[~same]
    # the changed ones are all softened by one factor in the training range
    factors = torch.linspace(*oracle_module.SOFTEN_FACTORS, 126)
    errors = [float((soften(x[~same], float(f)) - changed).abs().max()) for f in factors]
    assert min(errors) < 0.05
    assert torch.equal(out, degrade(x, torch.Generator().manual_seed(3)))  # reproducible


@pytest.mark.parametrize("softened_training", [True, False])
def test_the_oracle_still_knows_the_writer_of_a_softened_image(softened_training, monkeypatch):
    """Trained on sharp and softened images, the oracle names the writer of softened held-out images nearly
    as well as of sharp ones; trained on sharp images only, it does not (what made it misjudge reconstructions)."""
    if not softened_training:
        monkeypatch.setattr(oracle_module, "degrade", lambda x, generator: x)
    data = load_dataset(DataConfig(), 0)
    oracle = train_oracle(data, seed=5, epochs=3)
    assert oracle.heldout_identity_accuracy > 0.9
    gap = oracle.heldout_identity_accuracy - oracle.heldout_softened_identity_accuracy
    if softened_training:
        assert gap < 0.1
    else:
        assert gap > 0.2
