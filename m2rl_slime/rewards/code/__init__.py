"""The `code` domain: run the answer's final code block on the row's unit tests (no slime hook of its own).

`verify` is the verifier (`m2rl_slime.rewards.code.verify`), `CodeConfig` its settings; test formats live in
`testcases`, output comparison in `compare`. Programs run in `m2rl_slime.sandbox`, which only executes.
"""

from .config import CodeConfig
from .verifier import CodeBlock, extract_code, verify

__all__ = ["CodeBlock", "CodeConfig", "extract_code", "verify"]
