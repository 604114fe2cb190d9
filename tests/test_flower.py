"""Flower integration: the strategy against the simulator, flower-sim end to end, a loopback deployment.

Skipped when flwr is not installed (`pip install -e '.[flower]'`; `make test` installs it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("flwr", reason="Flower is not installed: pip install -e '.[flower]' (make test installs it)")

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from mganai.attack.active import VictimIsolation
from mganai.cli import main
from mganai.config import build_config
from mganai.data import load_dataset
from mganai.fl.model import SharedCNN, params_of, seeded
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from mganai.flower.app import config_from_run_config, train_reply
from mganai.flower.strategy import AuditStrategy, params_from_record, record_from_params

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[attack]
start_round = 1
gan_steps_per_round = 2
gan_final_steps = 5
inversion_steps = 3
reps_per_client = 4
[eval]
oracle_epochs = 1
samples_per_class = 2
"""


class Recorder:
    def __init__(self) -> None:
        self.seen: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.seen.append(obs)


class FakeGrid:
    """Just enough of a Grid for FedAvg's node sampling."""

    def __init__(self, nodes: list[int]):
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)


@pytest.fixture
def task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages need a run identity; a Flower runtime would set it."""
    for name in ("_run_id", "_task_id", "_node_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def _fl_task(rounds: int, seed: int = 0, settings: dict | None = None) -> tuple:
    """FL only (the strategy tests drive it by hand): 3 clients, one local epoch, the loop engine; the config,
    data, model and initial weights."""
    overrides = {"data.clients": 3, "fl.rounds": rounds, "fl.local_epochs": 1, "fl.engine": "loop", "seed": seed}
    cfg = build_config({}, {**overrides, "attack.methods": "none", **(settings or {})})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    return cfg, data, model, init


def _flower_rounds(cfg, strategy: AuditStrategy, init, client_of: dict[int, int], rounds: int):
    """Drive the strategy by hand: configure, let each 'ClientApp' (train_reply) answer, aggregate."""
    arrays = record_from_params(init)
    sent_records = []
    for r in range(1, rounds + 1):
        messages = list(strategy.configure_train(r, arrays, ConfigRecord(), FakeGrid(sorted(client_of))))
        sent_records.append({m.metadata.dst_node_id: m.content for m in messages})
        replies = [
            Message(train_reply(cfg, client_of[m.metadata.dst_node_id], m.content), reply_to=m) for m in messages
        ]
        new, _ = strategy.aggregate_train(r, replies)
        arrays = new if new is not None else arrays
    return params_from_record(arrays), sent_records


def test_strategy_shows_the_simulators_rounds_and_isolates_the_victim(task_identity) -> None:
    cfg, data, model, init = _fl_task(3, seed=3)
    victim = 1

    sim_seen = Recorder()
    sim_iso = VictimIsolation(victim, start_round=1)
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[sim_iso, sim_seen], dispatcher=sim_iso)
    sim_final = sim.run().final_params

    fl_seen = Recorder()
    fl_iso = VictimIsolation(victim, start_round=1)
    client_of = {501: 2, 502: 0, 503: 1}  # node ids say nothing about whose data a node holds
    strategy = AuditStrategy([fl_iso, fl_seen], fl_iso, fraction_evaluate=0.0, min_available_nodes=3)
    fl_final, sent = _flower_rounds(cfg, strategy, init, client_of, cfg.fl.rounds)

    assert strategy.node_to_client == client_of
    assert len(fl_seen.seen) == len(sim_seen.seen) == 3
    for a, b in zip(fl_seen.seen, sim_seen.seen):
        assert (a.round, a.client_ids, a.aggregated) == (b.round, b.client_ids, b.aggregated)
        assert torch.equal(a.num_samples, b.num_samples)
        for n in b.updates:
            assert torch.equal(a.updates[n], b.updates[n]), n
            assert torch.equal(a.sent[n], b.sent[n]), n
            assert torch.equal(a.global_params[n], b.global_params[n]), n
    assert fl_seen.seen[1].aggregated == [0, 2]  # the isolated victim's update stays out of the average
    for n in sim_final:
        assert torch.equal(fl_final[n], sim_final[n]), n
    # round 2 on: the victim's node got its own record, the others share the shared model's
    victim_node, others = 503, [501, 502]
    assert sent[1][victim_node] is not sent[1][others[0]] and sent[1][others[0]] is sent[1][others[1]]
    assert not torch.equal(
        params_from_record(sent[2][victim_node]["arrays"])["classifier.weight"],
        params_from_record(sent[2][others[0]]["arrays"])["classifier.weight"],
    )


def test_clients_train_with_the_scheduled_recipe_the_server_sent_as_in_the_simulator(task_identity) -> None:
    """The cosine schedule (and a cap on local steps) in both runtimes: the strategy sends each round's recipe, the
    ClientApp trains with it (even one whose own settings say otherwise), and FL and the observations equal the
    simulator's bit for bit."""
    import dataclasses

    from mganai.fl.recipe import local_recipe

    over = {
        "data.clients": 3,
        "fl.rounds": 3,
        "fl.local_epochs": 1,
        "fl.engine": "loop",
        "seed": 4,
        "attack.methods": "none",
    }
    schedule = {"fl.lr": 0.2, "fl.lr_schedule": "cosine", "fl.lr_min_ratio": 0.1, "fl.local_steps": 3}
    cfg = build_config({}, {**over, **schedule})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    model = SharedCNN(shape[0], data.num_classes, shape[1])
    init = params_of(seeded(lambda: SharedCNN(shape[0], data.num_classes, shape[1]), cfg.seed))
    sim_seen = Recorder()
    sim_final = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[sim_seen]).run().final_params

    fl_seen = Recorder()
    strategy = AuditStrategy(
        [fl_seen], fraction_evaluate=0.0, min_available_nodes=3, recipe=lambda t: local_recipe(cfg.fl, t)
    )
    own = dataclasses.replace(cfg.fl, lr=0.05, lr_schedule="constant", local_steps=0)
    client_cfg = dataclasses.replace(cfg, fl=own)
    fl_final, sent = _flower_rounds(client_cfg, strategy, init, {7: 0, 8: 1, 9: 2}, cfg.fl.rounds)

    assert [float(sent[t][7]["config"]["lr"]) for t in range(3)] == [local_recipe(cfg.fl, t).lr for t in range(3)]
    assert [int(sent[t][7]["config"]["local-steps"]) for t in range(3)] == [3, 3, 3]  # the step cap travels too
    assert (
        [o.recipe for o in fl_seen.seen]
        == [o.recipe for o in sim_seen.seen]
        == [local_recipe(cfg.fl, t) for t in range(3)]
    )
    for a, b in zip(fl_seen.seen, sim_seen.seen):
        for n in b.updates:
            assert torch.equal(a.updates[n], b.updates[n]), n
    for n in sim_final:
        assert torch.equal(fl_final[n], sim_final[n]), n


def test_strategy_drops_the_clients_the_simulator_drops(task_identity) -> None:
    """--dropout in flower-sim: the same seeded draws leave out the same replies, so FL is the simulator's."""
    cfg, data, model, init = _fl_task(4, settings={"fl.dropout": 0.4})
    sim = FedAvgSimulator(model, init, data, cfg.fl, cfg.seed)
    expected = sim.run()

    strategy = AuditStrategy(
        fraction_evaluate=0.0, min_available_nodes=3, dropout=cfg.fl.dropout, num_clients=3, seed=cfg.seed
    )
    final, _ = _flower_rounds(cfg, strategy, init, {501: 2, 502: 0, 503: 1}, cfg.fl.rounds)

    assert expected.dropped and len(expected.dropped) < 3 * cfg.fl.rounds  # some clients dropped, not all
    assert strategy.dropped == expected.dropped
    assert strategy.participants == expected.participants
    for n in expected.final_params:
        assert torch.equal(final[n], expected.final_params[n]), n


def test_strategy_refuses_replies_without_a_client_id(task_identity) -> None:
    cfg = build_config({}, {"data.clients": 2, "fl.local_epochs": 1})
    data = load_dataset(cfg.data, cfg.seed)
    shape = data.image_shape
    init = params_of(SharedCNN(shape[0], data.num_classes, shape[1]))
    strategy = AuditStrategy([Recorder()], min_available_nodes=2)
    messages = list(strategy.configure_train(1, record_from_params(init), ConfigRecord(), FakeGrid([1, 2])))
    replies = []
    for m in messages:
        content = train_reply(cfg, 0, m.content)
        del content["metrics"]["partition-id"]
        replies.append(Message(content, reply_to=m))
    with pytest.raises(ValueError, match="partition-id"):
        strategy.aggregate_train(1, replies)


def test_a_client_without_the_servers_gpu_trains_on_its_cpu(task_identity, monkeypatch) -> None:
    """--device names the server's hardware: a client (here: no GPU) uses its own, and its reply is the same."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu, gpu = (build_config({}, {"data.clients": 2, "fl.local_epochs": 1, "device": d}) for d in ("cpu", "cuda:1"))
    data = load_dataset(cpu.data, cpu.seed)
    shape = data.image_shape
    init = params_of(SharedCNN(shape[0], data.num_classes, shape[1]))
    strategy = AuditStrategy([Recorder()], min_available_nodes=2)
    message = next(iter(strategy.configure_train(1, record_from_params(init), ConfigRecord(), FakeGrid([1, 2]))))
    replies = [params_from_record(train_reply(c, 1, message.content)["arrays"]) for c in (cpu, gpu)]
    assert all(torch.equal(replies[0][n], replies[1][n]) for n in init)
    assert not torch.equal(replies[0]["classifier.weight"], init["classifier.weight"])


def test_strategy_rejects_a_nan_reply_like_the_simulator(task_identity, capsys) -> None:
    """A client whose reply holds NaN is logged and left out of the average and out of what the attack sees."""
    cfg, _, _, init = _fl_task(2, seed=3)
    seen = Recorder()
    strategy = AuditStrategy(
        [seen], fraction_evaluate=0.0, min_available_nodes=3, max_update_norm=cfg.fl.max_update_norm
    )
    client_of = {501: 2, 502: 0, 503: 1}
    arrays = record_from_params(init)
    for r in (1, 2):
        messages = list(strategy.configure_train(r, arrays, ConfigRecord(), FakeGrid(sorted(client_of))))
        replies = []
        for m in messages:
            content = train_reply(cfg, client_of[m.metadata.dst_node_id], m.content)
            if client_of[m.metadata.dst_node_id] == 0:  # a broken client
                broken = {n: torch.full_like(v, float("nan")) for n, v in params_from_record(content["arrays"]).items()}
                content = RecordDict({"arrays": record_from_params(broken), "metrics": content["metrics"]})
            replies.append(Message(content, reply_to=m))
        arrays, _ = strategy.aggregate_train(r, replies)
    final = params_from_record(arrays)
    assert all(torch.isfinite(v).all() for v in final.values())
    assert [(x["round"], x["client"]) for x in strategy.rejected] == [(0, 0), (1, 0)]
    assert [obs.client_ids for obs in seen.seen] == [[1, 2], [1, 2]]
    assert capsys.readouterr().err.count("rejected the update of client 0") == 2


def test_run_config_keys_override_the_file_and_empty_means_unset(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[fl]\nrounds = 7\nlocal_epochs = 3\n")
    run_config = {"config-file": str(f), "fl.rounds": "", "fl.local_epochs": 1, "data.clients": 4, "out": "x"}
    cfg = config_from_run_config(run_config)
    assert (cfg.fl.rounds, cfg.fl.local_epochs, cfg.data.clients, cfg.out) == (7, 1, 4, "x")
    assert config_from_run_config({"seed": ""}).seed == build_config().seed


def test_example_app_lists_only_unset_or_run_level_keys() -> None:
    import tomllib

    from flwr.common.config import flatten_dict

    app = tomllib.loads((ROOT / "examples/flower/pyproject.toml").read_text())["tool"]["flwr"]
    components = {"serverapp": "mganai.flower.app:server_app", "clientapp": "mganai.flower.app:client_app"}
    assert app["app"]["components"] == components
    config_from_run_config(flatten_dict(app["app"]["config"]))  # every key is a valid mganai setting


def _metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


@pytest.mark.ray
def test_flower_sim_writes_the_same_audit_as_the_simulator(tmp_path: Path, capsys) -> None:
    conf = tmp_path / "tiny.toml"
    conf.write_text(TINY)
    common = [
        "--config",
        str(conf),
        "--clients",
        "3",
        "--rounds",
        "2",
        "--local-epochs",
        "1",
        "--seed",
        "5",
        "--methods",
        "mganai-passive,mganai-active",
        "--quiet",
    ]
    assert main(["flower-sim", *common, "--out", str(tmp_path / "flower")]) == 0
    assert main(["run", *common, "--engine", "loop", "--out", str(tmp_path / "sim")]) == 0
    flower, sim = _metrics(tmp_path / "flower"), _metrics(tmp_path / "sim")
    assert flower["fl"].pop("runtime") == "flower" and sim["fl"].pop("runtime") == "mganai-simulator"
    assert flower["fl"] == sim["fl"]
    assert flower["config"].pop("out") != sim["config"].pop("out")
    assert flower["config"] == sim["config"]  # flower-sim records the engine its clients ran: loop
    assert flower["methods"] == sim["methods"]
    methods = flower["methods"]
    assert methods["mganai-active"]["victim_accuracy"] != methods["mganai-passive"]["victim_accuracy"]
    for name in ("mganai-passive", "mganai-active"):
        assert (tmp_path / "flower" / f"{name}.png").stat().st_size > 0
    assert "FL test accuracy" in capsys.readouterr().out


@pytest.mark.ray
@pytest.mark.subprocess
def test_quiet_flower_sim_prints_only_the_summary(tmp_path: Path) -> None:
    """No Flower deprecation note, no 'fraction_evaluate is set to 0.0', no Ray FutureWarning, no actor lines."""
    out = tmp_path / "out"
    args = ["flower-sim", "--clients", "3", "--rounds", "2", "--methods", "none", "--quiet", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "mganai", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == f"wrote {out / 'metrics.json'} and {out / 'report.html'}"


@pytest.mark.loopback
@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the loopback script finds processes through /proc")
@pytest.mark.parametrize("defense", ["none", "secagg"])
def test_loopback_deployment(tmp_path: Path, defense: str) -> None:
    """A real SuperLink and SuperNodes; under secagg the ClientApps take SecAgg+'s mod from the run config."""
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/flower/deploy_loopback.py"),
            "--nodes",
            "2",
            "--rounds",
            "2",
            "--methods",
            "mganai-passive",
            "--defense",
            defense,
            "--out",
            str(out),
            "--timeout",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=460,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert summary["status"] == "finished:completed" and summary["defense"] == defense
    assert summary["leftover_processes"] == []
    assert summary["listen"] and all(a.startswith("127.0.0.1:") for a in summary["listen"])
    m = _metrics(out)
    assert m["fl"]["runtime"] == "flower" and len(m["fl"]["test_accuracy_per_round"]) == 2
    assert m["config"]["defense"]["name"] == defense
    assert 0.0 <= m["methods"]["mganai-passive"]["joint_success"] <= 1.0
    assert (out / "mganai-passive.png").stat().st_size > 0


@pytest.mark.subprocess
def test_deploy_loopback_refuses_bad_settings_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--nodes", "3", "--defense", "secagg", "--methods", "mganai-active", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples/flower/deploy_loopback.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "mganai-active cannot run under defense secagg" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_both_runtimes_settle_every_round_through_the_one_function(task_identity, monkeypatch) -> None:
    """The simulator and the Flower strategy hand settle_round the same round and get the same settlement back."""
    import mganai.fl.server as server_module
    import mganai.flower.strategy as strategy_module
    from mganai.fl.settle import NO_DEFENSE, settle_round

    def spy(log):
        def settle(round_, max_norm, defense=NO_DEFENSE):
            settled = settle_round(round_, max_norm, defense)
            log.append((round_, settled))
            return settled

        return settle

    sim_log, fl_log = [], []
    monkeypatch.setattr(server_module, "settle_round", spy(sim_log))
    monkeypatch.setattr(strategy_module, "settle_round", spy(fl_log))
    cfg, data, model, init = _fl_task(3, seed=5)
    sim_iso = VictimIsolation(2, start_round=1)
    FedAvgSimulator(model, init, data, cfg.fl, cfg.seed, observers=[sim_iso], dispatcher=sim_iso).run()
    fl_iso = VictimIsolation(2, start_round=1)
    strategy = AuditStrategy([fl_iso], fl_iso, fraction_evaluate=0.0, min_available_nodes=3, max_update_norm=1000.0)
    _flower_rounds(cfg, strategy, init, {11: 0, 12: 1, 13: 2}, cfg.fl.rounds)

    assert len(sim_log) == len(fl_log) == cfg.fl.rounds
    for (a_in, a_out), (b_in, b_out) in zip(sim_log, fl_log):
        assert (a_in.round, a_in.client_ids, a_in.dispatched) == (b_in.round, b_in.client_ids, b_in.dispatched)
        assert torch.equal(a_in.num_samples, b_in.num_samples)
        for n in a_in.updates:
            assert torch.equal(a_in.updates[n], b_in.updates[n]) and torch.equal(a_in.sent[n], b_in.sent[n]), n
            assert torch.equal(a_out.params[n], b_out.params[n]), n
            assert torch.equal(a_out.observation.updates[n], b_out.observation.updates[n]), n
        assert a_out.aggregated == b_out.aggregated and a_out.rejected == b_out.rejected
    assert sim_log[1][1].aggregated == [0, 1]  # the isolated victim (client 2) is observed, not averaged


def test_the_same_seed_samples_the_same_clients_in_the_flower_path(task_identity) -> None:
    """fl.client_fraction < 1: Flower's FedAvg samples with Python's `random`, which the ServerApp seeds per FL run."""
    import random

    from mganai.fl.settle import NO_DEFENSE
    from mganai.flower.app import flower_fl, make_client_app
    from mganai.flower.inprocess import InProcessGrid

    cfg, data, model, init = _fl_task(3, settings={"data.clients": 6, "fl.client_fraction": 0.5})
    runs = []
    for noise in (1, 2):
        random.seed(noise)  # whatever the process drew before must not matter
        grid = InProcessGrid(make_client_app(cfg, dataset=lambda c: data), data.num_clients)
        runs.append(flower_fl(grid)(model, init, data, cfg, [], None, lambda t, a: None, NO_DEFENSE))
    assert runs[0].participants == runs[1].participants
    assert all(len(ids) == 3 for ids in runs[0].participants)
    assert len({tuple(ids) for ids in runs[0].participants}) > 1  # it does sample: not the same 3 every round
