"""The reward router's view of the domain registry: domain (or alias) -> verify function.

Every table here is derived from `m2rl_slime.domains.SPECS` (one `DomainSpec` per domain) when it is read,
so there is nothing to register here and nothing registers itself by import side effect. `VERIFIERS`,
`ALIASES`, `POOLED` and `DOMAINS` are kept as read-only views for callers of earlier versions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .._dotted import load_dotted
from ..domains import SPECS, alias_table, canonical_domain, domain_names, get_spec  # noqa: F401 (re-exported)

_VIEWS: dict[str, Callable[[], Any]] = {
    "DOMAINS": domain_names,
    "VERIFIERS": lambda: {name: spec.verifier for name, spec in SPECS.items()},
    "ALIASES": alias_table,
    "POOLED": lambda: frozenset(name for name, spec in SPECS.items() if spec.pooled),
}


def __getattr__(name: str) -> Any:
    if name in _VIEWS:
        return _VIEWS[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _load(path: str) -> Callable[..., Any]:
    return load_dotted(path)


def verifier_at(path: str) -> Callable[..., Any]:
    """The function at a verifier's dotted path, imported once per process."""
    return _load(path)


def get_verifier(domain: str) -> Callable[..., Any]:
    """The verify function of a domain (or alias), importing its module on first use.

    Raises:
        UnknownNameError: `domain` is neither a domain nor an alias.
        ConfigError: the spec's verifier path is not importable.
    """
    return _load(get_spec(domain).verifier)
