"""`python -m mganai` is the same as the `mganai` command."""

import sys

from mganai.cli import main

sys.exit(main())
