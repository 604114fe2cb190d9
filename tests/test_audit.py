"""The audit end to end on a tiny config: every method is scored and drawn, and runs repeat exactly."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from pytorch_msssim import ssim

from mganai.cli import main
from mganai.config import ALL_METHODS
from mganai.eval import metrics
from tinyrun import TINY_AUDIT

TINY = TINY_AUDIT.replace("rounds = 4", "rounds = 3")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    (root / "tiny.toml").write_text(TINY)
    outs = []
    for name in ("a", "b"):
        code = main(["run", "--config", str(root / "tiny.toml"), "--out", str(root / name), "--quiet"])
        assert code == 0
        outs.append(root / name)
    torch.use_deterministic_algorithms(False)
    return outs


@pytest.mark.slow
def test_every_method_is_scored(tiny_run):
    metrics = json.loads((tiny_run[0] / "metrics.json").read_text())
    assert set(metrics["methods"]) == set(ALL_METHODS)
    assert 0 <= metrics["oracle"]["heldout_identity_accuracy"] <= 1
    for name, m in metrics["methods"].items():
        for key in ("victim_identity_rate", "class_accuracy", "joint_success"):
            assert 0 <= m[key] <= 1, (name, key)
        assert m["joint_success"] <= min(m["victim_identity_rate"], m["class_accuracy"])
        assert -1 <= m["nn_ssim_victim"] <= 1 and -1 <= m["nn_ssim_others"] <= 1
        assert m["diversity_ratio"] >= 0 and 0 <= m["victim_model_global_accuracy"] <= 1
    ref = metrics["reference"]  # the victim's real held-out images are closer to the victim's data than to others'
    assert ref["heldout_nn_ssim_victim"] > ref["heldout_nn_ssim_others"] and ref["victim_diversity"] > 0
    # Passive methods share the unattacked trace; the active one changes FL.
    assert metrics["methods"]["mganai-passive"]["fl_accuracy_cost"] == 0
    assert metrics["fl"]["active_test_accuracy_per_round"] != metrics["fl"]["test_accuracy_per_round"]


@pytest.mark.slow
def test_every_method_has_a_grid(tiny_run):
    for name in ALL_METHODS:
        img = Image.open(tiny_run[0] / f"{name}.png")
        # 10 class rows of 16-px cells (+1-px gaps), scaled x2.
        assert img.size[1] == 2 * (10 * 17 + 1)


@pytest.mark.slow
def test_same_seed_same_numbers(tiny_run):
    a, b = (json.loads((d / "metrics.json").read_text()) for d in tiny_run)
    assert a["methods"] == b["methods"] and a["oracle"] == b["oracle"] and a["fl"] == b["fl"]


def test_nearest_ssim_is_the_best_pair_per_sample(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    reference = torch.rand(7, 1, 16, 16, generator=gen) * 2 - 1
    samples = torch.cat([reference[4:5], torch.rand(4, 1, 16, 16, generator=gen) * 2 - 1])
    want = torch.stack(
        [
            ssim((s + 1).expand_as(reference), reference + 1, data_range=2.0, size_average=False, win_size=7).max()
            for s in samples
        ]
    )
    got = metrics.nearest_ssim(samples, reference)
    assert torch.allclose(got, want, atol=1e-6)
    assert got[0] == pytest.approx(1.0, abs=1e-5)  # an exact copy of a reference image
    monkeypatch.setattr(metrics, "_PAIRS_PER_CALL", 10)  # several batched calls: the same answer
    assert torch.allclose(metrics.nearest_ssim(samples, reference), want, atol=1e-6)
