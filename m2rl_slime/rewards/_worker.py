"""Entry point of a verifier worker process: `python -m m2rl_slime.rewards._worker FD MEMORY_MB [DOMAIN ...]`."""

import sys

from .pool_worker import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]), tuple(sys.argv[3:]), int(sys.argv[2]))
