"""`python -m m2rl_slime.agent {serve,score,tools}`."""

import sys

from .cli import main

sys.exit(main())
