"""``--set KEY=VALUE`` overrides on a merged recipe.

An upper-case KEY (``DATA_DIR``) sets a variable. A dotted KEY sets a recipe key and must name one that
exists: ``slime.<group>.<flag>`` (or ``slime.<flag>`` for a flag the recipe already has; a flag slime
knows may be added to a group), ``plugin.<key>...`` (validated later by the plugin's dataclass),
``eval.datasets.0.n_samples_per_eval_prompt``, ``services.0.timeout_s``, ``env.NAME``, or a top-level
scalar (``output_dir``). VALUE is read as YAML (``true``, ``8``, ``[1, 2]``, ``null`` removes a flag).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from ..errors import ConfigError
from .flags import slime_flags
from .model import GROUPS, TOP_KEYS

_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
_SETTABLE = tuple(k for k in TOP_KEYS if k not in ("extends", "variables"))
_OPEN_SECTIONS = ("plugin", "env")  # new keys may be added (the plugin dataclasses validate them)


def split_sets(sets: Sequence[str], where: str) -> tuple[dict[str, str], list[tuple[str, Any]]]:
    """Split ``KEY=VALUE`` items into variable values and (dotted key, YAML value) pairs."""
    variables: dict[str, str] = {}
    keys: list[tuple[str, Any]] = []
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{where}: --set {item!r}: expected KEY=VALUE")
        if _VARIABLE.fullmatch(key):
            variables[key] = text
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: --set {key}: value {text!r} is not valid YAML: {exc}") from None
        keys.append((key, value))
    return variables, keys


def apply_sets(raw: dict[str, Any], sets: Sequence[tuple[str, Any]], origin: dict[str, str], where: str) -> None:
    """Apply dotted-key overrides to the merged raw tree in place, recording their origin."""
    for key, value in sets:
        parts = key.split(".")
        top = parts[0]
        if top not in _SETTABLE:
            raise ConfigError(
                f"{where}: --set {key}: {top!r} is not a recipe key; settable keys: {', '.join(_SETTABLE)} "
                "(or an upper-case variable name)"
            )
        if top == "slime":
            dotted = _set_slime(raw.setdefault("slime", {}), parts[1:], value, key, where)
        elif len(parts) == 1:
            raw[top] = value
            dotted = top
        else:
            _set_nested(raw, parts, value, key, where)
            dotted = key
        origin[dotted] = "--set"


def _set_slime(slime: dict[str, dict[str, Any]], rest: list[str], value: Any, key: str, where: str) -> str:
    if len(rest) == 1:
        flag = rest[0]
        groups = [g for g, flags in slime.items() if flag in flags]
        if not groups:
            raise ConfigError(
                f"{where}: --set {key}: this recipe has no slime flag {flag!r}; to add one, name its group: "
                f"slime.<group>.{flag} with <group> one of {', '.join(GROUPS)}"
            )
        group = groups[0]
    elif len(rest) == 2:
        group, flag = rest
        if group not in GROUPS:
            raise ConfigError(
                f"{where}: --set {key}: unknown slime group {group!r}; valid groups: {', '.join(GROUPS)}"
            )
        others = [g for g, flags in slime.items() if flag in flags and g != group]
        if others:
            raise ConfigError(f"{where}: --set {key}: this recipe sets {flag} in slime.{others[0]}, not slime.{group}")
        if flag not in slime.get(group, {}):
            slime_flags().spec(flag, f"{where}: --set {key}")
    else:
        raise ConfigError(f"{where}: --set {key}: expected slime.<group>.<flag> or slime.<flag>")
    if value is None:
        slime.get(group, {}).pop(flag, None)
    else:
        slime.setdefault(group, {})[flag] = value
    return f"slime.{group}.{flag}"


def _set_nested(raw: dict[str, Any], parts: list[str], value: Any, key: str, where: str) -> None:
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[: depth + 1], key, where, create=parts[0] in _OPEN_SECTIONS)
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, key, where)
        node[index] = value
        return
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: --set {key}: {'.'.join(parts[:-1])} is not a mapping")
    if last not in node and parts[0] not in _OPEN_SECTIONS:
        known = ", ".join(map(str, node)) or "(none)"
        raise ConfigError(f"{where}: --set {key}: no such key {last!r} in the recipe; keys there: {known}")
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def _child(node: Any, part: str, path: list[str], key: str, where: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key, where)]
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: --set {key}: {'.'.join(path[:-1])} is not a mapping")
    if part not in node or node[part] is None:
        if not create:
            raise ConfigError(f"{where}: --set {key}: the recipe has no key {'.'.join(path)}")
        node[part] = {}
    return node[part]


def _index(node: list[Any], part: str, key: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"{where}: --set {key}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)
