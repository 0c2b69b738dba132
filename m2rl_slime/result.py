"""The one result type every verifier returns: a score in [0, 1], a reason code and details."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Reason(str, Enum):
    """Why a verifier gave its score. The value is what logs, metrics and JSON carry."""

    OK = "ok"  # answer correct / all constraints followed / all tests passed
    WRONG = "wrong"  # a gradable answer that is not correct
    NO_ANSWER = "no_answer"  # no final answer could be extracted
    NO_THINK_CLOSE = "no_think_close"  # thinking required but no closing </think>
    EMPTY_RESPONSE = "empty_response"  # nothing to grade after thinking was removed
    AMBIGUOUS = "ambiguous"  # several candidate answers (e.g. "\boxed{A, B}")
    TIMEOUT = "timeout"  # the verification (or the program under test) ran past its deadline
    PARSE_ERROR = "parse_error"  # the answer or gold could not be parsed
    BAD_LABEL = "bad_label"  # the row's label/metadata is malformed (a data bug)
    UNKNOWN_INSTRUCTION = "unknown_instruction"  # an IF instruction id or relation we do not know
    NO_CODE = "no_code"  # no fenced code block in the answer
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    SANDBOX_ERROR = "sandbox_error"  # the sandbox failed as infrastructure
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"  # circuit breaker open: sandbox down
    WORKER_CRASH = "worker_crash"  # the verifier process died (segfault, OOM kill)
    ABORTED = "aborted"  # the episode was aborted before it could be graded
    INTERNAL_ERROR = "internal_error"  # a bug in a verifier; logged with its traceback

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Result:
    """What a verifier concluded about one response.

    Attributes:
        score: The reward in [0, 1].
        reason: Why (see `Reason`).
        details: JSON-friendly diagnostics (extracted answer, per-test results, timings, ...).
    """

    score: float
    reason: Reason
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.reason, Reason):
            object.__setattr__(self, "reason", Reason(self.reason))
        score = float(self.score)
        if math.isnan(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"score must lie in [0, 1], got {self.score!r} (reason {self.reason.value})")
        object.__setattr__(self, "score", score)

    @classmethod
    def correct(cls, **details: Any) -> Result:
        return cls(1.0, Reason.OK, details)

    @classmethod
    def fail(cls, reason: Reason, **details: Any) -> Result:
        return cls(0.0, reason, details)

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "reason": self.reason.value, "details": dict(self.details)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        return cls(float(data["score"]), Reason(data["reason"]), dict(data.get("details") or {}))


def bounded(value: Any, *, chars: int = 300, items: int = 20) -> Any:
    """A JSON-safe copy of verifier details with every string cut to `chars` characters (and "...") and
    every mapping or list to its first `items` entries, at every depth; other objects become strings.
    What rollout logs and eval records keep of `Result.details`."""
    if isinstance(value, str):
        return value if len(value) <= chars else value[:chars] + "..."
    if isinstance(value, Mapping):
        return {str(k): bounded(v, chars=chars, items=items) for k, v in list(value.items())[:items]}
    if isinstance(value, (list, tuple)):
        return [bounded(v, chars=chars, items=items) for v in value[:items]]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return bounded(str(value), chars=chars, items=items)
