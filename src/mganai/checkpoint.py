"""Checkpoints: the whole state of an interrupted audit in OUT/checkpoint.pt, saved atomically, loaded safely.

What is saved is plain data only (tensors, numbers, strings, lists, tuples, dicts),
so `torch.load(..., weights_only=True)` can read it: a tampered file can make
loading fail, never run code.

Stateful objects (the simulator, the representative bank, every GAN, the curve
probe, the active attack's isolation, the oracle) define `state_dict()` /
`load_state_dict()`, which `capture` and `restore` call. Most are `Checkpointed`:
they declare which attributes are state (saved: modules and optimisers by their
state dicts, `torch.Generator`s by their states, tensors, numbers and containers of
them as they are) and which are structure (configs, references to the model, other
observers: rebuilt from the config, never saved). Every attribute is one or the
other, and a test fails when an object gains an attribute it declares as neither,
so new state cannot be dropped from a checkpoint silently. An object without a
`state_dict` is captured by a walk over every attribute that is state.
"""

from __future__ import annotations

import io
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mganai.errors import CheckpointError
from mganai.io import atomic_write_bytes

FORMAT = "mganai-checkpoint"
VERSION = 1
FILENAME = "checkpoint.pt"

_PRIMITIVE = (bool, int, float, str, type(None))


class _Skip(Exception):
    """An attribute that is structure, not state."""


def _encode(value: Any) -> Any:
    """A value as plain data, or _Skip if it is not state."""
    if isinstance(value, _PRIMITIVE):
        return value
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, torch.Generator):
        return {"__kind__": "generator", "state": value.get_state()}
    if isinstance(value, nn.Module):
        return {"__kind__": "module", "state": value.state_dict()}
    if isinstance(value, torch.optim.Optimizer):
        return {"__kind__": "optimizer", "state": value.state_dict()}
    if isinstance(value, deque):
        return {"__kind__": "deque", "maxlen": value.maxlen, "items": [_encode(v) for v in value]}
    if isinstance(value, tuple):
        return tuple(_encode(v) for v in value)
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {k: _encode(v) for k, v in value.items()}
    raise _Skip


class Checkpointed:
    """An object whose checkpointed state is declared: `STATE` is saved and restored, `STRUCTURE` is rebuilt
    from the config and never saved. Every attribute of an instance is in one of the two."""

    STATE: ClassVar[tuple[str, ...]] = ()
    STRUCTURE: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        """Every `STATE` attribute as plain data."""
        state = {}
        for name in self.STATE:
            try:
                state[name] = _encode(getattr(self, name))
            except _Skip:
                raise TypeError(f"{type(self).__name__}.{name} cannot be saved in a checkpoint") from None
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a `state_dict` back (modules, optimisers and generators are loaded in place)."""
        if set(state) != set(self.STATE):
            raise KeyError(f"{type(self).__name__}: the checkpoint holds {sorted(state)}, expected {list(self.STATE)}")
        for name in self.STATE:
            setattr(self, name, _decode(getattr(self, name), state[name]))


def capture(obj: Any) -> dict[str, Any]:
    """The state of an object: its `state_dict()` if it has one, else every attribute that is state."""
    if hasattr(obj, "state_dict") and not isinstance(obj, (nn.Module, torch.optim.Optimizer)):
        return {"__kind__": "custom", "state": obj.state_dict()}
    state = {}
    for name, value in vars(obj).items():
        try:
            state[name] = _encode(value)
        except _Skip:
            continue
    return {"__kind__": "attributes", "state": state}


def _decode(current: Any, saved: Any) -> Any:
    """The saved value, loaded into the live object where one exists (modules, optimisers, generators)."""
    kind = saved.get("__kind__") if isinstance(saved, dict) else None
    if kind == "module":
        if not isinstance(current, nn.Module):
            raise TypeError(f"expected a module, found {type(current).__name__}")
        current.load_state_dict(saved["state"])
        return current
    if kind == "optimizer":
        if not isinstance(current, torch.optim.Optimizer):
            raise TypeError(f"expected an optimiser, found {type(current).__name__}")
        current.load_state_dict(saved["state"])
        return current
    if kind == "generator":
        gen = current if isinstance(current, torch.Generator) else torch.Generator()
        gen.set_state(saved["state"])
        return gen
    if kind == "deque":
        return deque((_decode(None, v) for v in saved["items"]), maxlen=saved["maxlen"])
    if isinstance(saved, (tuple, list)):
        live = current if isinstance(current, (tuple, list)) and len(current) == len(saved) else [None] * len(saved)
        items = [_decode(c, v) for c, v in zip(live, saved)]
        return tuple(items) if isinstance(saved, tuple) else items
    if isinstance(saved, dict):
        by_key = current if isinstance(current, dict) else {}
        return {k: _decode(by_key.get(k), v) for k, v in saved.items()}
    if isinstance(saved, Tensor):
        return saved.clone()
    return saved


def restore(obj: Any, state: dict[str, Any]) -> None:
    """Put a `capture`d state back into an object of the same kind, built from the same config."""
    if state.get("__kind__") == "custom":
        obj.load_state_dict(state["state"])
        return
    if state.get("__kind__") != "attributes":
        raise ValueError("not a captured object state")
    for name, saved in state["state"].items():
        if not hasattr(obj, name):
            raise KeyError(f"{type(obj).__name__} has no attribute {name!r}")
        setattr(obj, name, _decode(getattr(obj, name), saved))


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a kill during the write leaves the previous one intact)."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; anything wrong with it is a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path} not found: nothing to resume")
    try:
        payload = torch.load(path, map_location=_saved_device_if_here, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, foreign pickle, forbidden global: all the same to the user
        raise CheckpointError(corrupt(path, exc)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(corrupt(path, "no mganai header"))
    if payload.get("version") != VERSION:
        raise CheckpointError(corrupt(path, f"version {payload.get('version')!r}, this mganai reads {VERSION}"))
    return payload


def _saved_device_if_here(storage: Any, location: str) -> Any:
    """Tensors go back to the GPU they were saved from (the audit checks it is the run's device); where that GPU
    does not exist, to the CPU, so the file can still be read and the mismatch named."""
    if location.startswith("cuda") and torch.cuda.is_available():
        index = int(location.partition(":")[2] or 0)
        if index < torch.cuda.device_count():
            return storage.cuda(index)
    return storage


_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def corrupt(path: Path, why: Any) -> str:
    """The one line for a checkpoint that cannot be used, with the loader's reason cut to its first sentence."""
    lines = [line.strip() for line in str(why).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_BOILERPLATE)]
    reason = (useful or lines or [type(why).__name__])[0].split(". ")[0].rstrip(".")
    if lines and lines[0].startswith("Weights only load failed"):
        reason = f"refused by the weights-only loader: {reason}"
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return f"checkpoint {path} is corrupt or not an mganai checkpoint ({reason})"


def config_difference(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> str | None:
    """The first setting (dotted key) whose value differs between two config dicts, with both values."""
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff = config_difference(a, b, f"{prefix}{key}.")
            if diff:
                return diff
        elif a != b:
            return f"{prefix}{key} is {b!r} now but {a!r} in the checkpoint"
    return None
