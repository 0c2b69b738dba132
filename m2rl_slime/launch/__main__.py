"""``python -m m2rl_slime.launch``: see `m2rl_slime.launch.cli`."""

import sys

from .cli import main

sys.exit(main())
