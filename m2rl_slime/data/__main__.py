"""``python -m m2rl_slime.data`` (see `m2rl_slime.data.cli`)."""

import sys

from .cli import main

sys.exit(main())
