"""`python -m mganai.cli` is the same as the `mganai` command."""

import sys

from mganai.cli.entry import main

sys.exit(main())
