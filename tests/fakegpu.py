"""A fake GPU for CPU-only machines: finds every op where a device tensor meets a CPU tensor.

Tensors "on the GPU" are CPU tensors wrapped in a subclass that reports device `meta`
(`FAKE`). Every aten op on them is checked: a device tensor meeting a CPU tensor (other
than a 0-dim scalar, which CUDA accepts too) is recorded with the mganai source lines
that caused it, as is indexing a CPU tensor with a device index or putting device values
into a CPU tensor. PyTorch itself allows indexing a device tensor with CPU indices and
cross-device copies; so does this check.

`install()` patches torch process-wide (`Tensor.to`, the factories, `Tensor.numpy`):
run it in a subprocess of its own (`python tests/fakegpu.py OUT`), never inside pytest.
`python tests/fakegpu.py OUT` runs the tiny test audit with `--device cuda` mapped to the
fake GPU and prints a JSON summary.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_map

FAKE = torch.device("meta")
PROBLEMS: collections.Counter[tuple[str, str, str]] = collections.Counter()
DEVICE_OPS = [0]
_lock = threading.Lock()
_CROSS_DEVICE_OK = ("_to_copy", "copy_", "_copy_from", "_copy_from_and_resize", "lift_fresh", "set_")


def _where() -> str:
    frames = [f for f in traceback.extract_stack() if "/src/mganai/" in f.filename]
    return " <- ".join(f"{f.filename.split('/src/')[1]}:{f.lineno}" for f in reversed(frames[-4:])) or "?"


def _report(kind: str, func: Any) -> None:
    with _lock:
        PROBLEMS[(kind, str(func), _where())] += 1


class OnFakeGpu(torch.Tensor):
    """A CPU tensor (`elem`) that says it lives on the fake GPU."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor, requires_grad: bool = False) -> OnFakeGpu:
        r = torch.Tensor._make_wrapper_subclass(  # type: ignore[attr-defined]
            cls,
            elem.size(),
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            layout=elem.layout,
            device=FAKE,
            requires_grad=requires_grad,
        )
        r.elem = elem.detach() if isinstance(elem, torch.nn.Parameter) else elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        with _lock:
            DEVICE_OPS[0] += 1
        _check(func, args, kwargs)

        def unwrap(x: Any) -> Any:
            if isinstance(x, OnFakeGpu):
                return x.elem
            return torch.device("cpu") if isinstance(x, torch.device) and x.type == "meta" else x

        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
        to_device = kwargs.get("device") if func is torch.ops.aten._to_copy.default else None
        if to_device is not None and torch.device(to_device).type == "cpu":
            return out  # .cpu(): leaves the fake GPU
        if func._schema.is_mutable and args:
            return args[0] if isinstance(args[0], OnFakeGpu) else out
        return tree_map(lambda x: OnFakeGpu(x) if type(x) is torch.Tensor else x, out)


def _on_cpu(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and not isinstance(t, OnFakeGpu) and t.device.type == "cpu"


def _check(func: Any, args: Any, kwargs: Any) -> None:
    name = func.overloadpacket.__name__
    if name in _CROSS_DEVICE_OK:
        return
    if name == "index":
        if not isinstance(args[0], OnFakeGpu) and any(isinstance(i, OnFakeGpu) for i in args[1] if i is not None):
            _report("CPU tensor indexed with a device index", func)
        return
    if name in ("index_put", "index_put_", "_index_put_impl_", "_unsafe_index_put"):
        target, indices, values = args[0], args[1], args[2]
        if not isinstance(target, OnFakeGpu):
            if isinstance(values, OnFakeGpu) or any(isinstance(i, OnFakeGpu) for i in indices if i is not None):
                _report("device values or indices put into a CPU tensor", func)
        elif _on_cpu(values) and values.dim() > 0:
            _report("CPU values put into a device tensor", func)
        return
    tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
    if any(isinstance(t, OnFakeGpu) for t in tensors) and any(_on_cpu(t) and t.dim() > 0 for t in tensors):
        _report("device and CPU tensors in one op", func)


def _to_fake(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, list[Any], dict[str, Any]]:
    """Whether a .to() call targets the fake GPU, and its arguments with the CPU in its place."""
    fake, new = False, []
    for a in args:
        if (isinstance(a, torch.device) and a.type == "meta") or a == "meta":
            fake = True
            new.append(torch.device("cpu"))
        elif isinstance(a, OnFakeGpu):
            fake = True
            new.append(a.elem)
        else:
            new.append(a)
    kw = dict(kwargs)
    if kw.get("device") is not None and torch.device(kw["device"]).type == "meta":
        fake, kw["device"] = True, torch.device("cpu")
    return fake, new, kw


def install() -> None:
    """Make `.to(FAKE)`, the factories' `device=FAKE` and `.numpy()` go through the fake GPU."""
    original_to, original_numpy = torch.Tensor.to, torch.Tensor.numpy

    def to(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        fake, new, kw = _to_fake(args, kwargs)
        if isinstance(self, OnFakeGpu):
            if fake:  # stays on the fake GPU (maybe a dtype change)
                return OnFakeGpu(original_to(self.elem, *new, **kw)) if (new or kw) else self
            return original_to(self, *args, **kwargs)
        if not fake:
            return original_to(self, *args, **kwargs)
        return OnFakeGpu(original_to(self, *new, **kw).detach())

    def numpy(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, OnFakeGpu):
            _report(".numpy() on a device tensor", "numpy")
            return original_numpy(self.elem, *args, **kwargs)
        return original_numpy(self, *args, **kwargs)

    def factory(original: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("device") is not None and torch.device(kwargs["device"]).type == "meta":
                kwargs["device"] = torch.device("cpu")
                return OnFakeGpu(original(*args, **kwargs))
            return original(*args, **kwargs)

        return make

    torch.Tensor.to, torch.Tensor.numpy = to, numpy  # type: ignore[method-assign]
    for name in ("empty", "full", "zeros", "ones", "arange", "tensor", "randn", "rand", "randint", "randperm"):
        setattr(torch, name, factory(getattr(torch, name)))


def main(out: str) -> None:
    install()
    import tomllib

    import mganai.audit
    import mganai.audit.run
    import mganai.device
    from mganai.config import build_config
    from tinyrun import TINY_AUDIT

    def resolve(name: str) -> torch.device:
        return torch.device("cpu") if name == "cpu" else FAKE

    mganai.device.resolve_device = mganai.audit.run.resolve_device = resolve  # type: ignore[assignment]
    canary = OnFakeGpu(torch.ones(3)) + torch.ones(3)  # the check must see this one
    del canary
    caught = sum(PROBLEMS.values())
    PROBLEMS.clear()
    # threads 2: the side-by-side path, with the GANs on threads of their own
    cfg = build_config(tomllib.loads(TINY_AUDIT), {"device": "cuda", "out": out, "quiet": True, "threads": 2})
    metrics = mganai.audit.run_audit(cfg, Path(out))
    print(
        json.dumps(
            {
                "canary_caught": caught,
                "device_ops": DEVICE_OPS[0],
                "device": metrics["timing"]["device"],
                "problems": [f"{n} x {kind}: {func} at {where}" for (kind, func, where), n in PROBLEMS.items()],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
