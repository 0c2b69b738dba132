"""Source name (the blend's ``dataset`` column) -> domain: an explicit, configurable table.

Matching is robust to the naming seen in the wild: the name is lower-cased, ``-``/spaces become ``_``,
configured prefixes (``nano_v3_sft_profiled_``) are stripped, then the name is looked up exactly, and
failing that the longest table key followed by ``_`` is used (``comp_coding_50tests`` -> ``comp_coding``,
``skywork_no_omni`` -> ``skywork``, ``gpqa_diamond_simple_agent`` -> ``gpqa``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..domains import SPECS
from ..errors import ConfigError, UnknownNameError

EXCLUDE = "exclude"

# Blend names of the Nemotron-3-Nano RL blend that no domain trains on.
EXCLUDED_SOURCES: tuple[str, ...] = ("structured_outputs",)


def default_sources() -> dict[str, str]:
    """Source name -> domain (or ``exclude``): every spec's `DomainSpec.sources`, plus `EXCLUDED_SOURCES`.

    The names are the blend's (after prefix stripping) and the NeMo-Gym example names.
    """
    table = {source: spec.name for spec in SPECS.values() for source in spec.sources}
    return table | dict.fromkeys(EXCLUDED_SOURCES, EXCLUDE)


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_SOURCES":  # a view of the registry, kept for callers of earlier versions
        return default_sources()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class SourceTable:
    """Resolves source names to a domain or `EXCLUDE`.

    Args:
        overrides: Entries added to / replacing `default_sources()` (value: a domain or ``exclude``).
        strip_prefixes: Prefixes removed before matching.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None, strip_prefixes: Iterable[str] = ()):
        table = default_sources()
        for key, value in (overrides or {}).items():
            value = _normalise(value)
            if value != EXCLUDE and value not in SPECS:
                raise ConfigError(f"sources.{key}: {value!r} is neither a domain ({', '.join(SPECS)}) nor exclude")
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
