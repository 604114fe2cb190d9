"""The `mganai` parser: one subcommand per task, one-line errors, flags spelled out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

from mganai import __version__
from mganai.cli.audit_flags import add_audit_flags


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line `mganai: error: ...` (exit 2) like every other error, and a flag
    must be spelled out (`--round 6` is an error, not `--rounds 6`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands: Mapping[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        print(f"mganai: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; an unknown flag is reported by the command it follows, so the hint names its help."""
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        words = sys.argv[1:] if argv is None else argv
        before_command = unknown[0] in words[: words.index(args.command)]
        owner = parser if before_command else parser.commands[args.command]
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _parser() -> _Parser:
    """The top-level parser with every subcommand, in the order `mganai --help` lists them."""
    p = _Parser(
        prog="mganai",
        description="Measure user-level privacy leakage in federated learning with the mGAN-AI attack.",
    )
    p.add_argument("--version", action="version", version=f"mganai {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    p.commands = sub.choices
    _add_run(sub)
    _add_flower_sim(sub)
    _add_config_and_sweep(sub)
    _add_report_and_compare(sub)
    return p


def _add_run(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`mganai run`: the audit flags plus checkpointing and resuming."""
    run = sub.add_parser(
        "run",
        help="simulate FedAvg, run the attack methods on the server, score them, write OUT/",
        description="Simulate FedAvg on a federated dataset with the attack watching from the server, "
        "score every method with an independent oracle, and write OUT/metrics.json and one grid PNG per method. "
        "Settings come from the defaults, then --config FILE, then these flags.",
    )
    add_audit_flags(run)
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="K",
        help="save OUT/checkpoint.pt every K rounds (default 0: only on SIGINT/SIGTERM)",
    )
    run.add_argument(
        "--resume", metavar="OUT", help="continue the interrupted run in OUT from OUT/checkpoint.pt (same settings)"
    )


def _add_flower_sim(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`mganai flower-sim`: the audit flags without --engine; checkpoint flags are accepted only to refuse them."""
    sim = sub.add_parser(
        "flower-sim",
        help="the same audit with FL run by Flower's simulation engine (needs mganai[flower])",
        description="Run the audit of `mganai run` inside Flower (pip install 'mganai[flower]'): a ServerApp with "
        "mganai's attack strategy and one virtual SuperNode per client in Flower's Ray simulation engine. "
        "Each ClientApp trains its client with the loop engine, so there is no --engine. "
        "Writes the same OUT/ as `mganai run`, with the same numbers as `mganai run --engine loop`.",
    )
    add_audit_flags(sim, engine=False)
    sim.add_argument(
        "--workers", type=int, default=2, help="ClientApps trained at once (Ray actors of 1 CPU each; default 2)"
    )
    sim.add_argument("--flower-logs", action="store_true", help="show Flower's own INFO logs")
    for flag in ("--checkpoint-every", "--resume"):
        sim.add_argument(
            flag,
            metavar="-",
            help="not available in flower-sim: a Flower simulation cannot be stopped and continued at a round "
            "here (use `mganai run` for long audits)",
        )


def _add_config_and_sweep(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`mganai config` and `mganai sweep`: the audit flags, and for sweep the grid to vary."""
    settings = sub.add_parser(
        "config",
        help="print every setting as a TOML file with its comment (with these flags applied)",
        description="Print the settings a run with these flags and --config FILE would use, as a TOML file with "
        "every key and what it does: `mganai config > audit.toml` gives a file to edit, `mganai config --quick` "
        "shows the quick preset. Keys only in TOML (the attack's schedule and weights, the evaluation) are here too.",
    )
    add_audit_flags(settings)
    sweep = sub.add_parser(
        "sweep",
        help="one audit per setting of a grid (noise levels, defenses, FL regimes) and the privacy/utility curves",
        description="Run one audit per combination of the --vary values (plus an undefended reference) into "
        "OUT/<setting>/, training the oracle once, then write OUT/sweep.csv, OUT/sweep.png and OUT/compare.html. "
        "Methods default to mganai-passive,class-gan. Example: --vary defense.name=central-dp,client-dp,local-dp "
        "--vary defense.dp_noise=0.01,0.03,0.1,0.3,1",
    )
    add_audit_flags(sweep)
    sweep.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="a setting (dotted key as in the TOML file) and its values; repeat for a grid",
    )


def _add_report_and_compare(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`mganai report` and `mganai compare`: they read finished runs, so no audit flags."""
    report = sub.add_parser(
        "report",
        help="re-render OUT/report.html from OUT/metrics.json and the saved images (no retraining)",
        description="Re-render OUT/report.html (and its plots) from a finished run's metrics.json, "
        "curves.csv and PNGs.",
    )
    report.add_argument("out", metavar="OUT", help="output directory of 'mganai run'")
    compare = sub.add_parser(
        "compare",
        help="put several runs (seeds, victims, defenses...) into one table and plot",
        description="Compare finished runs: prints one table and writes DIR/compare.html, compare.csv and compare.png.",
    )
    compare.add_argument("runs", nargs="+", metavar="OUT", help="output directories of 'mganai run'")
    compare.add_argument(
        "--out", default="runs/compare", metavar="DIR", help="where to write the comparison (default runs/compare)"
    )
