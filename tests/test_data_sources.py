"""Pooled and named datasets: IDX files, the MNIST family's cache and download path, CIFAR-10, faces.

Nothing here touches the network: urlopen is replaced by a function that fails the
test, and downloads are simulated by patching `downloads.download`.
"""

from __future__ import annotations

import gzip
import pickle
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from datafixtures import class_images, idx_bytes, write_idx, write_idx_dir
from mganai.config import ConfigError, DataConfig, build_config
from mganai.data import DataError, load_dataset
from mganai.data import downloads as dl
from mganai.data.idx import load_idx_dir, read_idx
from mganai.data.partition import stratified_subset
from mganai.data.styles import apply_colour_style, colour_styles

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr("urllib.request.urlopen", refuse)


def _cfg(dataset: str, **kw) -> DataConfig:
    return DataConfig(dataset=dataset, **kw)


def _check(data, channels: int, side: int) -> None:
    for c in data.clients:
        for x, y in ((c.x_train, c.y_train), (c.x_test, c.y_test)):
            assert x.dtype == torch.float32 and tuple(x.shape[1:]) == (channels, side, side)
            assert y.dtype == torch.int64 and len(y) == len(x)
            assert float(x.min()) >= -1 and float(x.max()) <= 1
            assert int(y.min()) >= 0 and int(y.max()) < data.num_classes
        assert len(c.y_train) > 0 and len(c.y_test) > 0


# --- IDX files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a-images-idx3-ubyte", "a-images-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_read_idx_round_trips_raw_and_gzipped(tmp_path, name, dtype):
    arr = (
        (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
        if dtype != np.uint8
        else np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    )
    out = read_idx(write_idx(tmp_path / name, arr))
    assert out.shape == (2, 3, 5) and np.array_equal(out, arr)


def test_truncated_idx_is_an_error_naming_the_file(tmp_path):
    data = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    (tmp_path / "cut-images-idx3-ubyte").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"cut-images-idx3-ubyte is truncated"):
        read_idx(tmp_path / "cut-images-idx3-ubyte")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(data)[:-30])  # a cut-off gzip stream
    with pytest.raises(DataError, match=r"cut\.gz"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "junk").write_bytes(b"\x89PNG not idx at all")
    with pytest.raises(DataError, match="junk is not an IDX file"):
        read_idx(tmp_path / "junk")


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_is_split_over_clients_with_renumbered_classes(tmp_path, gz):
    d = write_idx_dir(tmp_path / "idx", n=240, classes=4, gz=gz, first_label=1)
    data = load_dataset(_cfg(f"idx:{d}", clients=3, resolution=16), seed=0)
    assert data.num_clients == 3 and data.num_classes == 4 and data.class_names == ["1", "2", "3", "4"]
    _check(data, 1, 16)
    assert sum(len(c.y_train) + len(c.y_test) for c in data.clients) == 240
    for c in data.clients:  # IID: every client holds every class
        assert set(c.y_train.tolist()) == {0, 1, 2, 3}


def test_idx_default_resolution_is_16_like_the_digits(tmp_path):
    d = write_idx_dir(tmp_path / "idx", n=80)
    assert load_dataset(_cfg(f"idx:{d}", clients=2), seed=0).image_shape == (1, 16, 16)


def test_idx_pools_train_and_test_files_and_checks_pairs(tmp_path):
    d = write_idx_dir(tmp_path / "idx", n=80, prefix="train")
    write_idx_dir(d, n=40, prefix="t10k", gz=False)
    x, y = load_idx_dir(d)
    assert x.shape == (120, 1, 28, 28) and y.shape == (120,)
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte have no labels"):
        load_idx_dir(d)


def test_idx_count_mismatch_missing_dir_and_empty_dir_are_errors(tmp_path):
    d = tmp_path / "idx"
    d.mkdir()
    with pytest.raises(DataError, match="no IDX image files"):
        load_dataset(_cfg(f"idx:{d}"), seed=0)
    with pytest.raises(DataError, match="not found"):
        load_dataset(_cfg(f"idx:{tmp_path / 'nope'}"), seed=0)
    write_idx(d / "train-images-idx3-ubyte", class_images(np.zeros(5, dtype=np.uint8)))
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_dataset(_cfg(f"idx:{d}"), seed=0)


def test_emnist_files_are_turned_upright(tmp_path):
    img = np.zeros((2, 28, 28), dtype=np.uint8)
    img[:, 0, 5] = 255  # row 0, column 5 as stored -> row 5, column 0 upright
    write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", img)
    write_idx(tmp_path / "emnist-letters-train-labels-idx1-ubyte.gz", np.array([1, 2], dtype=np.uint8))
    x, _ = load_idx_dir(tmp_path)
    assert x[0, 0, 5, 0] == 255 and x[0, 0, 0, 5] == 0


def test_max_per_client_caps_each_client_with_balanced_classes(tmp_path):
    d = write_idx_dir(tmp_path / "idx", n=400, classes=4)
    data = load_dataset(_cfg(f"idx:{d}", clients=2, max_per_client=40, resolution=16), seed=0)
    for c in data.clients:
        y = torch.cat([c.y_train, c.y_test])
        assert len(y) == 40
        assert torch.bincount(y, minlength=4).tolist() == [10, 10, 10, 10]
    uncapped = load_dataset(_cfg(f"idx:{d}", clients=2, max_per_client=0, resolution=16), seed=0)
    assert sum(len(c.y_train) + len(c.y_test) for c in uncapped.clients) == 400


def test_stratified_subset_keeps_rare_classes():
    labels = np.array([0] * 90 + [1] * 8 + [2] * 2)
    keep = stratified_subset(labels, 12, seed=0)
    assert len(keep) == 12 and len(set(keep.tolist())) == 12
    assert np.bincount(labels[keep], minlength=3).tolist() == [5, 5, 2]


def test_user_styles_make_clients_differ_and_are_seeded(tmp_path):
    d = write_idx_dir(tmp_path / "idx", n=240, classes=4)

    def client_means(data):
        return [torch.stack([c.x_train[c.y_train == k].mean(0) for k in range(4)]) for c in data.clients]

    styled = client_means(load_dataset(_cfg(f"idx:{d}", clients=3, resolution=16), seed=0))
    plain = client_means(load_dataset(_cfg(f"idx:{d}", clients=3, resolution=16, user_styles=False), seed=0))
    gap = lambda means: min(float((means[i] - means[j]).abs().mean()) for i in range(3) for j in range(i + 1, 3))  # noqa: E731
    assert gap(styled) > 3 * gap(plain), (gap(styled), gap(plain))
    again = load_dataset(_cfg(f"idx:{d}", clients=3, resolution=16), seed=0)
    assert torch.equal(client_means(again)[1], styled[1])


# --- Debian's Fashion-MNIST ----------------------------------------------------------------------


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_debian_fashion_mnist_through_idx_and_by_name(monkeypatch, tmp_path):
    data = load_dataset(_cfg(f"idx:{FASHION}", clients=10, max_per_client=50, resolution=28), seed=0)
    assert data.num_clients == 10 and data.num_classes == 10 and data.image_shape == (1, 28, 28)
    _check(data, 1, 28)
    assert all(len(c.y_train) + len(c.y_test) == 50 for c in data.clients)
    x, y = load_idx_dir(FASHION)
    assert x.shape == (70000, 1, 28, 28) and np.bincount(y).tolist() == [7000] * 10
    # By name it uses the Debian copy: no download, and the class names are Fashion-MNIST's.
    monkeypatch.setattr(dl, "download", lambda *a, **k: pytest.fail("downloaded although Debian's copy exists"))
    named = load_dataset(
        _cfg("fashion-mnist", clients=2, max_per_client=20, resolution=16, cache_dir=str(tmp_path)), seed=0
    )
    assert named.class_names[0] == "T-shirt/top" and named.image_shape == (1, 16, 16)


# --- MNIST family: cache and download ------------------------------------------------------------


def _fake_download(source: Path):
    calls = []

    def fake(url: str, dest: Path, timeout: float = 60.0) -> None:
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((source / url.rsplit("/", 1)[1]).read_bytes())

    return fake, calls


def test_mnist_downloads_the_four_files_into_the_cache_once(monkeypatch, tmp_path):
    src = write_idx_dir(tmp_path / "src", n=80, prefix="train")
    write_idx_dir(src, n=40, prefix="t10k")
    fake, calls = _fake_download(src)
    monkeypatch.setattr(dl, "download", fake)
    cfg = _cfg("mnist", clients=2, cache_dir=str(tmp_path / "cache"), resolution=16)
    data = load_dataset(cfg, seed=0)
    assert len(calls) == 4 and all(u.startswith(dl.IDX_MIRRORS["mnist"][0]) for u in calls)
    assert sum(len(c.y_train) + len(c.y_test) for c in data.clients) == 120
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(dl.IDX_FILES)
    load_dataset(cfg, seed=0)  # second time: from the cache
    assert len(calls) == 4


def test_mnist_offline_is_one_line_saying_where_to_put_the_files(monkeypatch, tmp_path):
    def offline(url, dest, timeout=60.0):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(dl, "download", offline)
    with pytest.raises(DataError) as info:
        load_dataset(_cfg("mnist", cache_dir=str(tmp_path)), seed=0)
    msg = str(info.value)
    assert "\n" not in msg and "offline" in msg and str(tmp_path / "mnist") in msg and "idx:DIR" in msg


def test_a_bad_download_does_not_stay_in_the_cache(monkeypatch, tmp_path):
    def html(url, dest, timeout=60.0):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"<html>moved</html>")

    monkeypatch.setattr(dl, "download", html)
    with pytest.raises(DataError, match=r"could not be downloaded .*cannot read IDX file"):
        load_dataset(_cfg("mnist", cache_dir=str(tmp_path)), seed=0)
    assert not any((tmp_path / "mnist").iterdir())


def test_emnist_letters_from_the_cache_and_offline_error(monkeypatch, tmp_path):
    d = tmp_path / "emnist"
    for prefix, n in (("emnist-letters-train", 52), ("emnist-letters-t10k", 26)):
        write_idx_dir(d, n=n, classes=26, prefix=prefix, first_label=1)
    data = load_dataset(_cfg("emnist", clients=2, cache_dir=str(tmp_path), resolution=16), seed=0)
    assert data.num_classes == 26 and data.class_names[:3] == ["a", "b", "c"]
    monkeypatch.setattr(dl, "download", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline")))
    with pytest.raises(DataError, match=r"emnist.*gzip\.zip"):
        load_dataset(_cfg("emnist-digits", cache_dir=str(tmp_path)), seed=0)


# --- CIFAR-10 ------------------------------------------------------------------------------------


def _write_cifar(cache: Path, n: int = 60) -> None:
    d = cache / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = [i % 10 for i in range(n)]
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    (d / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
    names = [
        s.encode() for s in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))


def test_cifar10_from_local_batches_is_rgb_with_colour_styles(tmp_path):
    _write_cifar(tmp_path)
    data = load_dataset(_cfg("cifar10", clients=2, cache_dir=str(tmp_path)), seed=0)
    assert data.image_shape == (3, 32, 32) and data.class_names[0] == "airplane"
    _check(data, 3, 32)
    plain = load_dataset(_cfg("cifar10", clients=2, cache_dir=str(tmp_path), user_styles=False), seed=0)
    assert not torch.equal(data.clients[0].x_train, plain.clients[0].x_train)


def test_cifar10_without_data_or_torchvision_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails
    with pytest.raises(DataError) as info:
        load_dataset(_cfg("cifar10", cache_dir=str(tmp_path)), seed=0)
    msg = str(info.value)
    assert "torchvision" in msg and dl.CIFAR10_TAR in msg and str(tmp_path) in msg and "\n" not in msg


def test_colour_styles_are_distinct_seeded_and_keep_the_range():
    styles = colour_styles(6, seed=0)
    assert len(set(styles)) == 6 and styles == colour_styles(6, seed=0) and styles != colour_styles(6, seed=1)
    x = torch.rand(4, 3, 8, 8)
    y = [apply_colour_style(x, s) for s in styles[:2]]
    assert all(float(v.min()) >= 0 and float(v.max()) <= 1 for v in y)
    assert float((y[0] - y[1]).abs().mean()) > 0.02


# --- faces ---------------------------------------------------------------------------------------


class _Bunch:
    def __init__(self, images, target):
        self.images, self.target = images, target


def _fake_olivetti(monkeypatch, people: int = 40):
    rng = np.random.default_rng(0)
    target = np.repeat(np.arange(people), 10)
    images = rng.uniform(0, 1, size=(len(target), 64, 64)).astype(np.float32)
    monkeypatch.setattr("sklearn.datasets.fetch_olivetti_faces", lambda **kw: _Bunch(images, target))


def test_olivetti_groups_people_into_clients(monkeypatch, tmp_path):
    _fake_olivetti(monkeypatch)
    data = load_dataset(_cfg("olivetti", cache_dir=str(tmp_path)), seed=0)
    assert data.num_clients == 10 and data.num_classes == 40 and data.image_shape == (1, 32, 32)
    _check(data, 1, 32)
    assert data.clients[0].name == "s1-s4"
    for k, c in enumerate(data.clients):  # client k holds people 4k..4k+3, 8 train + 2 held out each
        assert set(c.y_train.tolist()) == set(range(4 * k, 4 * k + 4))
        assert torch.bincount(c.y_test, minlength=40)[4 * k : 4 * k + 4].tolist() == [2, 2, 2, 2]
    one = load_dataset(_cfg("att-faces", faces_per_client=1, resolution=64, cache_dir=str(tmp_path)), seed=0)
    assert one.num_clients == 40 and one.image_shape == (1, 64, 64) and one.clients[7].name == "s8"
    with pytest.raises(DataError, match="need at least 2"):
        load_dataset(_cfg("olivetti", faces_per_client=40, cache_dir=str(tmp_path)), seed=0)


def test_olivetti_offline_points_to_the_local_folder_option(monkeypatch, tmp_path):
    def offline(**kw):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("sklearn.datasets.fetch_olivetti_faces", offline)
    with pytest.raises(DataError, match="att-faces:DIR"):
        load_dataset(_cfg("olivetti", cache_dir=str(tmp_path)), seed=0)


def test_att_faces_folder_in_natural_order(tmp_path):
    from datafixtures import write_image

    for person in range(1, 11):  # s1..s10: s10 must be the last person, not the second
        for i in range(1, 4):
            img = np.full((112, 92), 20 * person, dtype=np.uint8)
            write_image(tmp_path / f"s{person}" / f"{i}.pgm", img)
    data = load_dataset(_cfg(f"att-faces:{tmp_path}", faces_per_client=2), seed=0)
    assert data.num_clients == 5 and data.num_classes == 10 and data.image_shape == (1, 32, 32)
    assert data.class_names[-1] == "s10" and data.clients[-1].name == "s9-s10"
    brightness = data.clients[-1].x_train[data.clients[-1].y_train == 9].mean()
    assert abs(float(brightness) - (200 / 255 * 2 - 1)) < 1e-3


# --- config --------------------------------------------------------------------------------------


def test_config_knows_the_new_settings():
    cfg = build_config(overrides={"data.dataset": "folder:x", "attack.victim": 25, "data.max_per_client": 0})
    assert cfg.data.resolution == 0 and cfg.attack.victim == 25  # folder: clients are counted when read
    for key, value in (("data.max_per_client", -1), ("data.faces_per_client", 0), ("data.resolution", 48)):
        with pytest.raises(ConfigError, match=key):
            build_config(overrides={key: value})


def test_unknown_dataset_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="folder:DIR"):
        load_dataset(_cfg("cifar100"), seed=0)
    with pytest.raises(ConfigError, match="needs a directory"):
        load_dataset(_cfg("idx:"), seed=0)
