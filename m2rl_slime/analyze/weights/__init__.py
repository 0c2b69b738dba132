"""Weight-shift footprints of RL experts relative to their SFT base (``python -m m2rl_slime.analyze weights``).

Not a slime hook: it reads the HF safetensors exports of the SFT model and the RL experts, streaming one
tensor at a time (the merge's reader), and writes Table 5 (changed-mask Jaccard per domain pair and weight
type, with honest random references), the shift cosines on the overlap (exact, and the paper's projected
one through a seeded SRHT), per-layer curves and Fig. 3. See docs/analysis.md.

Example:
    >>> from m2rl_slime.analyze.weights import WeightsOptions, run_weights
    >>> report = run_weights("sft_hf", [("math", "math_hf"), ("code", "code_hf")], "out",
    ...                      WeightsOptions(layers="17"))  # doctest: +SKIP
"""

from __future__ import annotations

from .analysis import WeightsReport, run_weights
from .config import WeightsOptions

__all__ = ["WeightsOptions", "WeightsReport", "run_weights"]
