"""``python -m m2rl_slime.data`` (see `m2rl_slime.data.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":  # guarded: prepare-sft's worker processes import the main module
    sys.exit(main())
