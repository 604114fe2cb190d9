"""`mganai run`: one audit, stopped cleanly by SIGINT/SIGTERM and continued with --resume."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from mganai.cli.flags_to_config import config_from_args
from mganai.cli.out_dir import check_out
from mganai.cli.stop_request import StopRequest
from mganai.cli.summary import summary_text
from mganai.config import build_config
from mganai.errors import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    """Audit with the flags' settings (or the interrupted run's), print the summary; 128+N if signal N stopped it."""
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0 (0: only on SIGINT/SIGTERM), got {args.checkpoint_every}")
    saved = None
    if args.resume is not None:
        cfg, saved = _resumed_config(args)
    else:
        cfg = config_from_args(args)
    from mganai.device import resolve_device

    resolve_device(cfg.device)  # a GPU asked for and missing: say so before anything is written
    if saved is None:
        check_out(Path(cfg.out), args.overwrite)
    from mganai.audit import RunControl, RunInterrupted, run_audit
    from mganai.checkpoint import FILENAME

    out = Path(cfg.out)
    if saved is None:
        (out / FILENAME).unlink(
            missing_ok=True
        )  # --overwrite: a stale checkpoint of an earlier run must not be resumed
    stop = StopRequest()
    control = RunControl(checkpoint_every=args.checkpoint_every, resume=saved, stop=stop)
    try:
        with stop.installed():
            metrics = run_audit(cfg, out, control=control)
    except RunInterrupted as exc:
        name = signal.Signals(exc.signum).name
        print(
            f"mganai: interrupted by {name} after {exc.where}; checkpoint saved, "
            f"continue with: mganai run --resume {out}",
            file=sys.stderr,
        )
        return 128 + exc.signum
    print(summary_text(metrics))
    print(f"wrote {out / 'metrics.json'} and {out / 'report.html'}")
    return 0


def _resumed_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The settings of the run to resume (from its checkpoint) and the checkpoint; flags may only repeat them."""
    from mganai.checkpoint import FILENAME, config_difference, corrupt, load
    from mganai.errors import CheckpointError

    out = Path(args.resume)
    if args.out is not None and Path(args.out) != out:
        raise ConfigError(f"--resume {out} and --out {args.out} name different directories; give only --resume")
    path = out / FILENAME
    if not path.is_file() and (out / "metrics.json").is_file():
        raise ConfigError(f"{out}: the run there has finished (metrics.json, no {FILENAME}); nothing to resume")
    if not path.is_file():
        raise ConfigError(f"{path} not found: nothing to resume (was the run started with --out {out}?)")
    saved = load(path)
    stored = saved.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(corrupt(path, "no settings"))
    stored = {k: v for k, v in stored.items() if k not in ("out", "quiet")}
    try:
        original = build_config(stored, {"out": str(out)})
    except ConfigError as exc:
        raise CheckpointError(corrupt(path, exc)) from None
    args.out = str(out)
    cfg = config_from_args(args, base=stored)
    # where and how fast, not what: run_audit checks the checkpoint's device itself; threads change no number
    ignore = ("out", "quiet", "device", "threads")
    diff = config_difference(
        {k: v for k, v in original.to_dict().items() if k not in ignore},
        {k: v for k, v in cfg.to_dict().items() if k not in ignore},
    )
    if diff:
        raise ConfigError(f"--resume {out}: {diff}; resume with the same settings, or start a new run in another --out")
    return cfg, saved
