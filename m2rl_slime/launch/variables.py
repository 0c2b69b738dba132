"""Recipe variables: ``${NAME}`` and ``${NAME:-default}`` references, resolved from --set, the environment
and declared defaults.

A variable must be declared in a recipe's ``variables:`` section (or be one of the launcher's built-ins,
`BUILTINS`) before it is used, so a typo such as ``${DATA_DRI}`` is an error, never an empty path.
Precedence, highest first: ``--set NAME=value``, the environment, the built-in value the launcher computes,
the declared default (which may itself reference other variables), the inline ``:-default`` of the
reference. A declared default of ``null`` marks the variable required. Only upper-case names are
variables; anything else inside ``${...}`` (for instance OmegaConf's ``${oc.env:X}``) is left verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import ConfigError

# ``${NAME}`` or ``${NAME:-default}``: group 1 is the name, group 2 the inline default (None when absent).
REFERENCE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")

# Variables every recipe has, with the launcher's defaults; a recipe may redeclare them with its own default.
BUILTINS: dict[str, str | None] = {
    "NNODES": "1",
    "NODE_RANK": "0",
    "MASTER_ADDR": "127.0.0.1",
    "GPUS_PER_NODE": "8",
    "RAY_PORT": "6379",
    "RAY_DASHBOARD_PORT": "8265",
    "HAS_NVLINK": "auto",
    "SLIME_DIR": "/root/slime",
    "MEGATRON_DIR": "/root/Megatron-LM",
    "M2RL_DIR": None,  # computed by the launcher (the checkout holding m2rl_slime)
}


@dataclass(frozen=True, slots=True)
class VariableScope:
    """Everything needed to resolve references: declarations and the values that override them.

    Attributes:
        declared: name -> default template (None = required), merged over `BUILTINS`.
        overrides: values from ``--set NAME=value`` (highest precedence).
        environ: the process environment (only declared names are read).
        computed: values the launcher computes (e.g. ``M2RL_DIR``), below the environment.
        where: a description of the recipe for error messages.
    """

    declared: Mapping[str, str | None]
    overrides: Mapping[str, str]
    environ: Mapping[str, str]
    computed: Mapping[str, str]
    where: str


def references(text: str) -> list[str]:
    """Names referenced by ``${NAME}`` / ``${NAME:-default}`` in `text`, in order."""
    return [m.group(1) for m in REFERENCE.finditer(text)]


class Resolver:
    """Resolves variable references with memoisation and cycle detection."""

    def __init__(self, scope: VariableScope):
        self._scope = scope
        self._values: dict[str, str | None] = {}
        self._stack: list[str] = []

    def value(self, name: str, used_at: str) -> str | None:
        """The value of `name`, or None when it is declared required and nothing sets it."""
        scope = self._scope
        if name not in scope.declared:
            known = ", ".join(sorted(scope.declared))
            raise ConfigError(
                f"{used_at} uses undeclared variable ${{{name}}}; declare it under `variables:` (declared: {known})"
            )
        if name in self._values:
            return self._values[name]
        if name in self._stack:
            cycle = " -> ".join([*self._stack[self._stack.index(name) :], name])
            raise ConfigError(f"{scope.where}: variable defaults form a cycle: {cycle}")
        self._stack.append(name)
        try:
            value = self._lookup(name)
        finally:
            self._stack.pop()
        self._values[name] = value
        return value

    def _lookup(self, name: str) -> str | None:
        scope = self._scope
        if name in scope.overrides:
            return self.substitute(scope.overrides[name], f"{scope.where}: --set {name}")
        if scope.environ.get(name):
            return scope.environ[name]
        if name in scope.computed:
            return scope.computed[name]
        default = scope.declared[name]
        if default is None:
            return None
        return self.substitute(default, f"{scope.where}: the default of variable {name}")

    def substitute(self, text: str, used_at: str) -> str:
        """Replace every reference in `text`.

        Args:
            text: a template.
            used_at: where it comes from (``"<recipe>: <key>"``), the prefix of every error message.

        Raises:
            ConfigError: an undeclared variable, or a required one nothing sets.
        """

        def replace(match: re.Match[str]) -> str:
            name, inline_default = match.group(1), match.group(2)
            value = self.value(name, used_at)
            if value is None or value == "":
                if inline_default is not None:
                    return self.substitute(inline_default, used_at)
                raise ConfigError(
                    f"{used_at} needs variable {name}, which is required and not set; "
                    f"export {name}=... or pass --set {name}=..."
                )
            return value

        return REFERENCE.sub(replace, text)

    def resolved(self) -> dict[str, str]:
        """Every variable resolved so far that has a value (for display and provenance)."""
        return {k: v for k, v in sorted(self._values.items()) if v is not None}


def resolve_tree(node: Any, resolve: Callable[[str, str], str], where: str = "") -> Any:
    """Return a copy of a YAML tree with every string's references substituted.

    A string that is exactly one reference (``"${WORKERS:-8}"``) is re-read as a YAML scalar after
    substitution, so numbers and booleans keep their type; any other string stays a string.
    """
    if isinstance(node, Mapping):
        return {
            key: resolve_tree(value, resolve, f"{where}.{key}" if where else str(key)) for key, value in node.items()
        }
    if isinstance(node, list):
        return [resolve_tree(value, resolve, f"{where}[{i}]") for i, value in enumerate(node)]
    if isinstance(node, str):
        text = resolve(node, where)
        whole = REFERENCE.fullmatch(node)
        if whole is not None and text != node:
            parsed = yaml.safe_load(text) if text.strip() else text
            if isinstance(parsed, (bool, int, float)):
                return parsed
        return text
    return node
