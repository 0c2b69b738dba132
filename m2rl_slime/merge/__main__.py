"""``python -m m2rl_slime.merge``."""

import sys

from .cli import main

sys.exit(main())
