"""The command line end to end: run FL only, config files and flags, errors, help, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mganai.cli import main
from mganai.methods import ALL_METHODS
from tinyrun import run_cli

FLAGS = ("--dataset", "--clients", "--victim", "--rounds", "--seed", "--out", "--config", "--methods", "--quiet")
RUN = ["run", "--rounds", "2", "--clients", "3", "--methods", "none", "--quiet"]


_run = run_cli  # in this process, argparse's exits included


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def basic_run(tmp_path_factory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("basic") / "run"
    code, stdout, _ = _run([*RUN, "--out", str(out)])
    return code, stdout, out


def test_run_writes_metrics_json_with_fl_results(basic_run):
    code, stdout, out = basic_run
    assert code == 0
    m = _metrics(out)
    assert {"fl", "config", "timing"} <= set(m)
    acc = m["fl"]["test_accuracy"]
    assert isinstance(acc, float) and 0.0 <= acc <= 1.0
    assert m["fl"]["rounds"] == 2
    assert len(m["fl"]["test_accuracy_per_round"]) == 2
    assert m["fl"]["test_accuracy_per_round"][-1] == acc
    assert m["config"]["data"]["clients"] == 3 and m["config"]["attack"]["methods"] == ["none"]
    assert m["timing"]["total_s"] > 0
    assert "methods" not in m and "oracle" not in m  # --methods none: FL only
    assert "FL test accuracy" in stdout and "metrics.json" in stdout


def test_same_seed_twice_gives_identical_fl_numbers(basic_run, tmp_path):
    _, _, first = basic_run
    code, _, _ = _run([*RUN, "--out", str(tmp_path / "again")])
    assert code == 0
    assert _metrics(tmp_path / "again")["fl"] == _metrics(first)["fl"]


def test_config_file_is_read_and_flags_override_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        "seed = 3\nquiet = true\n[data]\nclients = 4\n[fl]\nrounds = 5\nlocal_epochs = 1\nbatch_size = 32\n"
        '[attack]\nvictim = 3\nmethods = ["none"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code, _, _ = _run(["run", "--config", str(config), "--rounds", "2", "--out", str(out)])
    assert code == 0
    m = _metrics(out)
    cfg = m["config"]
    assert cfg["fl"]["rounds"] == 2 and m["fl"]["rounds"] == 2  # the flag wins
    assert len(m["fl"]["test_accuracy_per_round"]) == 2
    assert cfg["seed"] == 3 and cfg["quiet"] is True  # from the file
    assert cfg["data"]["clients"] == 4 and cfg["attack"]["victim"] == 3
    assert cfg["fl"]["local_epochs"] == 1 and cfg["fl"]["batch_size"] == 32
    assert cfg["out"] == str(out)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--victim", "5", "--clients", "3"], "attack.victim"),
        (["--clients", "1", "--victim", "0"], "data.clients"),
        (["--rounds", "0"], "fl.rounds"),
        (["--methods", "mganai,none"], "attack.methods"),
        (["--resolution", "32"], "resolution"),
        (["--dataset", "cifar"], "cifar"),
        (["--config", "does-not-exist.toml"], "does-not-exist.toml"),
    ],
)
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(tmp_path, args, mentions):
    out = tmp_path / "out"
    code, stdout, stderr = _run(["run", *args, "--quiet", "--out", str(out)])
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mganai: error:") and mentions in lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()


def test_invalid_toml_config_exits_2_with_one_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[fl\nrounds = 2\n", encoding="utf-8")
    code, _, stderr = _run(["run", "--config", str(bad), "--out", str(tmp_path / "out")])
    assert code == 2
    assert len(stderr.splitlines()) == 1 and stderr.startswith("mganai: error:") and "bad.toml" in stderr
    assert not (tmp_path / "out").exists()


def test_run_help_exits_0_and_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in text, flag


def test_top_level_help_lists_the_run_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "run" in capsys.readouterr().out


# --- as a separate process -----------------------------------------------------------------


def _subprocess(args: list[str]) -> subprocess.CompletedProcess:
    # One intra-op thread, as in conftest: keeps a tiny run fast when the cores are shared.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mganai", *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@pytest.mark.subprocess
def test_python_dash_m_mganai_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    proc = _subprocess([*RUN, "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    m = _metrics(out)
    assert m["fl"]["rounds"] == 2 and 0.0 <= m["fl"]["test_accuracy"] <= 1.0
    assert "FL test accuracy" in proc.stdout


@pytest.mark.subprocess
def test_python_dash_m_mganai_bad_input_is_one_line_without_traceback(tmp_path):
    out = tmp_path / "out"
    proc = _subprocess(["run", "--victim", "5", "--clients", "3", "--out", str(out)])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("mganai: error:")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_negative_seed_is_a_one_line_error(tmp_path):
    out = tmp_path / "out"
    code, _, stderr = _run(
        ["run", "--seed", "-1", "--rounds", "1", "--clients", "2", "--methods", "none", "--quiet", "--out", str(out)]
    )
    assert code == 2 and stderr.startswith("mganai: error:") and "seed" in stderr
    assert not out.exists()


# --- flower-sim without Flower installed ------------------------------------------------------


def test_flower_sim_without_flower_is_one_error_line(tmp_path, monkeypatch):
    import mganai.flower as flower

    monkeypatch.setattr(flower, "flower_available", lambda: False)
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        ["flower-sim", "--clients", "3", "--rounds", "1", "--methods", "none", "--quiet", "--out", str(out)]
    )
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines() == [f"mganai: error: {flower.FLOWER_MISSING}"]
    assert not out.exists()


def test_flower_sim_bad_workers_is_one_error_line(tmp_path):
    code, _, stderr = _run(["flower-sim", "--workers", "0", "--quiet", "--out", str(tmp_path / "out")])
    assert code == 2 and stderr.strip().splitlines() == ["mganai: error: --workers must be at least 1, got 0"]


# --- issue 25: what a new user trips over ----------------------------------------------------------


def test_version_prints_the_package_version(capsys):
    import mganai

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"mganai {mganai.__version__}\n"


@pytest.mark.parametrize("flag", ["--round", "--roun", "--method", "--qui"])
def test_abbreviated_flags_are_refused_not_guessed(tmp_path, flag):
    code, stdout, stderr = _run(["run", *RUN[1:], flag, "6", "--out", str(tmp_path / "out")])
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines() == [f"mganai: error: unrecognized arguments: {flag} 6 (see 'mganai run --help')"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["run", "--bogus"], "mganai run --help"),
        (["compare", "a", "--bogus"], "mganai compare --help"),
        (["--bogus", "report", "a"], "mganai --help"),
    ],
)
def test_an_unknown_flag_points_to_the_help_of_the_command_it_follows(argv, hint):
    code, _, stderr = _run(argv)
    assert code == 2 and stderr.strip().splitlines() == [
        f"mganai: error: unrecognized arguments: --bogus (see '{hint}')"
    ]


@pytest.mark.parametrize("rounds", ["3", "5"])
def test_a_run_too_short_for_the_attack_is_refused_in_one_line(tmp_path, rounds):
    """attack.start_round is 5: rounds 1-5 feed no attack, so such a run would report 0.000 for every method."""
    out = tmp_path / "out"
    code, stdout, stderr = _run(["run", "--rounds", rounds, "--clients", "3", "--quiet", "--out", str(out)])
    assert code == 2 and stdout == "" and not out.exists()
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"mganai: error: fl.rounds ({rounds}) must be more than attack.start_round (5)")
    assert "at least 6 rounds" in line


def test_a_finished_run_directory_does_not_suggest_resume(basic_run):
    _, _, out = basic_run
    code, _, stderr = _run([*RUN, "--out", str(out)])
    assert code == 2 and "--overwrite" in stderr and "--resume" not in stderr and "finished run" in stderr


def test_flower_sim_has_no_engine_flag_and_refuses_resume_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["flower-sim", "--help"])
    help_text = capsys.readouterr().out
    assert "--engine {vmap,loop}" not in help_text and "--dropout" in help_text and "--max-update-norm" in help_text
    code, _, stderr = _run(["flower-sim", "--engine", "loop", "--out", str(tmp_path / "a")])
    assert code == 2 and "see 'mganai flower-sim --help'" in stderr
    for flag, value in (("--resume", str(tmp_path)), ("--checkpoint-every", "2")):
        code, _, stderr = _run(["flower-sim", flag, value, "--out", str(tmp_path / "b")])
        (line,) = stderr.strip().splitlines()
        assert code == 2 and line.startswith(f"mganai: error: {flag} is not available in flower-sim")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_quick_preset_runs_every_stage_in_seconds_and_says_it_is_a_smoke_run(tmp_path):
    out = tmp_path / "quick"
    code, stdout, stderr = _run(["run", "--quick", "--out", str(out)])
    assert code == 0, stderr
    m = _metrics(out)
    assert m["smoke_run"] is True and m["config"]["preset"] == "quick"
    assert m["config"]["fl"]["rounds"] == 6 and m["config"]["eval"]["oracle_epochs"] == 3
    assert set(m["methods"]) == set(ALL_METHODS)  # every method, so both FL traces ran
    stages = {"data_s", "oracle_s", "fl_and_passive_attacks_s", "fl_and_active_attack_s", "curves_s", "evaluation_s"}
    assert stages <= set(m["timing"])
    assert len(m["fl"]["active_test_accuracy_per_round"]) == 6
    for name in ALL_METHODS:
        assert (out / f"{name}.png").stat().st_size > 0
    assert (out / "curves.csv").read_text().count("\n") > len(ALL_METHODS)
    assert "smoke run (--quick)" in (out / "report.html").read_text()
    assert stdout.startswith("SMOKE RUN (--quick)")
    progress = [line for line in stderr.splitlines() if line.startswith("mganai: ")]
    for phase in ("data:", "oracle: training", "oracle: done", "FL + attacks: 6 rounds", "evaluation: done"):
        assert any(line.startswith(f"mganai: {phase}") for line in progress), phase
    code, _, stderr = _run(["run", "--quick", "--quiet", "--methods", "none", "--out", str(tmp_path / "q")])
    assert code == 0 and stderr == ""  # --quiet: no progress lines


def test_a_flag_overrides_the_quick_preset():
    from mganai.config import build_config

    cfg = build_config({"fl": {"rounds": 9}}, {"preset": "quick", "data.clients": 5})
    assert (cfg.data.clients, cfg.fl.rounds, cfg.eval.oracle_epochs) == (5, 9, 3)  # flag, file, preset
