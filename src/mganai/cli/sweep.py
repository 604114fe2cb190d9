"""`mganai sweep`: one audit per setting of a grid, then one line per setting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mganai.cli.flags_to_config import config_from_args
from mganai.cli.out_dir import check_out
from mganai.config import load_toml


def cmd_sweep(args: argparse.Namespace) -> int:
    """Validate every setting of the grid before any runs, run them, print each one's privacy and utility."""
    from mganai.audit.sweep import SWEEP_METHODS, parse_vary, plan_sweep

    vary = parse_vary(args.vary)
    if args.methods is None and not (args.config and "methods" in load_toml(args.config).get("attack", {})):
        args.methods = ",".join(SWEEP_METHODS)
    base = config_from_args(args)
    out = Path(base.out)
    planned = plan_sweep(base, vary, out)  # every setting is validated before anything runs
    from mganai.device import resolve_device

    resolve_device(base.device)
    check_out(out, args.overwrite)
    from mganai.audit import run_audit
    from mganai.audit.sweep import run_sweep

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = run_sweep(planned, out, lambda cfg, where: run_audit(cfg, where), say)
    for name, m in results:
        d = m["defense"]
        eps = "-" if d.get("epsilon") is None else f"{d['epsilon']:.3g}"
        scores = " ".join(
            f"{k} advantage {v['identity_advantage']:.3f} joint {v['joint_success']:.3f}"
            for k, v in (m.get("methods") or {}).items()
        )
        print(f"{name:<32} eps {eps:>8}  FL {m['fl']['test_accuracy']:.3f}  {scores}")
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.png'} and {out / 'compare.html'}")
    return 0
