"""``python -m m2rl_slime.analyze`` (see `m2rl_slime.analyze.cli`)."""

import sys

from .cli import main

sys.exit(main())
