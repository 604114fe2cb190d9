"""Where an audit computes: --device auto picks CUDA when torch sees it, a missing GPU is a one-line error.

There is no GPU here: these tests check the choice and the errors, (with CUDA faked
as present) that the deterministic mode a GPU run needs is set up, and (on a fake GPU,
`fakegpu.py`) that no op of an audit mixes the GPU's tensors with the CPU's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mganai.config import ConfigError, build_config
from mganai.device import resolve_device, set_determinism
from tinyrun import run_cli


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_auto_is_cuda_when_torch_sees_a_gpu_else_cpu(monkeypatch, no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    # 'cuda' is named as the GPU it means, so a checkpoint of an auto run matches a resume with --device cuda:1
    assert resolve_device("auto") == resolve_device("cuda") == resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_a_gpu_that_is_not_there_is_refused(no_cuda):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_a_gpu_index_beyond_the_machine_is_refused(one_gpu):
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="has 1 CUDA GPU"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("name", ["gpu", "mps", "cuda:x", ""])
def test_unknown_device_names_are_refused_by_the_config(name):
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        build_config(overrides={"device": name})
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_cuda_runs_deterministic_kernels_where_torch_has_them(one_gpu, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        set_determinism(torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # cuBLAS is deterministic only with it
        # grid sampling and bilinear resizing have no deterministic CUDA backward: warn, do not fail
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not torch.backends.cudnn.allow_tf32  # TF32 would round far more than the CPU
        set_determinism(torch.device("cpu"))
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.allow_tf32 = True


def test_run_on_a_missing_gpu_is_one_line_and_writes_nothing(no_cuda, tmp_path):
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["run", "--device", "cuda", "--rounds", "1", "--clients", "2", "--methods", "none", "--out", str(out)]
    )
    assert code == 2 and "Traceback" not in err
    assert err.strip() == "mganai: error: device 'cuda': torch sees no CUDA GPU here (use --device cpu or auto)"
    assert not out.exists()


def test_the_run_says_where_it_computed(no_cuda, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["run", "--rounds", "1", "--clients", "2", "--methods", "none", "--quiet", "--out", str(out)]
    )
    torch.use_deterministic_algorithms(False)
    assert code == 0, err
    assert " on cpu, peak memory" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["device"] == "auto" and metrics["timing"]["device"] == "cpu"
    assert "computed on</td><td>cpu" in (out / "report.html").read_text()


@pytest.mark.subprocess
def test_a_whole_audit_on_a_fake_gpu_never_mixes_devices(tmp_path):
    """Every op of a tiny audit (both traces side by side, GANs on threads, curves, outputs) on a fake GPU that
    flags any tensor left on the CPU where the GPU's are (tests/fakegpu.py; a subprocess: it patches torch)."""
    out = tmp_path / "out"
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(tests / "fakegpu.py"), str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["canary_caught"] == 1  # the check sees a planted CPU/device mix
    assert report["device"] == "meta" and report["device_ops"] > 10_000  # the work did run on the fake GPU
    assert report["problems"] == []
    assert {"metrics.json", "mganai-passive.png", "mganai-active.png", "curves.csv"} <= {p.name for p in out.iterdir()}
