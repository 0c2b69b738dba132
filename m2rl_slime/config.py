"""Typed plugin settings: strict parsing of mappings into frozen dataclasses, and access from slime's args.

slime delivers plugin settings through `--custom-config-path`: every top-level YAML key is set onto
`args`. Our keys are all prefixed `m2rl_` (`m2rl_reward`, `m2rl_data`, `m2rl_opd`, `m2rl_agent`) so they
can never clobber one of slime's own arguments. Each subsystem declares a frozen dataclass and parses
its mapping with `parse_dataclass`, which rejects unknown keys and wrong types, naming both.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from ._dotted import load_dotted
from .errors import ConfigError

T = TypeVar("T")

# Top-level plugin keys -> dotted path of the dataclass that validates them (imported lazily).
PLUGIN_SETTINGS: dict[str, str] = {
    "m2rl_reward": "m2rl_slime.rewards.config.RewardConfig",
    "m2rl_data": "m2rl_slime.data.config.DataConfig",
    "m2rl_opd": "m2rl_slime.opd.config.OPDConfig",
    "m2rl_agent": "m2rl_slime.agent.config.AgentConfig",
}


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Validate (and lightly coerce) `value` against a type annotation; return the value to store."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        errors = []
        options = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        for arg in options:
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:  # `X | None`: the inner error says what is wrong
            raise errors[0]
        raise ConfigError(f"{where}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return parse_dataclass(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        args = typing.get_args(tp)
        if not args:
            return dict(value)
        ktp, vtp = args
        return {_check_type(k, ktp, f"{where} key"): _check_type(v, vtp, f"{where}[{k!r}]") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
    return value


def parse_dataclass(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build the frozen dataclass `cls` from `data`, rejecting unknown keys and wrong types.

    Args:
        cls: A dataclass type whose fields all have defaults or appear in `data`.
        data: The mapping to parse (None means all defaults). A class may declare `CONFIG_ALIASES`
            (external key -> field name, e.g. ``{"if": "if_"}``) and `CONFIG_LAZY_TYPES` (field name ->
            dotted path of the dataclass that validates it, imported only when parsing).
        where: Where the mapping came from, e.g. ``"recipes/rl_math.yaml: plugin.m2rl_reward"``; it
            prefixes every error message.

    Raises:
        ConfigError: naming the bad key and the valid keys, or the bad value and the expected type.
    """
    aliases: Mapping[str, str] = getattr(cls, "CONFIG_ALIASES", {})
    lazy: Mapping[str, str] = getattr(cls, "CONFIG_LAZY_TYPES", {})
    data = {aliases.get(key, key): value for key, value in dict(data or {}).items()}
    hints = typing.get_type_hints(cls)
    for name, dotted in lazy.items():
        if name in data:  # import a section's class only when the section is given
            try:
                hints[name] = load_dotted(dotted) | None
            except ConfigError as exc:
                raise ConfigError(f"{where}.{name}: cannot validate this section: {exc}") from None
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        external = {v: k for k, v in aliases.items()}
        valid = sorted(external.get(name, name) for name in fields)
        shown = sorted(external.get(name, name) for name in unknown)
        raise ConfigError(f"{where}: unknown key(s) {', '.join(shown)}; valid keys: {', '.join(valid)}")
    kwargs = {
        name: _check_type(value, hints[name], f"{where}.{next((k for k, v in aliases.items() if v == name), name)}")
        for name, value in data.items()
    }
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return obj


def parse_section(key: str, data: Mapping[str, Any] | None, where: str | None = None) -> Any:
    """Parse one top-level plugin section (``m2rl_agent``, ...) with the dataclass `PLUGIN_SETTINGS` names.

    Raises:
        ConfigError: `key` is not a plugin section, its class is not importable, or `data` is invalid.
    """
    where = where or key
    if key not in PLUGIN_SETTINGS:
        raise ConfigError(f"{where}: unknown plugin key; known: {', '.join(PLUGIN_SETTINGS)}")
    try:
        cls = load_dotted(PLUGIN_SETTINGS[key])
    except ConfigError as exc:
        raise ConfigError(f"{where}: cannot validate: {exc}") from None
    return parse_dataclass(cls, data, where)


def plugin_setting(args: Any, key: str) -> Mapping[str, Any]:
    """Return the raw mapping slime set on `args` for one of our top-level keys ({} when absent)."""
    if key not in PLUGIN_SETTINGS:
        raise ConfigError(f"unknown plugin setting {key!r}; known: {', '.join(PLUGIN_SETTINGS)}")
    value = getattr(args, key, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"--custom-config-path key {key} must be a mapping, got {type(value).__name__}")
    return value
