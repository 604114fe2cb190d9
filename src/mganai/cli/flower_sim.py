"""`mganai flower-sim`: the audit with FL run by Flower's simulation engine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mganai.cli.flags_to_config import config_from_args
from mganai.cli.out_dir import check_out
from mganai.cli.summary import summary_text
from mganai.errors import ConfigError


def cmd_flower_sim(args: argparse.Namespace) -> int:
    """Check everything Flower cannot tell us early (flags, defense, device, OUT), then simulate; 1 if Flower fails."""
    for flag, value in (("--checkpoint-every", args.checkpoint_every), ("--resume", args.resume)):
        if value is not None:
            raise ConfigError(
                f"{flag} is not available in flower-sim: a Flower simulation cannot be stopped and continued at a "
                "round here; use 'mganai run' (same numbers as flower-sim with --engine loop) for long audits"
            )
    cfg = config_from_args(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    from mganai.defenses import DEFENSES

    if DEFENSES[cfg.defense.name].flower is None:
        raise ConfigError(
            f"defense {cfg.defense.name} has no Flower implementation to audit; run it with 'mganai run' "
            f"(Flower path: {', '.join(d.name for d in DEFENSES.values() if d.flower)})"
        )
    from mganai.device import resolve_device

    resolve_device(cfg.device)
    check_out(Path(cfg.out), args.overwrite)
    from mganai.flower import FLOWER_MISSING, flower_available

    if not flower_available():
        raise ConfigError(FLOWER_MISSING)
    from mganai.flower.app import run_flower_simulation

    out = Path(cfg.out)
    try:
        metrics = run_flower_simulation(cfg, workers=args.workers, verbose=args.flower_logs)
    except RuntimeError as exc:  # Flower wraps ServerApp/Ray failures in RuntimeError; its log shows the details
        print(f"mganai: error: the Flower simulation failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Flower's ServerApp thread is not a daemon and would keep the process alive until its
        # round times out; outputs are written atomically, so leaving at once is safe.
        print("mganai: interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    print(summary_text(metrics))
    print(f"wrote {out / 'metrics.json'} and {out / 'report.html'}")
    return 0
