"""`python -m m2rl_slime.sandbox` entry point."""

import sys

from .cli import main

sys.exit(main())
