"""Explicit registry of verifiers: canonical domain -> dotted path, plus the alias table.

Adding a domain is one line here; nothing registers itself by import side effect.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ..errors import UnknownNameError

DOMAINS = ("math", "code", "science", "if", "agent")

VERIFIERS: dict[str, str] = {
    "math": "m2rl_slime.rewards.math_answer.verify",
    "science": "m2rl_slime.rewards.mcq.verify",
    "if": "m2rl_slime.rewards.instruction.verify",
    "code": "m2rl_slime.rewards.code.verify",  # async: awaits a sandbox
    "agent": "m2rl_slime.agent.verifier.verify",
}

# M2RL's metadata["rm_type"] values and other names seen in the wild.
ALIASES: dict[str, str] = {
    "deepscaler": "math",
    "dapo": "math",
    "gpqa": "science",
    "mcqa": "science",
    "stem": "science",
    "ifevalg": "if",
    "ifeval": "if",
    "ifbench": "if",
    "instruction_following": "if",
    "unit_test": "code",
    "workbench": "agent",
    "workplace_assistant": "agent",
}

# Domains whose verifier is CPU-bound and pure: run in the worker pool with a hard deadline.
POOLED = frozenset({"math", "science", "if", "agent"})


def canonical_domain(name: object) -> str:
    """Map a domain name or alias (case-insensitive) to its canonical domain.

    Raises:
        UnknownNameError: `name` is neither a domain nor an alias.
    """
    if isinstance(name, str):
        key = name.strip().lower()
        if key in VERIFIERS:
            return key
        if key in ALIASES:
            return ALIASES[key]
    raise UnknownNameError("reward domain", name, [*VERIFIERS, *ALIASES])


def load_dotted(path: str) -> Any:
    """Import `pkg.mod.attr` and return `attr` (the same convention as slime's load_function)."""
    module_path, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_path), attr)


@lru_cache(maxsize=None)
def get_verifier(domain: str) -> Callable[..., Any]:
    """Return the verify function of a domain (or alias), importing its module on first use."""
    return load_dotted(VERIFIERS[canonical_domain(domain)])
