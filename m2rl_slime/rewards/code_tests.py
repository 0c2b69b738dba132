"""Deprecated alias of `m2rl_slime.rewards.code` (the code verifier's old module path), kept for one release."""

import warnings

from .code import CodeBlock, CodeConfig, extract_code, verify

warnings.warn(
    "m2rl_slime.rewards.code_tests is deprecated: use m2rl_slime.rewards.code (verifier path m2rl_slime.rewards.code.verify)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["CodeBlock", "CodeConfig", "extract_code", "verify"]
