"""Data problems as one-line errors, and notices about what a loader changed (resizing, missing classes)."""

from __future__ import annotations

import sys

from mganai.config import ConfigError


class DataError(ConfigError):
    """The data cannot be used as given (missing path, corrupt file, too few clients); one line naming the file.

    A `ConfigError`, so the command line prints it as `mganai: error: ...` and exits with 2.
    """


def notice(message: str) -> None:
    """Tell the user, on stderr, about something the loader did that they did not ask for."""
    print(f"mganai: note: {message}", file=sys.stderr)
