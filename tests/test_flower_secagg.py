"""Secure aggregation in the Flower path: Flower's own SecAgg+ protocol (real key agreement, masks, quantisation),
driven in-process over a grid that hands each message to the node's ClientApp, so it runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("flwr", reason="Flower is not installed: pip install -e '.[flower]' (make test installs it)")

from flwr.app import Context, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from mganai.cli import main
from mganai.config import build_config
from mganai.data import load_dataset
from mganai.fl.aggregate import weighted_mean
from mganai.fl.defenses import AGGREGATE, defense_steps
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from mganai.flower import secagg
from mganai.flower.inprocess import InProcessGrid
from mganai.flower.secagg import quantisation_bound, quantisation_range, secagg_client_app, secagg_fl
from test_flower import TINY

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """An observer that keeps everything it is shown."""

    def __init__(self) -> None:
        self.seen: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.seen.append(obs)


@pytest.fixture
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages need a run identity; a Flower runtime would set it."""
    for name in ("_run_id", "_task_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def _task(rounds: int, seed: int = 0):
    overrides = {"data.clients": 3, "fl.rounds": rounds, "fl.local_epochs": 1, "fl.engine": "loop", "seed": seed}
    cfg = build_config({}, {**overrides, "attack.methods": "none", "defense.name": "secagg"})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    return cfg, data, model, init


def _flower_secagg(cfg, data, model, init, observers, monkeypatch, spy: list | None = None):
    """FL under Flower's SecAgg+ over the in-process grid; `spy` gets every (round, client, update, n) a client
    submitted (the test's own instrument: the server never sees it)."""
    if spy is not None:
        fit = secagg.SecAggClient.fit

        def spied(self, parameters, config):
            arrays, n, metrics = fit(self, parameters, config)
            spy.append((int(config["server-round"]) - 1, self.client, [a.copy() for a in arrays], n))
            return arrays, n, metrics

        monkeypatch.setattr(secagg.SecAggClient, "fit", spied)
    app = secagg_client_app(cfg, lambda c: data)
    grid = InProcessGrid(app, data.num_clients)
    run = secagg_fl(grid, Context(1, 0, {}, RecordDict(), {}))
    steps = defense_steps(cfg.defense, cfg.seed)
    return run(model, init, data, cfg, observers, None, lambda t, a: None, steps)


def test_secaggplus_gives_fedavgs_aggregate_and_no_observer_gets_an_individual_update(task_identity, monkeypatch):
    cfg, data, model, init = _task(2, seed=1)
    flower_seen, spy = Recorder(), []
    result = _flower_secagg(cfg, data, model, init, [flower_seen], monkeypatch, spy)
    sim_seen = Recorder()
    steps = defense_steps(cfg.defense, cfg.seed)
    sim_result = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[sim_seen], defense=steps).run()

    counts = [float(len(c.y_train)) for c in data.clients]
    bound = quantisation_bound(counts, cfg.fl.max_update_norm, quantisation_range(3))
    assert 0 < bound < 3e-6  # 3 clients, c = 1000, Q = 2^30: 4 steps of 1.9e-6 over total weight 2.97
    names = list(init)
    assert len(flower_seen.seen) == 2 and result.participants == [[0, 1, 2], [0, 1, 2]]
    for t, obs in enumerate(flower_seen.seen):
        # what reached the observer: one pseudo-client, the aggregate
        assert obs.client_ids == [AGGREGATE] and obs.aggregated == [AGGREGATE]
        assert all(v.shape[0] == 1 for v in obs.updates.values())
        assert float(obs.num_samples[0]) == sum(counts)
        submitted = [s for s in spy if s[0] == t]
        assert sorted(s[1] for s in submitted) == [0, 1, 2]
        for _, client, arrays, _ in submitted:  # no client's own update is what the observer got
            own = {n: torch.from_numpy(a).float() for n, a in zip(names, arrays)}
            assert max(float((obs.updates[n][0] - own[n]).abs().max()) for n in names) > 100 * bound, client
        # ... but FedAvg's sample-weighted mean of the submitted updates, to the quantisation bound
        stacked = {n: torch.stack([torch.from_numpy(s[2][i]).float() for s in submitted]) for i, n in enumerate(names)}
        plain = weighted_mean(stacked, torch.tensor([float(s[3]) for s in submitted]))
        assert max(float((obs.updates[n][0] - plain[n]).abs().max()) for n in names) <= bound
    # round 0 starts from the same model in both runtimes: Flower's SecAgg+ aggregate is the simulator's
    first, sim_first = flower_seen.seen[0], sim_seen.seen[0]
    assert sim_first.client_ids == [AGGREGATE]
    assert max(float((first.updates[n] - sim_first.updates[n]).abs().max()) for n in names) <= bound
    # and FL stays the simulator's up to that rounding
    assert result.test_accuracy == pytest.approx(sim_result.test_accuracy, abs=0.02)
    assert max(float((result.final_params[n] - sim_result.final_params[n]).abs().max()) for n in names) < 1e-3


def test_the_same_seed_gives_the_same_secaggplus_aggregate(task_identity, monkeypatch):
    """Masks and keys are fresh every run; they cancel. The stochastic rounding is seeded per (seed, round, client)."""
    cfg, data, model, init = _task(1)
    a, b = Recorder(), Recorder()
    _flower_secagg(cfg, data, model, init, [a], monkeypatch)
    _flower_secagg(cfg, data, model, init, [b], monkeypatch)
    assert all(torch.equal(a.seen[0].updates[n], b.seen[0].updates[n]) for n in init)


def test_quantisation_range_keeps_the_masked_sum_below_the_modulus():
    assert quantisation_range(3) == 2**30  # capped: Flower quantises into int32
    assert quantisation_range(10) == 2**28
    for k in (2, 10, 100, 1000, 5000):
        assert k * quantisation_range(k) < 2**32


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dropout", "0.2"], "fl.dropout is not available with --defense secagg"),
        (["--clients", "4", "--fraction", "0.25"], "needs at least 2 clients per round"),
    ],
)
def test_flower_sim_refuses_what_secaggplus_cannot_do_in_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    args = ["flower-sim", "--defense", "secagg", "--methods", "mganai-passive", "--out", str(out), *extra]
    code, err = _cli(args, capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.ray
@pytest.mark.slow
def test_flower_sim_under_secagg_runs_the_class_level_attacks_from_the_aggregate(tmp_path, capsys):
    conf = tmp_path / "tiny.toml"
    conf.write_text(TINY)
    common = ["--config", str(conf), "--clients", "3", "--rounds", "2", "--local-epochs", "1", "--seed", "2"]
    common += ["--defense", "secagg", "--methods", "mganai-passive,class-gan", "--quiet"]
    assert main(["flower-sim", *common, "--out", str(tmp_path / "flower")]) == 0
    assert main(["run", *common, "--engine", "loop", "--out", str(tmp_path / "sim")]) == 0
    flower, sim = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("flower", "sim"))
    assert flower["fl"]["runtime"] == "flower" and flower["defense"]["name"] == "secagg"
    assert flower["defense"]["server_sees"] == sim["defense"]["server_sees"]
    assert flower["fl"]["test_accuracy_per_round"] == pytest.approx(sim["fl"]["test_accuracy_per_round"], abs=0.02)
    assert set(flower["methods"]) == {"mganai-passive", "class-gan"}
    assert (tmp_path / "flower" / "mganai-passive.png").stat().st_size > 0


def _run_config(clients: int, rounds: int, **extra) -> dict:
    """Flower's run config for the deployment's apps, as `flwr run --run-config` would give it."""
    base = {"data.clients": clients, "fl.rounds": rounds, "fl.local_epochs": 1, "fl.engine": "loop", "seed": 0}
    return {**base, "attack.methods": "none", "defense.name": "secagg", **extra}


def test_the_deployments_client_app_runs_secaggplus_when_the_run_config_says_secagg(task_identity, monkeypatch):
    """`flwr run`'s ClientApp is built before any run config exists; it must still put secaggplus_mod in front."""
    from mganai.flower.app import config_from_run_config, make_client_app

    cfg, data, model, init = _task(1)
    baked = Recorder()
    _flower_secagg(cfg, data, model, init, [baked], monkeypatch)
    run_config = _run_config(3, 1)
    app = make_client_app(dataset=lambda c: data)  # what examples/flower/pyproject.toml's clientapp is
    grid = InProcessGrid(app, data.num_clients, run_config=run_config)
    deployed = Recorder()
    run = secagg_fl(grid, Context(1, 0, {}, RecordDict(), run_config))
    run_cfg = config_from_run_config(run_config)
    run(model, init, data, run_cfg, [deployed], None, lambda t, a: None, defense_steps(run_cfg.defense, run_cfg.seed))
    assert deployed.seen[0].client_ids == [AGGREGATE]
    assert all(torch.equal(deployed.seen[0].updates[n], baked.seen[0].updates[n]) for n in init)


def test_the_same_seed_samples_the_same_clients_under_secaggplus(task_identity):
    """fl.client_fraction < 1: Flower samples with Python's `random`, which the ServerApp seeds per FL run."""
    import random

    cfg = build_config({}, {**_run_config(4, 3, **{"fl.client_fraction": 0.5}), "defense.name": "secagg"})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    runs = []
    for noise in (1, 2):
        random.seed(noise)  # whatever the process drew before must not matter
        grid = InProcessGrid(secagg_client_app(cfg, lambda c: data), data.num_clients)
        run = secagg_fl(grid, Context(1, 0, {}, RecordDict(), {}))
        runs.append(run(model, init, data, cfg, [], None, lambda t, a: None, defense_steps(cfg.defense, cfg.seed)))
    assert runs[0].participants == runs[1].participants
    assert all(len(ids) == 2 for ids in runs[0].participants)
