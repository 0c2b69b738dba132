"""Source name (the blend's ``dataset`` column) -> domain: an explicit, configurable table.

Matching is robust to the naming seen in the wild: the name is lower-cased, ``-``/spaces become ``_``,
configured prefixes (``nano_v3_sft_profiled_``) are stripped, then the name is looked up exactly, and
failing that the longest table key followed by ``_`` is used (``comp_coding_50tests`` -> ``comp_coding``,
``skywork_no_omni`` -> ``skywork``, ``gpqa_diamond_simple_agent`` -> ``gpqa``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ConfigError, UnknownNameError
from ..rewards.registry import DOMAINS

EXCLUDE = "exclude"

# Blend names (Nemotron-3-Nano RL blend, after prefix stripping) and the NeMo-Gym example names.
DEFAULT_SOURCES: dict[str, str] = {
    "dapo17k": "math",
    "dapo": "math",
    "skywork": "math",
    "math": "math",
    "aime": "math",
    "stem_mcqa": "science",
    "mcqa": "science",
    "gpqa": "science",
    "instruction_following": "if",
    "ifeval": "if",
    "ifbench": "if",
    "comp_coding": "code",
    "code_gen": "code",
    "taco": "code",
    "apps": "code",
    "code_contests": "code",
    "codeforces": "code",
    "workbench": "agent",
    "workplace_assistant": "agent",
    "structured_outputs": EXCLUDE,
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class SourceTable:
    """Resolves source names to a domain or `EXCLUDE`.

    Args:
        overrides: Entries added to / replacing `DEFAULT_SOURCES` (value: a domain or ``exclude``).
        strip_prefixes: Prefixes removed before matching.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None, strip_prefixes: Iterable[str] = ()):
        table = dict(DEFAULT_SOURCES)
        for key, value in (overrides or {}).items():
            value = _normalise(value)
            if value != EXCLUDE and value not in DOMAINS:
                raise ConfigError(f"sources.{key}: {value!r} is neither a domain ({', '.join(DOMAINS)}) nor exclude")
            table[_normalise(key)] = value
        self.table = table
        self.prefixes = tuple(_normalise(p) for p in strip_prefixes)
        self._by_length = sorted(table, key=len, reverse=True)

    def resolve(self, name: str) -> str:
        """Domain (or ``exclude``) of a source name.

        Raises:
            UnknownNameError: no table entry matches; the message lists the known names.
        """
        key = _normalise(name)
        for prefix in self.prefixes:
            if key.startswith(prefix) and len(key) > len(prefix):
                key = key[len(prefix) :]
                break
        if key in self.table:
            return self.table[key]
        for known in self._by_length:
            if key.startswith(known + "_"):
                return self.table[known]
        raise UnknownNameError("data source", name, self.table)


def lookup(row: Mapping[str, Any], dotted: str) -> Any:
    """``row["a"]["b"]`` for ``"a.b"``; None when any step is missing or not a mapping."""
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def row_source(row: Mapping[str, Any], columns: Iterable[str]) -> str | None:
    """The first non-empty string among the row's source `columns` (None when there is none)."""
    for column in columns:
        value = lookup(row, column)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
