"""Reports from a run's outputs: image grids, plots, the HTML page and multi-run comparisons.

Everything here reads metrics.json, curves.csv and saved PNGs only (never data or
attack internals), except `grids`, whose functions `audit.py` calls to draw them.
"""

from mganai.errors import ReportError
from mganai.report.html import render_report
from mganai.report.load import load_run

__all__ = ["ReportError", "load_run", "render_report"]
