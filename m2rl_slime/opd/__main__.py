"""`python -m m2rl_slime.opd {serve-teachers,wait-teachers}` (see m2rl_slime/opd/cli.py)."""

import sys

from .cli import main

sys.exit(main())
