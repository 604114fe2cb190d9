"""`mganai report` and `mganai compare`: commands that read finished runs and train nothing."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render one run's report.html from its saved metrics and images."""
    from mganai.report import render_report

    print(f"wrote {render_report(args.out)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """One table of several runs, printed and written as compare.html/csv/png."""
    from mganai.report.compare import text_table, write_comparison

    cmp, path = write_comparison(args.runs, args.out)
    print(text_table(cmp))
    print(f"wrote {path}")
    return 0
