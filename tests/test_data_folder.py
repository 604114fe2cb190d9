"""User-level folder datasets (DIR/<client>/<class>/<image>): clients, classes, sizes, channels, bad data, CLI."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from datafixtures import write_folder_tree, write_image
from mganai.cli import main
from mganai.config import ConfigError, DataConfig
from mganai.data import DataError, load_dataset, resolve_victim

THREE = {"carol": {"a": 5, "b": 5, "c": 5}, "alice": {"a": 5, "b": 5, "c": 5}, "bob": {"a": 5, "b": 5, "c": 5}}


def _load(root, **kw):
    return load_dataset(DataConfig(dataset=f"folder:{root}", **kw), seed=0)


def test_top_level_folders_are_clients_in_sorted_order(tmp_path):
    root = write_folder_tree(tmp_path / "users", THREE, size=(28, 28))
    data = _load(root)
    assert data.client_names() == ["alice", "bob", "carol"]
    assert data.num_classes == 3 and data.class_names == ["a", "b", "c"]
    assert data.image_shape == (1, 28, 28)  # grey files -> 1 channel; 28x28 files -> 28 by default
    for c in data.clients:
        assert len(c.y_train) == 12 and len(c.y_test) == 3  # 20 % of each class held out
        assert float(c.x_train.min()) >= -1 and float(c.x_train.max()) <= 1
    # The fixture makes client k (in dict order: carol=0, alice=1, bob=2) brighter with k: the data keeps it.
    bright = {c.name: float(c.x_train.mean()) for c in data.clients}
    assert bright["carol"] < bright["alice"] < bright["bob"]


def test_colour_images_give_three_channels_and_resolution_is_overridable(tmp_path):
    root = write_folder_tree(tmp_path / "users", THREE, size=(40, 40), colour=True, suffix=".jpg")
    data = _load(root, resolution=16)
    assert data.image_shape == (3, 16, 16)
    assert not torch.equal(data.clients[0].x_train[:, 0], data.clients[0].x_train[:, 2])


def test_pgm_files_and_default_resolution_fits_the_images(tmp_path, capsys):
    root = write_folder_tree(tmp_path / "users", {"u1": {"x": 3}, "u2": {"x": 3}}, size=(20, 24), suffix=".pgm")
    assert _load(root).image_shape == (1, 28, 28)  # smallest of 16/28/32 >= 20
    assert "--resolution 64" not in capsys.readouterr().err  # not shrunk: no hint


def test_large_images_default_to_32_with_a_hint_and_64_on_request(tmp_path, capsys):
    root = write_folder_tree(tmp_path / "users", {"u1": {"x": 3}, "u2": {"x": 3}}, size=(50, 60), suffix=".pgm")
    assert _load(root).image_shape == (1, 32, 32)  # 64 would fit, but costs several times the CPU time
    err = capsys.readouterr().err
    assert "resized (centre-cropped) to 32x32" in err and "--resolution 64" in err
    assert _load(root, resolution=64).image_shape == (1, 64, 64)


def test_mixed_sizes_are_resized_with_a_notice(tmp_path, capsys):
    root = write_folder_tree(tmp_path / "users", {"u1": {"x": 4}}, size=(28, 28))
    write_folder_tree(root, {"u2": {"x": 4}}, size=(36, 30))
    data = _load(root, resolution=28)
    assert data.image_shape == (1, 28, 28)
    err = capsys.readouterr().err
    assert "mganai: note:" in err and "2 different sizes" in err and "28x28" in err and "36x30" in err


def test_a_class_missing_in_some_clients_is_a_warning_not_an_error(tmp_path, capsys):
    root = write_folder_tree(tmp_path / "users", {"u1": {"a": 4, "b": 4}, "u2": {"a": 4}, "u3": {"b": 4}})
    data = _load(root)
    assert data.num_classes == 2
    assert set(data.clients[1].y_train.tolist()) == {0}  # u2 has only class a
    err = capsys.readouterr().err
    assert "class 'a' is missing in client(s) u3" in err and "class 'b' is missing in client(s) u2" in err


def test_max_per_client_subsamples_each_client(tmp_path):
    root = write_folder_tree(tmp_path / "users", {"u1": {"a": 10, "b": 10}, "u2": {"a": 4, "b": 4}})
    data = _load(root, max_per_client=10)
    sizes = [len(c.y_train) + len(c.y_test) for c in data.clients]
    assert sizes == [10, 8]
    assert torch.bincount(torch.cat([data.clients[0].y_train, data.clients[0].y_test])).tolist() == [5, 5]


@pytest.mark.parametrize(
    ("make", "mentions"),
    [
        (lambda r: None, "not found"),
        (lambda r: write_folder_tree(r, {"only": {"a": 3}}), "1 client folder(s); need at least 2"),
        (lambda r: (write_folder_tree(r, {"u1": {"a": 3}}), (r / "u2" / "a").mkdir(parents=True)), "u2 has no images"),
        (
            lambda r: (
                write_folder_tree(r, THREE),
                (r / "bob" / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken"),
            ),
            "bob/b/bad.png",
        ),
    ],
)
def test_bad_folders_are_one_line_errors_naming_the_problem(tmp_path, make, mentions):
    root = tmp_path / "users"
    make(root)
    with pytest.raises(DataError) as info:
        _load(root)
    assert mentions in str(info.value) and "\n" not in str(info.value)


def test_a_truncated_image_is_an_error_naming_it(tmp_path):
    root = write_folder_tree(tmp_path / "users", THREE, suffix=".jpg")
    path = root / "alice" / "c" / "2.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"alice/c/2\.jpg"):
        _load(root)


def test_loose_files_and_other_suffixes_are_ignored(tmp_path, capsys):
    root = write_folder_tree(tmp_path / "users", THREE)
    (root / "alice" / "notes.txt").write_text("hi")
    (root / "bob" / "a" / "README").write_text("hi")
    write_image(root / ".hidden" / "a" / "0.png", np.zeros((20, 20), dtype=np.uint8))
    data = _load(root)
    assert data.client_names() == ["alice", "bob", "carol"]
    assert "1 file(s) directly in" in capsys.readouterr().err


def test_victim_by_folder_name(tmp_path):
    root = write_folder_tree(tmp_path / "users", THREE)
    cfg = DataConfig(dataset=f"folder:{root}")
    assert resolve_victim(cfg, "carol") == 2 and resolve_victim(cfg, "1") == 1
    with pytest.raises(ConfigError, match="'dave' is not a client folder"):
        resolve_victim(cfg, "dave")
    with pytest.raises(ConfigError, match="needs a folder: dataset"):
        resolve_victim(DataConfig(), "alice")


# --- the command line ----------------------------------------------------------------------------


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


TINY_ATTACK = [
    "--rounds", "2", "--batch-size", "16", "--quiet", "--methods", "mganai-passive,representatives",
]  # fmt: skip


def test_cli_runs_an_rgb_folder_dataset_with_the_victim_named(tmp_path):
    root = write_folder_tree(tmp_path / "users", THREE, size=(32, 32), colour=True)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        "[attack]\nstart_round = 1\nreps_per_client = 2\ninversion_steps = 2\ngan_steps_per_round = 1\n"
        "gan_final_steps = 1\ngan_batch = 8\nmatch_batch = 2\n[eval]\nsamples_per_class = 2\noracle_epochs = 1\n"
    )
    out = tmp_path / "out"
    code, _, stderr = _run(["run", "--config", str(cfg), "--dataset", f"folder:{root}", "--victim", "bob",
                                 *TINY_ATTACK, "--out", str(out)])  # fmt: skip
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["attack"]["victim"] == 1
    assert metrics["data"]["clients"] == ["alice", "bob", "carol"] and metrics["data"]["image_shape"] == [3, 32, 32]
    assert set(metrics["methods"]) == {"mganai-passive", "representatives"}
    assert (out / "mganai-passive.png").is_file()


@pytest.mark.parametrize(
    ("extra", "mentions"),
    [
        (["--victim", "dave"], "'dave' is not a client folder"),
        (["--victim", "3"], "attack.victim must be in 0..2"),
        (["--dataset", "folder:/does/not/exist"], "/does/not/exist"),
    ],
)
def test_cli_folder_errors_exit_2_with_one_line_and_no_output(tmp_path, extra, mentions):
    root = write_folder_tree(tmp_path / "users", THREE)
    out = tmp_path / "out"
    code, stdout, stderr = _run(["run", "--dataset", f"folder:{root}", "--methods", "none", "--rounds", "1",
                                 "--quiet", *extra, "--out", str(out)])  # fmt: skip
    assert code == 2 and stdout == ""
    assert stderr.startswith("mganai: error:") and len(stderr.splitlines()) == 1 and mentions in stderr, stderr
    assert not out.exists()


# --- the client count is the data's, not data.clients ------------------------------------------------

EIGHT = {f"cam{k}": {"a": 4, "b": 4} for k in range(8)}


@pytest.fixture(scope="module")
def eight_camera_run(tmp_path_factory):
    """A tiny audit on an 8-client folder dataset, with data.clients left at its default of 10."""
    tmp = tmp_path_factory.mktemp("eight")
    root = write_folder_tree(tmp / "cams", EIGHT, size=(16, 16))
    cfg = tmp / "tiny.toml"
    cfg.write_text(
        "[attack]\nstart_round = 1\nreps_per_client = 2\ninversion_steps = 1\ngan_steps_per_round = 1\n"
        "gan_final_steps = 1\ngan_batch = 8\nmatch_batch = 2\n[eval]\nsamples_per_class = 2\noracle_epochs = 1\n"
        "curve_every = 1\ncurve_samples_per_class = 1\n"
    )
    out = tmp / "out"
    code, _, stderr = _run(["run", "--config", str(cfg), "--dataset", f"folder:{root}", *TINY_ATTACK,
                            "--out", str(out)])  # fmt: skip
    torch.use_deterministic_algorithms(False)
    assert code == 0, stderr
    return root, out


def test_report_counts_the_folders_clients_not_data_clients(eight_camera_run):
    _, out = eight_camera_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["data"]["clients"] == 10 and len(metrics["data"]["clients"]) == 8
    html = (out / "report.html").read_text()
    assert "chance: 1/8 = 12.5%" in html and "1/10" not in html
    assert "victim client 0 of 8" in html


def test_compare_draws_the_folders_chance_line(eight_camera_run, tmp_path, monkeypatch):
    from mganai.report import plots
    from mganai.report.compare import write_comparison

    _, out = eight_camera_run
    seen = []
    real = plots.compare_bars

    def spy(runs, table, methods, num_clients):
        seen.append(list(num_clients))
        return real(runs, table, methods, num_clients)

    monkeypatch.setattr(plots, "compare_bars", spy)
    write_comparison([out], tmp_path / "cmp")
    assert seen == [[8]]


def test_flower_sim_starts_one_supernode_per_client_folder(eight_camera_run, tmp_path, monkeypatch):
    pytest.importorskip("flwr", reason="Flower is not installed: pip install -e '.[flower]'")
    import flwr.simulation

    from mganai.config import build_config
    from mganai.flower.app import run_flower_simulation

    root, _ = eight_camera_run
    cfg = build_config({}, {"data.dataset": f"folder:{root}", "out": str(tmp_path / "sim"), "quiet": True})
    started = {}

    def fake_simulation(**kwargs):  # Ray is not started: only what it would have been asked for is recorded
        started.update(kwargs)
        (tmp_path / "sim").mkdir()
        (tmp_path / "sim" / "metrics.json").write_text("{}")

    monkeypatch.setattr(flwr.simulation, "run_simulation", fake_simulation)
    run_flower_simulation(cfg)
    assert started["num_supernodes"] == 8
