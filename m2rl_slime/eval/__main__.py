"""``python -m m2rl_slime.eval``."""

import sys

from .cli import main

sys.exit(main())
