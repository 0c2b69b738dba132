"""`m2rl_reward`: the reward router's settings (delivered through slime's `--custom-config-path`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..config import parse_dataclass
from ..domains import SPECS, canonical_domain
from ..errors import ConfigError
from .math_answer import MathConfig
from .mcq import McqConfig


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """Settings of the reward router and of each text verifier.

    Attributes:
        require_thinking: Grade only the text after the last `</think>`, and score 0 with reason
            `no_think_close` when it is missing (the paper's setting). If False, a response without the
            tag is graded whole.
        default_domain: Domain for samples whose metadata names none. None (the default) makes a
            missing domain a configuration error at the first sample.
        workers: Verifier worker processes; 0 = min(8, CPU count).
        deadline_s: Hard per-item deadline of a pooled verification; the worker is killed after it.
        worker_memory_mb: Address-space limit of each worker process (0 = none).
        max_response_chars: Longer graded texts score 0 with reason `parse_error` without being parsed.
        math: Math verifier settings. science: Science settings. if_ (YAML key `if`): instruction
            following settings. code: Code verifier and sandbox settings.
    """

    CONFIG_ALIASES: ClassVar[dict[str, str]] = {"if": "if_"}
    CONFIG_LAZY_TYPES: ClassVar[dict[str, str]] = {
        "if_": "m2rl_slime.rewards.instruction.IFConfig",
        "code": "m2rl_slime.rewards.code_tests.CodeConfig",
    }

    require_thinking: bool = True
    default_domain: str | None = None
    workers: int = 0
    deadline_s: float = 10.0
    worker_memory_mb: int = 4096
    max_response_chars: int = 400_000
    math: MathConfig = MathConfig()
    science: McqConfig = McqConfig()
    if_: Any = None
    code: Any = None

    def validate(self) -> None:
        if self.default_domain is not None:
            try:
                canonical_domain(self.default_domain)
            except ConfigError as exc:
                raise ConfigError(f"default_domain: {exc}") from None
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.deadline_s <= 0:
            raise ConfigError(f"deadline_s must be > 0, got {self.deadline_s}")
        if self.max_response_chars <= 0:
            raise ConfigError(f"max_response_chars must be > 0, got {self.max_response_chars}")

    @property
    def pool_workers(self) -> int:
        return self.workers or min(8, os.cpu_count() or 1)

    def for_domain(self, domain: str) -> Any:
        """The verifier config of a canonical domain: the field its `DomainSpec.config_field` names (None =
        that verifier's defaults)."""
        spec = SPECS.get(domain)
        return getattr(self, spec.config_field) if spec is not None and spec.config_field else None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "m2rl_reward") -> RewardConfig:
        return parse_dataclass(cls, data, where)
