"""The public-data threat model: what the server holds is never a federated client's, and every number says which
threat model it belongs to."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

import mganai.data.public as public_module
from datafixtures import write_folder_tree, write_idx_dir
from mganai.config import DataConfig, build_config
from mganai.data import load_dataset
from mganai.data.federated import FederatedDataset
from mganai.data.public import fit_shape, image_keys, load_federation, withheld
from mganai.errors import ConfigError
from mganai.threat import FROM_CLIENTS, FROM_DATASET, PUBLIC_DATA, UPDATES_ONLY
from tinyrun import run_cli

FL_ONLY = ["run", "--clients", "6", "--rounds", "1", "--methods", "none", "--quiet"]


def _keys(data: FederatedDataset) -> set[bytes]:
    return {k for c in data.clients for t in (c.x_train, c.x_test) for k in image_keys(t)}


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def idx10(tmp_path_factory) -> Path:
    """Ten classes of bars in IDX files: another dataset of the digits' class count."""
    return write_idx_dir(tmp_path_factory.mktemp("idx10"), n=200, classes=10)


# --- withheld clients --------------------------------------------------------------------------------


@pytest.mark.parametrize(("victim", "out", "position"), [(1, [5, 4], 1), (5, [4, 3], 3), (4, [5, 3], 3)])
def test_withheld_clients_are_the_highest_but_never_the_victim(victim, out, position):
    whole = load_dataset(DataConfig(clients=6), 0)
    fed = load_federation(DataConfig(clients=6, public_clients=2), victim, 0)
    assert withheld(6, 2, victim) == out
    kept = [k for k in range(6) if k not in out]
    assert fed.data.num_clients == 4 and fed.data.client_names() == [whole.clients[k].name for k in kept]
    assert fed.victim == position and fed.data.clients[fed.victim].name == whole.clients[victim].name
    for k in kept:  # every client that trains is the same client, with the same data
        if k < 4:
            assert fed.data.clients[k].name == whole.clients[k].name  # and keeps its index
        assert torch.equal(fed.data.clients[kept.index(k)].x_train, whole.clients[k].x_train)
    assert fed.public is not None and fed.public.source == FROM_CLIENTS
    assert fed.public.clients == [whole.clients[k].name for k in sorted(out)]
    assert len(fed.public.y) == sum(len(whole.clients[k].y_train) + len(whole.clients[k].y_test) for k in out)


@pytest.mark.parametrize("spec", ["public_clients", "public"])
def test_no_public_image_is_a_federated_clients_image(spec, idx10):
    cfg = DataConfig(clients=6, public_clients=2) if spec == "public_clients" else DataConfig(public=f"idx:{idx10}")
    fed = load_federation(cfg, 0, 0)
    assert fed.public is not None and len(fed.public.y) > 0
    public = image_keys(fed.public.x)
    assert len(public) == len(fed.public.y)
    assert not set(public) & _keys(fed.data)  # hashed: not one image in common
    assert fed.public.x.shape[1:] == fed.data.clients[0].x_train.shape[1:]
    assert set(fed.public.y.tolist()) <= set(range(fed.data.num_classes))


def test_the_disjointness_check_can_fail_and_a_shared_image_is_dropped(monkeypatch, capsys):
    """A public dataset that holds one of the federation's own images (as if a copy had been made)."""
    federation = load_dataset(DataConfig(clients=3), 0)
    leaked = dataclasses.replace(federation.clients[0], name="copy")
    stranger = load_dataset(DataConfig(clients=3), 1).clients[0]  # other writers: other images
    copy = FederatedDataset("copy", [leaked, stranger], 10, federation.class_names)
    assert set(image_keys(leaked.x_train)) & _keys(federation)  # the hash comparison sees the shared images
    monkeypatch.setattr(public_module, "load_dataset", lambda cfg, seed: copy)
    public = public_module.public_dataset(DataConfig(clients=3, public="idx:/anything"), 0, federation)
    assert not set(image_keys(public.x)) & _keys(federation)
    assert set(image_keys(public.x)) == set(image_keys(torch.cat([stranger.x_train, stranger.x_test])))
    assert f"{len(leaked.y_train) + len(leaked.y_test)} image(s) equal to a federated client's left out" in (
        capsys.readouterr().err
    )


def test_public_data_has_writers_of_its_own(monkeypatch, idx10):
    """The public set is loaded with a seed of its own: its writer styles are not the federation's."""
    seeds = []
    real = public_module.load_dataset

    def spy(cfg, seed):
        seeds.append((cfg.dataset, seed))
        return real(cfg, seed)

    monkeypatch.setattr(public_module, "load_dataset", spy)
    load_federation(DataConfig(public=f"idx:{idx10}"), 0, 7)
    assert seeds[0] == ("digits", 7) and seeds[1][0] == f"idx:{idx10}" and seeds[1][1] != 7


def test_fit_shape_converts_channels_and_side():
    grey = torch.rand(3, 1, 28, 28) * 2 - 1
    rgb = fit_shape(grey, (3, 16, 16))
    assert rgb.shape == (3, 3, 16, 16) and torch.equal(rgb[:, 0], rgb[:, 2])
    colour = torch.rand(2, 3, 32, 32) * 2 - 1
    back = fit_shape(colour, (1, 32, 32))
    want = 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    torch.testing.assert_close(back[:, 0], want)
    assert torch.equal(fit_shape(back, (1, 32, 32)), back)
    small = fit_shape(colour, (1, 16, 16))
    assert small.shape == (2, 1, 16, 16) and small.min() >= -1 and small.max() <= 1


def test_a_colour_folder_serves_a_grey_federation(tmp_path):
    root = write_folder_tree(
        tmp_path / "photos", {f"p{k}": {str(c): 2 for c in range(10)} for k in range(3)}, colour=True
    )
    fed = load_federation(DataConfig(public=f"folder:{root}"), 0, 0)
    assert fed.public is not None and fed.public.x.shape[1:] == (1, 16, 16) and len(fed.public.y) == 60


# --- the threat model in metrics.json and the summary -----------------------------------------------------------


@pytest.fixture(scope="module")
def threat_runs(tmp_path_factory, idx10) -> tuple[Path, dict[str, str]]:
    """Three FL-only runs: updates-only, withheld clients, another dataset; and each one's first summary line."""
    root = tmp_path_factory.mktemp("threats")
    runs = {
        "none": [],
        "clients": ["--public-clients", "2", "--victim", "5"],
        "dataset": ["--public", f"idx:{idx10}"],
    }
    firsts = {}
    for name, flags in runs.items():
        code, stdout, err = run_cli([*FL_ONLY, *flags, "--out", str(root / name)])
        assert code == 0, err
        firsts[name] = stdout.splitlines()[0]
    return root, firsts


def test_metrics_name_the_threat_model_of_each_run(threat_runs):
    tmp_path, firsts = threat_runs
    for name, first in firsts.items():
        threat = _metrics(tmp_path / name)["threat_model"]
        assert first.startswith(f"threat model: {threat['name']}")
        if name == "none":
            assert threat == {"name": UPDATES_ONLY, "public": None}
            continue
        assert threat["name"] == PUBLIC_DATA and threat["public"]["description"] in first
        assert threat["public"]["samples"] > 0
    clients = _metrics(tmp_path / "clients")
    assert clients["threat_model"]["public"]["source"] == FROM_CLIENTS
    assert clients["threat_model"]["public"]["clients"] == ["writer03", "writer04"]
    assert clients["data"]["clients"] == ["writer00", "writer01", "writer02", "writer05"]  # 6 - 2 train
    assert clients["data"]["victim"] == 3 and clients["config"]["attack"]["victim"] == 5  # as given
    dataset = _metrics(tmp_path / "dataset")["threat_model"]["public"]
    assert dataset["source"] == FROM_DATASET and dataset["clients"] is None and dataset["samples"] == 200
    assert len(_metrics(tmp_path / "dataset")["data"]["clients"]) == 6  # nobody is withheld
    html = (tmp_path / "clients" / "report.html").read_text(encoding="utf-8")
    assert html.index("public-data") < html.index('id="verdict"')  # the report's first lines say it
    assert "Threat model updates-only" in (tmp_path / "none" / "report.html").read_text(encoding="utf-8")


def test_compare_shows_each_runs_threat_model_and_never_averages_two(threat_runs, tmp_path):
    from mganai.report.compare import Comparison, summary_rows

    root, _ = threat_runs
    code, stdout, err = run_cli(["compare", *(str(root / n) for n in ("none", "clients")), "--out", str(tmp_path)])
    assert code == 0, err
    assert "none updates-only" in stdout and "clients public-data" in stdout
    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert '<td class="name">public-data</td>' in html and '<td class="name">updates-only</td>' in html
    threats = {"a": "updates-only", "b": "updates-only", "c": "public-data", "d": "public-data"}
    rows = [
        {"run": r, "method": "m", "threat": t, "joint_success": 0.1 if t == "updates-only" else 0.9}
        for r, t in threats.items()
    ]
    cmp = Comparison([], list(threats), dict.fromkeys(threats, ""), threats, rows, ["m"])
    means = summary_rows(cmp)
    assert [(m["threat"], m["joint_success"]) for m in means] == [("updates-only", 0.1), ("public-data", 0.9)]


def test_only_the_attack_receives_the_public_data(tmp_path, monkeypatch):
    """A tiny audit: FL and the oracle train on the federation only; the methods get the withheld clients' images."""
    import mganai.audit.traces as traces
    from mganai.methods import METHODS

    got = []
    method = METHODS["class-gan"]

    def spy(parts):
        got.append(parts)
        return method.build(parts)

    monkeypatch.setitem(traces.METHODS, "class-gan", dataclasses.replace(method, build=spy))
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[fl]\nrounds = 2\n[attack]\nstart_round = 0\ngan_steps_per_round = 1\ngan_final_steps = 1\ngan_batch = 4\n"
        "[eval]\noracle_epochs = 1\nsamples_per_class = 1\ncurve_every = 0\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    flags = ["--config", str(config), "--clients", "4", "--public-clients", "1", "--methods", "class-gan", "--quiet"]
    code, _, err = run_cli(["run", *flags, "--out", str(out)])
    assert code == 0, err
    whole = load_dataset(DataConfig(clients=4), 0)
    (parts,) = got
    assert parts.num_clients == 3 and parts.public is not None
    assert set(image_keys(parts.public.x)) == set(
        image_keys(torch.cat([whole.clients[3].x_train, whole.clients[3].x_test]))
    )
    m = _metrics(out)
    assert len(m["data"]["clients"]) == 3 and m["threat_model"]["public"]["clients"] == ["writer03"]


@pytest.mark.parametrize(("methods", "bank"), [(["mganai-passive", "class-gan"], False), (["representatives"], True)])
def test_under_public_data_only_a_method_without_a_gan_inverts_updates(methods, bank, digits4):
    """The GANs judge realism against public images, so the representative bank (update inversion every few
    rounds) is built only when a method that reads it directly is asked for."""
    from mganai.audit.traces import setup_trace
    from mganai.threat import FROM_DATASET, PublicData

    cfg = build_config({}, {"data.clients": 4, "attack.prior_pretrain_steps": 2})
    c = digits4.clients[3]
    public = PublicData(c.x_test, c.y_test, "stand-in", FROM_DATASET)
    with_public = setup_trace(cfg, digits4, methods, False, torch.device("cpu"), public=public)
    without = setup_trace(cfg, digits4, methods, False, torch.device("cpu"))
    assert (with_public.bank is not None) == bank
    assert without.bank is not None  # updates-only: every one of these methods reads it


# --- bad input: one line, exit 2, nothing written ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--public", "idx:{idx4}"], "has 4 classes, the federation 10"),
        (["--public", "digits"], "may hold the federation's own images"),
        (["--dataset", "mnist", "--public", "emnist-digits"], "nist-digits corpus"),
        (["--public-clients", "9", "--clients", "10"], "at most clients - 2 = 8"),
        (["--public-clients", "-1"], "data.public_clients must be >= 0"),
        (["--public", "folder:{missing}"], "data.public: folder dataset not found"),
        (["--public", "idx:{idx4}", "--public-clients", "2"], "exclude each other"),
        (["--public", "nope"], "data.public: unknown dataset 'nope'"),
        (["--dataset", "folder:{writers}", "--public-clients", "2"], "data.public_clients must be in 1..1"),
    ],
)
@pytest.mark.parametrize("command", ["run", "flower-sim"])
def test_bad_public_data_is_one_line_exit_2_and_writes_nothing(tmp_path, flags, says, command):
    if command == "flower-sim":
        pytest.importorskip("flwr", reason="Flower is not installed")
    idx4 = write_idx_dir(tmp_path / "idx4", n=40, classes=4)
    writers = write_folder_tree(tmp_path / "writers", {n: {"a": 3, "b": 3} for n in ("x", "y", "z")})
    paths = {"idx4": idx4, "missing": tmp_path / "nowhere", "writers": writers}
    argv = [command, "--rounds", "1", "--methods", "none", "--quiet", *(f.format(**paths) for f in flags)]
    out = tmp_path / "out"
    code, stdout, err = run_cli([*argv, "--out", str(out)])
    lines = err.strip().splitlines()
    assert code == 2 and stdout == "" and len(lines) == 1, err
    assert lines[0].startswith("mganai: error: ") and says in lines[0], lines[0]
    assert not out.exists()


def test_the_config_refuses_public_data_of_the_federations_own_source():
    for dataset, public in [("digits", "digits"), ("olivetti", "att-faces:/faces"), ("folder:/a", "folder:/a/b")]:
        with pytest.raises(ConfigError, match="may hold the federation's own images"):
            build_config({}, {"data.dataset": dataset, "data.public": public})
    assert build_config({}, {"data.public": "mnist"}).data.public == "mnist"  # other people's digits are fine


def test_withholding_checks_the_count_of_natural_clients_when_loaded():
    data = load_dataset(DataConfig(clients=3), 0)
    with pytest.raises(ConfigError, match=r"must be in 1\.\.1"):
        public_module.withhold_clients(data, 2, 0)
    fed = public_module.withhold_clients(data, 1, 2)
    assert fed.data.client_names() == ["writer00", "writer02"] and fed.victim == 1
    assert withheld(3, 1, 2) == [1]
