"""The `mganai` entry point: parse, call the command, turn every expected failure into one line and an exit code."""

from __future__ import annotations

import sys

from mganai.cli.flower_sim import cmd_flower_sim
from mganai.cli.parser import parse
from mganai.cli.report_and_compare import cmd_compare, cmd_report
from mganai.cli.run import cmd_run
from mganai.cli.show_config import cmd_config
from mganai.cli.sweep import cmd_sweep
from mganai.errors import MganaiError


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 2 for what the user can fix, 130 on Ctrl-C, 1 when outputs cannot be written."""
    args = parse(argv)
    try:
        commands = {  # looked up at each call, so a test can patch a command in this module
            "run": cmd_run,
            "flower-sim": cmd_flower_sim,
            "config": cmd_config,
            "report": cmd_report,
            "compare": cmd_compare,
            "sweep": cmd_sweep,
        }
        return commands[args.command](args)
    except MganaiError as exc:  # settings, data, checkpoints, run directories: one line, exit 2
        print(f"mganai: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mganai: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, a directory that vanished: every output is atomic, nothing is half-written
        print(f"mganai: error: cannot write the outputs: {exc}", file=sys.stderr)
        return 1
