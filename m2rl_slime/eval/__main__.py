"""``python -m m2rl_slime.eval`` (see `m2rl_slime.eval.cli`)."""

import sys

from .cli import main

sys.exit(main())
