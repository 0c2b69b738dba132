"""Mechanism analyses of the study's models and runs (``python -m m2rl_slime.analyze``).

Not a slime hook: these commands read what the study produced (HF checkpoints, eval outputs, TensorBoard
runs) or query servers of the trained models, and write JSON/CSV plus figures regenerated from that JSON.
Subcommands are listed in `m2rl_slime.analyze.cli.SUBCOMMANDS`.
"""
