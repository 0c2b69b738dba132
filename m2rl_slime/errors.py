"""The one exception hierarchy of m2rl_slime.

Every error names the offending input (domain, key, file:line, tensor, URL) and, where there is a
fixed set of valid values, lists them.
"""

from __future__ import annotations

from collections.abc import Iterable


class M2RLError(Exception):
    """Base class of every error raised on purpose by m2rl_slime."""


class ConfigError(M2RLError):
    """A recipe, plugin setting or command-line value is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """An unknown domain, method, backend or instruction name was requested."""

    def __init__(self, kind: str, name: object, known: Iterable[str]):
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return self.args[0]


class LabelError(M2RLError):
    """A dataset row or a sample's label/metadata is malformed (a data bug, not a wrong answer)."""


class SandboxError(M2RLError):
    """The code sandbox failed as infrastructure (unreachable, 5xx, protocol error)."""


class TeacherError(M2RLError):
    """A distillation teacher could not be reached or returned unusable log-probs."""


class ServerError(M2RLError):
    """An inference server (SGLang, OpenAI-compatible) rejected a request or stayed unreachable."""


class UnavailableError(M2RLError):
    """A component (a scorer, an episode driver) cannot run in this installation or with these settings."""
