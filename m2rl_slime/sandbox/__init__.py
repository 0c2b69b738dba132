"""Code sandbox for the `code` reward (no slime hook of its own; used by `m2rl_slime.rewards.code`).

One wire format, SandboxFusion's `/run_code`, and three pieces: the embedded executor (`local`, run in
a private server process started on first use, `embedded`), a server with SandboxFusion's API
(`python -m m2rl_slime.sandbox serve`), and an async client for ours or a real SandboxFusion fleet
(`client`). `get_sandbox(config)` returns the process-wide backend for a `CodeConfig`.
"""

from .base import CommandResult, RunResult, RunSpec, Sandbox, SandboxUnavailableError
from .registry import BACKENDS, get_sandbox, shutdown_all

__all__ = [
    "BACKENDS",
    "CommandResult",
    "RunResult",
    "RunSpec",
    "Sandbox",
    "SandboxUnavailableError",
    "get_sandbox",
    "shutdown_all",
]
