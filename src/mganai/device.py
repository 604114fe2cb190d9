"""Where an audit computes: a CUDA GPU when torch sees one ("auto"), else the CPU.

The heavy work (FL training, the update inversion, the GANs, the oracle's training)
runs on this device; data loading, metrics and images stay on the CPU. The attack's
and FL's random draws come from CPU generators and are moved to the device, so they
are the same wherever a run computes (only the oracle's dropout uses the device's
own generator); results still differ across devices by float rounding.

On the CPU every computation runs on one thread (torch's intra-op threads spin-wait
and slow a run down many times when another process takes a core; one thread was
also faster idle, docs/experiments.md 2026-12-03); a run uses several cores by
computing independent work at once (`cpu_workers`: both FL traces, the passive
trace's GANs), which gives the same numbers as doing it one after another.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

from mganai.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; any other name must be a device torch has here."""
    if name == "auto":
        return _indexed(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):  # e.g. mps: no float64, which the update screening needs
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: torch sees no CUDA GPU here (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return _indexed(device)


def _indexed(device: torch.device) -> torch.device:
    """'cuda' as the GPU it means (cuda:N), so a run and its checkpoint name the same GPU the same way."""
    if device.type == "cuda" and device.index is None:
        # torch's stubs type `device.index` as int; it is None for a bare "cuda".
        return torch.device("cuda", torch.cuda.current_device())  # type: ignore[unreachable]
    return device


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's parameters (cpu for a module without any)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def set_determinism(device: torch.device | None = None) -> None:
    """Same seed, same numbers: deterministic kernels and no denormal slow paths.

    On CUDA, cuBLAS needs a fixed workspace to be deterministic (set here unless the
    user set it), TF32 is off (it would round far more than the CPU does), and a few
    kernels (grid sampling, bilinear resizing, the oracle's adaptive pooling) have no
    deterministic backward: torch warns about those instead of failing.
    """
    cuda = device is not None and device.type == "cuda"
    if cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=cuda)
    torch.set_flush_denormal(True)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at most OMP_NUM_THREADS when that is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return max(1, min(cores, int(omp))) if omp.isdigit() and int(omp) > 0 else cores


def cpu_workers(threads: int) -> int:
    """How many independent computations a run does at once: `threads` (the setting), or 0 -> `usable_cores`."""
    return threads if threads > 0 else usable_cores()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch computes on one intra-op thread in this thread (restored afterwards: a library caller keeps its own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
