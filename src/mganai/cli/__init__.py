"""The command line: parse, call, print. Errors are one line on stderr and a non-zero exit.

`main` is the `mganai` console script; the modules here are the parser, the settings flags, the summary and
one module per command family.
"""

from mganai.cli.entry import main
from mganai.cli.flags_to_config import FLAG_KEYS, config_from_args
from mganai.cli.out_dir import check_out
from mganai.cli.parser import parse
from mganai.cli.summary import SUMMARY_KEYS, summary_text, threat_line

__all__ = ["FLAG_KEYS", "SUMMARY_KEYS", "check_out", "config_from_args", "main", "parse", "summary_text", "threat_line"]
