"""slime's command-line flags, from the table `flags_gen` generated against a real slime checkout.

slime ignores flags it does not know, so the launcher must catch a typo itself, before anything starts.
`to_tokens` turns one recipe entry (a flag without its leading ``--`` and a YAML value) into argv tokens,
checking that slime knows the flag and that the value has the shape and type slime's parser expects.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

TABLE_PATH = Path(__file__).with_name("slime_flags.json")


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """What slime's parser accepts for one flag.

    Attributes:
        kind: ``switch`` takes no value; ``append`` may be given several times; ``value`` takes values.
        nargs: argparse's nargs (None = exactly one value; ``"+"``, ``"*"``, ``"?"`` or a count).
        type: ``int``, ``float``, ``str`` or the name of slime's converter (not checked here).
        choices: the allowed values, when slime restricts them.
    """

    kind: Literal["switch", "append", "value"]
    nargs: int | str | None = None
    type: str | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SlimeFlags:
    """The generated table: flags plus the slime/Megatron commits it was generated from."""

    flags: Mapping[str, FlagSpec]
    slime_commit: str
    megatron_commit: str
    sglang_version: str
    eval_dataset_keys: frozenset[str]
    eval_default_keys: frozenset[str]

    def spec(self, flag: str, where: str) -> FlagSpec:
        """The spec of ``--flag``; ConfigError naming `where` and close matches when slime lacks it."""
        name = f"--{flag}"
        if name in self.flags:
            return self.flags[name]
        close = difflib.get_close_matches(name, list(self.flags), n=3, cutoff=0.75)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{where}: {name} is not a flag of slime {self.slime_commit[:9]} (slime would silently ignore it){hint}"
        )


@lru_cache(maxsize=1)
def slime_flags() -> SlimeFlags:
    """Load the generated flag table (once)."""
    data = json.loads(TABLE_PATH.read_text())
    flags = {
        name: FlagSpec(
            kind=entry["kind"],
            nargs=entry.get("nargs"),
            type=entry.get("type"),
            choices=tuple(str(c) for c in entry["choices"]) if "choices" in entry else None,
        )
        for name, entry in data["flags"].items()
    }
    eval_keys = data["eval_config_keys"]
    return SlimeFlags(
        flags=flags,
        slime_commit=data["slime_commit"],
        megatron_commit=data["megatron_commit"],
        sglang_version=data["sglang_version"],
        eval_dataset_keys=frozenset(eval_keys["dataset"]),
        eval_default_keys=frozenset(eval_keys["defaults"]),
    )


def _scalar_token(value: Any, spec: FlagSpec, where: str) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (Mapping, list)):
        raise ConfigError(f"{where}: expected a single value (string or number), got {value!r}")
    token = str(value)
    if spec.type in ("int", "float"):
        try:
            int(token) if spec.type == "int" else float(token)
        except ValueError:
            raise ConfigError(f"{where}: {token!r} is not a valid {spec.type}") from None
    if spec.choices is not None and token not in spec.choices:
        raise ConfigError(f"{where}: {token!r} is not one of {', '.join(spec.choices)}")
    return token


def _value_tokens(value: Any, spec: FlagSpec, where: str) -> list[str]:
    nargs = spec.nargs
    if nargs in (None, "?"):
        return [_scalar_token(value, spec, where)]
    items = value if isinstance(value, list) else [value]
    if nargs == "+" and not items:
        raise ConfigError(f"{where}: needs at least one value")
    if isinstance(nargs, int) and len(items) != nargs:
        raise ConfigError(f"{where}: needs exactly {nargs} values, got {len(items)}")
    return [_scalar_token(item, spec, f"{where}[{i}]") for i, item in enumerate(items)]


def to_tokens(flag: str, value: Any, where: str, table: SlimeFlags | None = None) -> list[str]:
    """Render one recipe entry to argv tokens, checking it against slime's parser.

    Args:
        flag: the flag without ``--`` (``num-rollout``).
        value: the YAML value: ``true``/``false`` for switches, a scalar, or a list for multi-value flags
            (an ``append`` flag given a list is repeated once per item).
        where: e.g. ``"recipes/rl_math.yaml: slime.rollout.num-rollout"``, prefixed to every error.
        table: the flag table (default: the generated one).

    Returns:
        The tokens (empty when a switch is false).

    Raises:
        ConfigError: unknown flag, or a value slime's parser would reject or misread.
    """
    table = table or slime_flags()
    spec = table.spec(flag, where)
    name = f"--{flag}"
    if spec.kind == "switch":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} is a switch; use true or false, got {value!r}")
        return [name] if value else []
    if spec.kind == "append":
        items = value if isinstance(value, list) else [value]
        tokens: list[str] = []
        for i, item in enumerate(items):
            tokens += [name, *_value_tokens(item, spec, f"{where}[{i}]")]
        return tokens
    return [name, *_value_tokens(value, spec, where)]
