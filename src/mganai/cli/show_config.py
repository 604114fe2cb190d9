"""`mganai config`: the settings a run would use, as a commented TOML file."""

from __future__ import annotations

import argparse

from mganai.cli.flags_to_config import config_from_args


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting with its comment, so the output is a file to edit."""
    from mganai.settings import settings_toml

    print(settings_toml(config_from_args(args)), end="")
    return 0
