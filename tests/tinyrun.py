"""What several test modules share: a tiny audit config (seconds, not minutes) and an in-process CLI call."""

from __future__ import annotations

import contextlib
import io

from mganai.cli import main

# Every method runs, on 3 clients for 4 rounds with minimal attack budgets; curves every 2 rounds.
TINY_AUDIT = """
seed = 3
[data]
clients = 3
[fl]
rounds = 4
batch_size = 32
[attack]
victim = 1
start_round = 1
reps_per_client = 4
inversion_steps = 3
gan_steps_per_round = 2
gan_final_steps = 2
gan_batch = 8
match_batch = 2
[eval]
samples_per_class = 2
oracle_epochs = 1
curve_every = 2
curve_samples_per_class = 2
"""


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`mganai ARGV` in this process: exit code, stdout, stderr (argparse's exits included)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
