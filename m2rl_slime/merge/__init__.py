"""Streaming, exact, resumable weight merging of RL experts into their SFT base (``python -m m2rl_slime.merge``).

Not a slime hook: the train-then-merge half of the study runs it between slime runs, on the HF exports of
the single-domain RL checkpoints. Methods: average, task arithmetic, TIES, DARE with TA or TIES, SCE (two
Select semantics), each computed per tensor in fp32 from the published formulas (docs/merge.md).

Example:
    >>> from m2rl_slime.merge import ExpertSpec, MergeConfig, run_merge
    >>> cfg = MergeConfig(method="ties", base="sft_hf", experts=(ExpertSpec("math", "math_hf"),),
    ...                   params={"density": 0.2})
    >>> report = run_merge(cfg, "merged_ties")  # doctest: +SKIP
"""

from __future__ import annotations

from .config import ExpertSpec, MergeConfig, MergeOptions, load_recipe
from .core import MergeReport, run_merge
from .methods import METHODS, MergeMethod, get_method

__all__ = [
    "METHODS",
    "ExpertSpec",
    "MergeConfig",
    "MergeMethod",
    "MergeOptions",
    "MergeReport",
    "get_method",
    "load_recipe",
    "run_merge",
]
