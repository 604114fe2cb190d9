"""Reliability: faulty clients, --out safety, atomic outputs, checkpoint/resume (bit for bit), safe checkpoint
loading."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mganai import checkpoint
from mganai.cli import main, parse
from mganai.cli.run import _resumed_config
from mganai.cli.stop_request import StopRequest
from mganai.data.federated import ClientData, FederatedDataset
from mganai.fl.faults import dropouts, screen_updates, update_norms
from mganai.fl.observers import RoundObservation
from mganai.fl.server import FedAvgSimulator
from tinyrun import TINY_AUDIT, run_cli

TINY = TINY_AUDIT.replace("batch_size = 32", "batch_size = 32\ndropout = 0.25").replace(
    "curve_samples_per_class = 2\n", ""
)
FL_ONLY = ["run", "--rounds", "2", "--clients", "3", "--methods", "none", "--quiet"]


def _one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mganai: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _comparable(out: Path) -> dict:
    """metrics.json minus what may differ between two runs of the same audit: timing and where it was written."""
    m = json.loads((out / "metrics.json").read_text())
    m.pop("timing")
    m["config"].pop("out")
    return m


class Recorder:
    def __init__(self) -> None:
        self.rounds: list[RoundObservation] = []

    def observe(self, obs: RoundObservation) -> None:
        self.rounds.append(obs)


# --- faulty clients ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poisoned(small_fed) -> FederatedDataset:
    """small_fed whose client 2 has NaN pixels: its local training returns a NaN update."""
    clients = list(small_fed.clients)
    c = clients[2]
    clients[2] = ClientData(c.name, torch.full_like(c.x_train, float("nan")), c.y_train, c.x_test, c.y_test)
    return FederatedDataset("poisoned", clients, small_fed.num_classes, small_fed.class_names)


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_nan_update_is_kept_out_of_fedavg_and_the_attack(poisoned, model, init_params, fl_cfg, engine):
    cfg = dataclasses.replace(fl_cfg, engine=engine, rounds=3)
    rec = Recorder()
    sim = FedAvgSimulator(model, init_params, poisoned, cfg, seed=0, observers=[rec])
    logged: list[str] = []
    sim.log = logged.append
    result = sim.run()
    assert all(torch.isfinite(v).all() for v in result.final_params.values())
    assert all(0.0 <= a <= 1.0 for a in result.test_accuracy)
    assert [(r["round"], r["client"]) for r in result.rejected] == [(0, 2), (1, 2), (2, 2)]
    assert all("non-finite" in r["reason"] for r in result.rejected)
    assert logged == [f"round {t}: rejected the update of client 2: non-finite values (NaN or inf)" for t in range(3)]
    for obs in rec.rounds:  # the attack never sees the poisoned update
        assert obs.client_ids == [0, 1, 3] and 2 not in obs.aggregated
        assert all(torch.isfinite(v).all() for v in obs.updates.values())
        assert obs.updates["classifier.weight"].shape[0] == 3 and len(obs.num_samples) == 3
    assert result.absent_rounds(2) == [0, 1, 2] and result.absent_rounds(0) == []


def test_fedavg_with_a_rejected_client_equals_fedavg_without_it(
    small_fed, poisoned, model, init_params, fl_cfg, monkeypatch
):
    """Rejection removes the client from the weighted mean exactly: the same model as if it had dropped out."""
    import mganai.fl.server as server

    cfg = dataclasses.replace(fl_cfg, rounds=2)
    sim = FedAvgSimulator(model, init_params, poisoned, cfg, seed=0)
    sim.log = lambda line: None
    rejected = sim.run()
    monkeypatch.setattr(server, "dropouts", lambda n, p, gen: {2})
    absent = FedAvgSimulator(model, init_params, small_fed, cfg, seed=0).run()
    assert absent.dropped == [{"round": 0, "client": 2}, {"round": 1, "client": 2}]
    for name in rejected.final_params:
        assert torch.equal(rejected.final_params[name], absent.final_params[name])
    assert rejected.test_accuracy == absent.test_accuracy


def test_norm_bound_rejects_absurd_updates_and_the_model_stays(small_fed, model, init_params, fl_cfg):
    cfg = dataclasses.replace(fl_cfg, max_update_norm=1e-6)
    rec = Recorder()
    sim = FedAvgSimulator(model, init_params, small_fed, cfg, seed=0, observers=[rec])
    sim.log = lambda line: None
    result = sim.run()
    assert len(result.rejected) == cfg.rounds * small_fed.num_clients
    assert all("fl.max_update_norm" in r["reason"] for r in result.rejected)
    assert rec.rounds == []  # nothing accepted, nothing observed
    assert all(torch.equal(result.final_params[n], init_params[n]) for n in init_params)


def test_screen_and_norms_on_hand_made_updates():
    updates = {"w": torch.tensor([[3.0, 4.0], [0.0, float("inf")], [30.0, 40.0], [float("nan"), 0.0]])}
    assert update_norms(updates)[0] == 5.0
    rejected = screen_updates(updates, [7, 8, 9, 10], round_=4, max_norm=10.0)
    assert [(r["client"], r["round"]) for r in rejected] == [(8, 4), (9, 4), (10, 4)]
    assert "non-finite" in rejected[0]["reason"] and "50 > fl.max_update_norm 10" in rejected[1]["reason"]


def test_dropouts_are_seeded_and_the_same_for_both_engines(small_fed, model, init_params, fl_cfg):
    runs = {}
    for engine in ("loop", "vmap"):
        cfg = dataclasses.replace(fl_cfg, engine=engine, rounds=6, dropout=0.5)
        rec = Recorder()
        runs[engine] = (FedAvgSimulator(model, init_params, small_fed, cfg, seed=5, observers=[rec]).run(), rec)
    (loop, rec), (vmap, _) = runs["loop"], runs["vmap"]
    assert loop.dropped == vmap.dropped and loop.participants == vmap.participants
    assert 0 < len(loop.dropped) < 6 * 4
    for t, ids in enumerate(loop.participants):
        gone = {d["client"] for d in loop.dropped if d["round"] == t}
        assert set(ids) == set(range(4)) - gone
    assert [obs.client_ids for obs in rec.rounds] == [ids for ids in loop.participants if ids]
    gen = torch.Generator().manual_seed(1)
    assert dropouts(4, 0.0, gen) == set() and dropouts(4, 0.999999, gen) == {0, 1, 2, 3}


def test_dropout_zero_changes_nothing(small_fed, model, init_params, fl_cfg):
    """The dropout stream is separate: at p = 0 FL is the same as before dropouts existed (all clients, every round)."""
    result = FedAvgSimulator(model, init_params, small_fed, fl_cfg, seed=0).run()
    assert result.participants == [[0, 1, 2, 3]] * fl_cfg.rounds and result.dropped == [] and result.rejected == []


def test_audit_with_a_nan_client_and_dropouts_counts_them_and_stays_finite(tmp_path, monkeypatch):
    """The whole audit (every method, both traces) with a client whose training returns NaN, and dropouts.

    Only the client's update is broken (its data stays clean for the oracle and the metrics): a test hook in
    the training engine turns that client's trained model into NaN."""
    import mganai.data.public as loading
    import mganai.fl.server as server

    (tmp_path / "tiny.toml").write_text(TINY.replace("clients = 3", "clients = 4").replace("rounds = 4", "rounds = 5"))
    real_load, broken = loading.load_dataset, []

    def load(cfg, seed):
        data = real_load(cfg, seed)
        broken.append(data.clients[2].x_train)
        return data

    def faulty(engine):
        def train(model, start, xs, ys, plan, lr, momentum):
            ends = engine(model, start, xs, ys, plan, lr, momentum)
            rows = [i for i, x in enumerate(xs) if x is broken[0]]
            return {n: v.index_fill(0, torch.tensor(rows, dtype=torch.long), float("nan")) for n, v in ends.items()}

        return train

    monkeypatch.setattr(loading, "load_dataset", load)
    monkeypatch.setattr(server, "ENGINES", {k: faulty(v) for k, v in server.ENGINES.items()})
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["run", "--config", str(tmp_path / "tiny.toml"), "--dropout", "0.4", "--out", str(out), "--quiet"]
    )
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    fl = m["fl"]
    assert fl["rejected_updates"] == len(fl["rejections"]) > 0
    assert {r["client"] for r in fl["rejections"]} == {2}
    assert fl["dropped_updates"] > 0 and fl["victim_absent_rounds"]  # seed 3, p 0.4: the victim misses rounds
    assert fl["active_faults"]["rejected_updates"] > 0
    for line in err.strip().splitlines():
        assert line.startswith("mganai: warning: round ") and "client 2" in line
    assert err.count("\n") == fl["rejected_updates"] + fl["active_faults"]["rejected_updates"]
    for name, scores in m["methods"].items():
        assert all(v == v for v in scores.values() if isinstance(v, float)), name  # no NaN anywhere
    assert "faulty clients:" in stdout


# --- --out safety and atomic outputs ---------------------------------------------------------


def test_non_empty_out_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, stdout, err = run_cli([*FL_ONLY, "--out", str(out)])
    line = _one_error_line(code, err)
    assert "--overwrite" in line and "not empty" in line and stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_writes_over_outputs_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "metrics.json").write_text("old")
    code, _, err = run_cli([*FL_ONLY, "--out", str(out), "--overwrite"])
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "metrics.json").read_text())["fl"]["rounds"] == 2
    assert not list(out.glob(".*.tmp"))


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "out"
    out.write_text("x")
    _one_error_line(*run_cli([*FL_ONLY, "--out", str(out)])[::2])
    assert out.read_text() == "x"


def test_unwritable_out_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_error_line(*run_cli([*FL_ONLY, "--out", str(blocker / "sub")])[::2])
    assert f"cannot write in {blocker}" in line and blocker.read_text() == "x"
    line = _one_error_line(*run_cli([*FL_ONLY, "--out", "/proc/mganai-out"])[::2])  # not writable, even as root
    assert "cannot write in /proc" in line


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    from mganai.io import write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"old": True})

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_outputs_get_the_mode_the_umask_allows(tmp_path, mask):
    """A report must be shareable as written: 0666 minus the umask, like any new file (mkstemp alone gives 0600)."""
    out = tmp_path / "out"
    old = os.umask(mask)
    try:
        code, _, err = run_cli([*FL_ONLY, "--out", str(out)])
    finally:
        os.umask(old)
    assert code == 0, err
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert {"metrics.json", "report.html", "fl_curve.png"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o666 & ~mask), modes


# --- checkpoint and resume ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny audit run once without interruption (with dropouts: their generator must resume too);
    every file it writes goes through an atomic rename."""
    root = tmp_path_factory.mktemp("resume")
    (root / "tiny.toml").write_text(TINY)
    renamed: list[str] = []
    real_replace = os.replace

    def spy(src, dst):
        renamed.append(str(dst))
        return real_replace(src, dst)

    os.replace = spy
    try:
        code, _, err = run_cli(["run", "--config", str(root / "tiny.toml"), "--out", str(root / "whole"), "--quiet"])
    finally:
        os.replace = real_replace
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    assert json.loads((root / "whole" / "metrics.json").read_text())["fl"]["dropped_updates"] > 0
    return root, renamed


def test_every_output_file_is_written_atomically(runs):
    root, renamed = runs
    files = sorted(str(p) for p in (root / "whole").iterdir())
    assert len(files) >= 10 and set(files) <= set(renamed)
    assert not (root / "whole" / "checkpoint.pt").exists()  # a finished run leaves no checkpoint


def _interrupt_at(monkeypatch, boundary: int, error: type[BaseException] | None = None) -> None:
    """Make the n-th between-rounds check report SIGTERM (or raise `error`: a crash, no checkpoint of its own)."""
    calls = {"n": 0}
    real = StopRequest.__call__

    def stop(self):
        calls["n"] += 1
        if calls["n"] == boundary:
            if error is not None:
                raise error("simulated crash")
            return signal.SIGTERM
        return real(self)

    monkeypatch.setattr(StopRequest, "__call__", stop)


def _assert_samerun_cli(whole: Path, resumed: Path) -> None:
    assert _comparable(resumed) == _comparable(whole)
    assert (resumed / "curves.csv").read_bytes() == (whole / "curves.csv").read_bytes()
    for png in whole.glob("*.png"):
        assert (resumed / png.name).read_bytes() == png.read_bytes(), png.name
    assert not (resumed / "checkpoint.pt").exists()


# Between-rounds checks, tiny config (4 rounds per trace): 1-4 after passive rounds 1-4, 5 between the
# traces (passive finished, its GANs' final steps done), 6-9 after active rounds 1-4. Mid-passive stops
# are covered by the crash test (resumes from passive round 3) and the SIGTERM test (passive round 1 or 2).
@pytest.mark.parametrize("boundary", [5, 7])
def test_interrupted_and_resumed_run_is_bit_identical(runs, tmp_path, monkeypatch, boundary):
    root, _ = runs
    out = tmp_path / "out"
    _interrupt_at(monkeypatch, boundary)
    code, _, err = run_cli(["run", "--config", str(root / "tiny.toml"), "--out", str(out), "--quiet"])
    assert code == 143
    assert err.strip().splitlines() == [err.strip()] and "--resume" in err and "SIGTERM" in err
    assert [p.name for p in out.iterdir()] == ["checkpoint.pt"]
    monkeypatch.undo()
    code, _, err = run_cli(["run", "--resume", str(out), "--quiet"])
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    _assert_samerun_cli(root / "whole", out)
    assert json.loads((out / "metrics.json").read_text())["timing"]["resumed"] is True


def test_crash_after_a_periodic_checkpoint_resumes_to_the_same_numbers(runs, tmp_path, monkeypatch):
    """--checkpoint-every 3, then a crash in active round 2: the resume starts from passive round 3."""
    root, _ = runs
    out = tmp_path / "out"
    _interrupt_at(monkeypatch, 7, error=RuntimeError)
    with pytest.raises(RuntimeError):
        main(["run", "--config", str(root / "tiny.toml"), "--out", str(out), "--quiet", "--checkpoint-every", "3"])
    saved = checkpoint.load(out / "checkpoint.pt")
    assert saved["phase"] == "passive" and len(saved["current"]["fl"]["test_accuracy"]) == 3
    monkeypatch.undo()
    code, _, err = run_cli(["run", "--resume", str(out), "--quiet"])
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    _assert_samerun_cli(root / "whole", out)


@pytest.mark.subprocess
def test_sigterm_to_a_real_process_then_resume(runs, tmp_path):
    """A separate process gets SIGTERM once its first checkpoint exists: it saves, exits 143, and --resume
    finishes it."""
    root, _ = runs
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "mganai",
        "run",
        "--config",
        str(root / "tiny.toml"),
        "--out",
        str(out),
        "--quiet",
        "--checkpoint-every",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 143, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mganai: interrupted by SIGTERM") and "--resume" in err
    assert not (out / "metrics.json").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "mganai", "run", "--resume", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    _assert_samerun_cli(root / "whole", out)


@pytest.fixture(scope="module")
def side_by_side(runs) -> Path:
    """The tiny audit on two cores (conftest's default is one): it runs both FL traces at once."""
    root, _ = runs
    code, _, err = run_cli(
        ["run", "--config", str(root / "tiny.toml"), "--out", str(root / "both"), "--quiet", "--threads", "2"]
    )
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    return root / "both"


@pytest.mark.slow
def test_side_by_side_traces_train_as_a_one_thread_run(runs, side_by_side):
    """Every computation runs on one thread, so a run on two cores gives every number and image of the
    one-core run: --threads changes how long a run takes, not what it finds."""
    root, _ = runs
    whole, both = (json.loads((d / "metrics.json").read_text()) for d in (root / "whole", side_by_side))
    assert "fl_and_attacks_side_by_side_s" in both["timing"] and "fl_and_passive_attacks_s" in whole["timing"]
    assert both["fl"] == whole["fl"]  # both traces, round by round, and the victim's model
    assert both["oracle"] == whole["oracle"] and both["methods"] == whole["methods"]
    assert both["config"].pop("threads") == 2 and whole["config"].pop("threads") == 0
    grids = [*whole["artefacts"]["grids"].values(), *(r["file"] for r in whole["artefacts"]["representatives"])]
    assert len(grids) >= 6  # the five methods' grids, and the representatives of the victim and others
    for name in grids:
        assert (side_by_side / name).read_bytes() == (root / "whole" / name).read_bytes(), name


@pytest.mark.slow
def test_side_by_side_run_stopped_and_resumed_is_bit_identical(side_by_side, tmp_path, monkeypatch):
    """Stopped after round 2 of both traces, the run saves both and resumes them side by side."""
    root = side_by_side.parent
    out = tmp_path / "out"
    _interrupt_at(monkeypatch, 2)
    code, _, err = run_cli(["run", "--config", str(root / "tiny.toml"), "--out", str(out), "--quiet", "--threads", "2"])
    assert code == 143 and "round 2 of 4 of both FL traces" in err
    saved = checkpoint.load(out / "checkpoint.pt")
    assert saved["phase"] == "both"
    assert [len(saved["current"][side]["fl"]["test_accuracy"]) for side in ("passive", "active")] == [2, 2]
    monkeypatch.undo()
    code, _, err = run_cli(["run", "--resume", str(out), "--quiet"])
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    _assert_samerun_cli(side_by_side, out)


@pytest.fixture(scope="module")
def stopped_once(runs) -> Path:
    """The tiny run stopped after its first round (a checkpoint and nothing else)."""
    root, _ = runs
    out = root / "stopped"
    with pytest.MonkeyPatch.context() as mp:
        _interrupt_at(mp, 1)
        assert run_cli(["run", "--config", str(root / "tiny.toml"), "--out", str(out), "--quiet"])[0] == 143
    return out


@pytest.fixture
def interrupted(stopped_once, tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes((stopped_once / "checkpoint.pt").read_bytes())
    return out


def test_resume_with_other_settings_is_refused(runs, interrupted):
    root, _ = runs
    before = (interrupted / "checkpoint.pt").read_bytes()
    line = _one_error_line(*run_cli(["run", "--resume", str(interrupted), "--rounds", "5"])[::2])
    assert "fl.rounds is 5 now but 4 in the checkpoint" in line
    # the same settings again (file and flags) are fine to repeat: only differences are refused
    line = _one_error_line(
        *run_cli(["run", "--resume", str(interrupted), "--config", str(root / "tiny.toml"), "--seed", "4"])[::2]
    )
    assert "seed is 4 now but 3" in line
    assert (interrupted / "checkpoint.pt").read_bytes() == before


def test_resume_on_another_device_is_refused(interrupted):
    path = interrupted / "checkpoint.pt"
    # naming the device is no change of settings (it says where, not what)...
    cfg, _ = _resumed_config(parse(["run", "--resume", str(interrupted), "--device", "cpu"]))
    assert cfg.device == "cpu"
    # ...but the tensors of a checkpoint stay on the device they were saved from
    payload = checkpoint.load(path)
    assert payload["device"] == "cpu"
    payload["device"] = "cuda:0"  # as if the run had started on a GPU: its tensors would live there
    checkpoint.save(path, {k: v for k, v in payload.items() if k not in ("format", "version")})
    before = path.read_bytes()
    line = _one_error_line(*run_cli(["run", "--resume", str(interrupted), "--quiet"])[::2])
    assert "the run started on cuda:0 and would continue on cpu; resume it with --device cuda:0" in line
    assert path.read_bytes() == before and sorted(p.name for p in interrupted.iterdir()) == ["checkpoint.pt"]


def test_resume_needs_a_checkpoint(tmp_path, runs):
    root, _ = runs
    assert "has finished" in _one_error_line(*run_cli(["run", "--resume", str(root / "whole")])[::2])
    assert "nothing to resume" in _one_error_line(*run_cli(["run", "--resume", str(tmp_path / "nowhere")])[::2])
    assert not (tmp_path / "nowhere").exists()


class Evil:
    """A pickle that would run a command when loaded with plain pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "evil-pickle", "foreign-torch-file", "wrong-contents"])
def test_tampered_checkpoint_is_a_clear_error_never_code(interrupted, tmp_path, damage):
    path = interrupted / "checkpoint.pt"
    marker = tmp_path / "pwned"
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "evil-pickle":
        torch.save({"format": "mganai-checkpoint", "version": 1, "config": Evil(marker)}, path)
        assert b"system" in path.read_bytes()  # plain pickle.load would run `touch`
    elif damage == "foreign-torch-file":
        torch.save({"weights": torch.zeros(3)}, path)
    else:  # a well-formed mganai checkpoint whose contents do not fit this run
        payload = torch.load(path, weights_only=True)
        payload["current"]["objects"].pop("bank")
        torch.save(payload, path)
    code, stdout, err = run_cli(["run", "--resume", str(interrupted), "--quiet"])
    torch.use_deterministic_algorithms(False)
    line = _one_error_line(code, err)
    assert f"checkpoint {path} is corrupt or not an mganai checkpoint (" in line, line
    assert not marker.exists() and stdout == ""
    assert [p.name for p in interrupted.iterdir()] == ["checkpoint.pt"]  # nothing else written


# --- the generic state capture -----------------------------------------------------------------


class _Attack:
    """Stands in for an attack that gains new attributes later: every kind of state the walk must keep."""

    def __init__(self, seed: int):
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(3, 2)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.1)
        self.rng = torch.Generator().manual_seed(seed)
        self.kept = __import__("collections").deque(maxlen=2)
        self.table = {"a": torch.zeros(2)}
        self.steps, self.cfg = 0, object()  # a counter is state; a config object is structure (skipped)

    def step(self) -> None:
        x = torch.randn(4, 3, generator=self.rng)
        loss = self.net(x).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.kept.append((x, {"loss": loss.detach()}))
        self.table["a"] = self.table["a"] + 1
        self.steps += 1


def test_capture_restores_modules_optimisers_generators_and_containers(tmp_path):
    a = _Attack(0)
    for _ in range(3):
        a.step()
    checkpoint.save(tmp_path / "c.pt", {"obj": checkpoint.capture(a)})
    b = _Attack(1)  # built afresh from the same "config", different weights
    cfg = b.cfg
    checkpoint.restore(b, checkpoint.load(tmp_path / "c.pt")["obj"])
    assert b.cfg is cfg and b.steps == 3 and b.kept.maxlen == 2 and len(b.kept) == 2
    for _ in range(2):  # both continue identically: weights, Adam moments and the RNG stream came back
        a.step()
        b.step()
    assert torch.equal(a.net.weight, b.net.weight) and torch.equal(a.table["a"], b.table["a"])
    driven = {id(p) for p in b.opt.param_groups[0]["params"]}
    assert driven == {id(p) for p in b.net.parameters()}  # the optimiser still drives b.net
