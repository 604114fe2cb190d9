"""The embedded digits: shapes, ranges, per-client classes and styles, splits, determinism, partitions."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from mganai.config import ConfigError, DataConfig
from mganai.data import FederatedDataset, load_dataset
from mganai.data.partition import holdout_split, partition_indices
from mganai.data.styles import writer_styles

DIGIT_LABELS = load_digits().target.astype(np.int64)


def _class_means(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([x[y == c].mean(0) for c in range(10)])


# --- shapes, dtypes, ranges -------------------------------------------------------------


def _check_tensors(data: FederatedDataset, side: int) -> None:
    for c in data.clients:
        for x, y in ((c.x_train, c.y_train), (c.x_test, c.y_test)):
            assert x.dim() == 4 and tuple(x.shape[1:]) == (1, side, side)
            assert x.dtype == torch.float32
            assert y.dtype == torch.int64
            assert y.shape == (len(x),)
            assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
            assert int(y.min()) >= 0 and int(y.max()) <= 9
    assert data.image_shape == (1, side, side)


def test_load_dataset_16_has_expected_shapes_dtypes_and_range(digits4):
    assert digits4.num_clients == 4
    assert digits4.num_classes == 10
    _check_tensors(digits4, 16)
    # Images use the whole range: background at -1, full ink near +1.
    x = digits4.clients[0].x_train
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) > 0.9


def test_load_dataset_resolution_28_gives_28x28_images():
    data = load_dataset(DataConfig(clients=2, resolution=28), seed=0)
    _check_tensors(data, 28)


def test_load_dataset_rejects_unsupported_resolution_and_dataset():
    with pytest.raises(ConfigError, match="resolution"):
        load_dataset(DataConfig(clients=2, resolution=32), seed=0)
    with pytest.raises(ConfigError, match="nope"):
        load_dataset(DataConfig(dataset="nope", clients=2), seed=0)


# --- what each client holds -----------------------------------------------------------------


def test_every_client_holds_every_class_in_train_by_default(digits4):
    for c in digits4.clients:
        assert sorted(c.y_train.unique().tolist()) == list(range(10)), c.name


def test_every_sample_is_used_once_over_all_clients(digits4):
    total = sum(len(c.y_train) + len(c.y_test) for c in digits4.clients)
    assert total == len(DIGIT_LABELS)
    counts = torch.bincount(torch.cat([torch.cat([c.y_train, c.y_test]) for c in digits4.clients]), minlength=10)
    assert counts.tolist() == np.bincount(DIGIT_LABELS, minlength=10).tolist()


def test_heldout_split_is_nonempty_and_disjoint_from_train_for_every_client(digits4):
    # The 1797 source digits are pairwise distinct, so a shared image means a shared sample.
    for c in digits4.clients:
        assert len(c.y_test) > 0 and len(c.y_train) > 0
        dist = torch.cdist(c.x_test.flatten(1), c.x_train.flatten(1))
        assert float(dist.min()) > 0.0, f"{c.name}: a held-out image also appears in train"
        share = len(c.y_test) / (len(c.y_test) + len(c.y_train))
        assert 0.15 < share < 0.25  # holdout=0.2, stratified per class


def test_heldout_and_train_views_report_the_owner_of_each_sample(digits4):
    xs, ys, owners = digits4.heldout()
    assert len(xs) == len(ys) == len(owners) == sum(len(c.y_test) for c in digits4.clients)
    for k, c in enumerate(digits4.clients):
        assert torch.equal(xs[owners == k], c.x_test)
        assert torch.equal(ys[owners == k], c.y_test)
    xt, _, owners_t = digits4.train()
    assert torch.equal(xt[owners_t == 3], digits4.clients[3].x_train)


def test_holdout_split_is_stratified_disjoint_and_complete():
    labels = np.array([0] * 10 + [1] * 2 + [2] * 1 + [3] * 7)
    train, test = holdout_split(labels, 0.2, seed=5)
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(len(labels)))
    for cls in (0, 1, 3):  # classes with >= 2 samples (10, 2 and 7 of them) keep one on each side
        assert (labels[test] == cls).sum() >= 1 and (labels[train] == cls).sum() >= 1
    assert (labels[test] == 0).sum() == 2
    assert (labels[train] == 2).sum() == 1  # a single sample stays in train


# --- writer styles ---------------------------------------------------------------------------


def test_writer_styles_returns_n_distinct_styles():
    for n in (2, 4, 10):
        styles = writer_styles(n, seed=0)
        assert len(styles) == n
        assert len(set(styles)) == n


def test_writer_styles_are_seeded():
    assert writer_styles(5, seed=3) == writer_styles(5, seed=3)
    assert writer_styles(5, seed=3) != writer_styles(5, seed=4)


def test_client_styles_differ_more_than_two_halves_of_one_client(digits4):
    means = [_class_means(c.x_train, c.y_train) for c in digits4.clients]
    between = [
        float((means[i] - means[j]).flatten(1).norm(dim=1).mean())
        for i in range(len(means))
        for j in range(i + 1, len(means))
    ]
    within = []
    gen = torch.Generator().manual_seed(0)
    for c in digits4.clients:
        perm = torch.randperm(len(c.y_train), generator=gen)
        a, b = perm[: len(perm) // 2], perm[len(perm) // 2 :]
        diff = _class_means(c.x_train[a], c.y_train[a]) - _class_means(c.x_train[b], c.y_train[b])
        within.append(float(diff.flatten(1).norm(dim=1).mean()))
    assert min(between) > 2 * max(within), (between, within)


# --- determinism -------------------------------------------------------------------------


def _assert_same(a: FederatedDataset, b: FederatedDataset) -> None:
    for ca, cb in zip(a.clients, b.clients, strict=True):
        for name in ("x_train", "y_train", "x_test", "y_test"):
            assert torch.equal(getattr(ca, name), getattr(cb, name)), f"{ca.name}.{name}"


def test_same_seed_gives_identical_tensors(digits4):
    _assert_same(digits4, load_dataset(DataConfig(clients=4, resolution=16), seed=0))


def test_different_seed_gives_different_data(digits4):
    other = load_dataset(DataConfig(clients=4, resolution=16), seed=1)
    for ca, cb in zip(digits4.clients, other.clients):
        same_shape = ca.x_train.shape == cb.x_train.shape
        assert not (same_shape and torch.equal(ca.x_train, cb.x_train)), ca.name


# --- partitions ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
@pytest.mark.parametrize("clients", [2, 5, 13])
def test_partition_indices_covers_every_index_exactly_once(scheme, clients):
    parts = partition_indices(DIGIT_LABELS, clients, scheme, 0.3, seed=2)
    assert len(parts) == clients
    allidx = np.concatenate(parts)
    assert len(allidx) == len(DIGIT_LABELS)
    assert np.array_equal(np.sort(allidx), np.arange(len(DIGIT_LABELS)))


def test_iid_partition_gives_equal_class_shares():
    parts = partition_indices(DIGIT_LABELS, 6, "iid", 0.5, seed=0)
    counts = np.stack([np.bincount(DIGIT_LABELS[p], minlength=10) for p in parts])  # [clients, classes]
    assert (counts.max(0) - counts.min(0) <= 1).all()


def test_dirichlet_partition_gives_unequal_class_shares():
    parts = partition_indices(DIGIT_LABELS, 6, "dirichlet", 0.3, seed=0)
    counts = np.stack([np.bincount(DIGIT_LABELS[p], minlength=10) for p in parts])
    # Per class, the largest client share is many times the smallest (IID: off by at most one).
    assert (counts.max(0) - counts.min(0) > 20).all()
    shares = counts / counts.sum(1, keepdims=True)
    assert (shares.max(1) > 0.2).any()  # some client is dominated by a class (IID: ~0.1 each)


def test_dirichlet_partition_through_load_dataset_skews_clients():
    data = load_dataset(DataConfig(clients=4, partition="dirichlet", dirichlet_alpha=0.3), seed=0)
    counts = torch.stack([torch.bincount(c.y_train, minlength=10) for c in data.clients])
    assert int((counts.max(0).values - counts.min(0).values).min()) > 10


def test_unknown_partition_scheme_is_rejected():
    with pytest.raises(ValueError, match="scheme"):
        partition_indices(DIGIT_LABELS, 3, "round-robin", 0.5, seed=0)


def test_dirichlet_client_without_samples_is_handled_or_rejected_cleanly():
    # alpha=0.05 over 20 clients leaves two clients empty (seed 0).
    assert min(len(p) for p in partition_indices(DIGIT_LABELS, 20, "dirichlet", 0.05, 0)) == 0
    with contextlib.suppress(ConfigError):  # a one-line config error is an acceptable answer; a raw ValueError is not
        load_dataset(DataConfig(clients=20, partition="dirichlet", dirichlet_alpha=0.05), seed=0)
