"""m2rl-slime: multi-domain RLVR (mix or merge) as plugins for an unmodified slime deployment."""

__version__ = "0.1.0"
