"""The output directory check every writing command makes before any work starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mganai.errors import ConfigError


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new run into a directory that already holds something, unless told to."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    try:  # a file made and removed at once: finds read-only disks and directories before hours of work, even as root
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write in {existing} ({exc.strerror or exc})") from None
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        from mganai.checkpoint import FILENAME

        if (out / FILENAME).is_file():
            hint = f"or --resume {out} to continue the interrupted run there"
        elif (out / "metrics.json").is_file():
            hint = "or another --out (a finished run is there)"
        else:
            hint = "or another --out"
        raise ConfigError(f"--out {out} exists and is not empty; pass --overwrite to write over it, {hint}")
