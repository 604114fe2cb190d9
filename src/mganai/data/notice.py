"""Notices about what a loader changed that the user did not ask for (resizing, missing classes)."""

from __future__ import annotations

import sys


def notice(message: str) -> None:
    """Tell the user, on stderr, about something the loader did that they did not ask for."""
    print(f"mganai: note: {message}", file=sys.stderr)
