"""What can go wrong for a user, as one exception family: every message is one line.

`MganaiError` is the base the command line maps to `mganai: error: ...` and exit
status 2; the kinds are siblings, so a module raises its own kind without importing
another's module (data loaders and the device check need not import `config`).
"""

from __future__ import annotations


class MganaiError(Exception):
    """A problem the user can fix (a setting, a file, a directory); the message is one line."""


class ConfigError(MganaiError):
    """A setting is missing, unknown or out of range; the message names the key and what is allowed."""


class DataError(MganaiError):
    """The data cannot be used as given (missing path, corrupt file, too few clients); the message names the file."""


class CheckpointError(MganaiError):
    """A checkpoint that cannot be used (corrupt, not ours, another config)."""


class ReportError(MganaiError):
    """A run directory is missing or incomplete; the message names the file."""
