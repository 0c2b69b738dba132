"""Recipes: YAML files describing one slime run, loaded into a typed, fully validated `Recipe`.

A recipe file has these top-level keys (any other key is an error naming it and the file):

- ``extends``: a recipe this one builds on, relative to this file (``base/grpo_qwen3_4b.yaml``);
- ``description``: one line shown by ``--dry-run``;
- ``variables``: ``NAME: default`` (``null`` = required), referenced as ``${NAME}`` / ``${NAME:-default}``;
- ``entrypoint``: ``train.py`` (default) or ``train_async.py``;
- ``output_dir``: where the launcher writes the generated YAML files (shared by all nodes);
- ``slime``: slime's flags grouped as in slime's scripts (`GROUPS`), ``flag-name: value``;
  ``true``/``false`` for switches, a list for multi-value flags, ``null`` removes an inherited flag;
- ``plugin``: our settings (``m2rl_reward``, ``m2rl_data``, ``m2rl_opd``, ``m2rl_agent``), written to the
  ``--custom-config-path`` YAML and validated with the dataclasses in `m2rl_slime.config.PLUGIN_SETTINGS`;
- ``eval``: slime's ``--eval-config`` body (``defaults``, ``datasets``), written to a generated YAML;
- ``suite``: instead of ``eval``, a benchmark suite rendered into it (an eval-only run; see
  `m2rl_slime.eval.slime_config`);
- ``services``: servers the job needs (e.g. the OPD teachers): ``name``, ``command``, ``env``,
  ``health_urls``, ``wait_command``, ``timeout_s`` (see `model.Service`);
- ``env``: extra environment variables for the Ray job (``runtime_env.env_vars``).

A child recipe is merged over its parent key by key (``slime`` per group and flag, ``plugin``/``eval``/``env``
recursively, where ``null`` deletes); lists and other values replace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .checks import build_recipe
from .model import GROUPS, TOP_KEYS, Recipe, display, where_text
from .overrides import apply_sets, split_sets
from .variables import BUILTINS, Resolver, VariableScope, resolve_tree

_DEEP = ("plugin", "eval", "suite", "env")
_UNRESOLVED = ("extends", "variables")


def default_recipes_dir() -> Path:
    """``$M2RL_RECIPES_DIR``, else ``recipes/`` next to the ``m2rl_slime`` package (a source checkout)."""
    env = os.environ.get("M2RL_RECIPES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "recipes"


def find_recipe(ref: str | Path, recipes_dir: Path | None = None) -> Path:
    """A recipe file from a path or a bare name (``rl_math`` -> ``<recipes_dir>/rl_math.yaml``)."""
    path = Path(ref)
    if path.is_file():
        return path
    recipes_dir = recipes_dir or default_recipes_dir()
    candidate = recipes_dir / f"{ref}.yaml"
    if candidate.is_file():
        return candidate
    known = sorted(p.stem for p in recipes_dir.glob("*.yaml")) if recipes_dir.is_dir() else []
    raise ConfigError(f"recipe {ref!s} not found (no such file, nor {candidate}); known recipes: {', '.join(known)}")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{display(path)}: cannot read recipe: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{display(path)}: invalid YAML: {exc}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{display(path)}: a recipe must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(
            f"{display(path)}: unknown recipe key(s) {', '.join(unknown)}; valid keys: {', '.join(TOP_KEYS)}"
        )
    return data


def load_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The recipe and its ``extends`` ancestors, base first."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current: Path | None = path
    while current is not None:
        current = current.resolve()
        if current in seen:
            raise ConfigError(f"{display(path)}: `extends` forms a cycle through {display(current)}")
        seen.append(current)
        data = _read(current)
        chain.append((current, data))
        parent = data.get("extends")
        if parent is not None and not isinstance(parent, str):
            raise ConfigError(f"{display(current)}: extends must be a relative path string, got {parent!r}")
        current = (current.parent / parent) if parent else None
        if current is not None and not current.is_file():
            raise ConfigError(f"{display(seen[-1])}: extends {parent!r}, but {current} does not exist")
    return chain[::-1]


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any], prefix: str, origin: dict[str, str], src: str) -> None:
    for key, value in over.items():
        dotted = f"{prefix}.{key}"
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value, dotted, origin, src)
        else:
            base[key] = _copy(value)
        origin[dotted] = src


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _merge_slime(merged: dict[str, dict[str, Any]], groups: Any, origin: dict[str, str], src: str) -> None:
    if not isinstance(groups, Mapping):
        raise ConfigError(f"{src}: slime must map group names ({', '.join(GROUPS)}) to flags")
    for group, flags in groups.items():
        if group not in GROUPS:
            raise ConfigError(f"{src}: unknown slime group {group!r}; valid groups: {', '.join(GROUPS)}")
        if flags is None:
            continue
        if not isinstance(flags, Mapping):
            raise ConfigError(f"{src}: slime.{group} must map flag names to values")
        target = merged.setdefault(group, {})
        for flag, value in flags.items():
            if not isinstance(flag, str) or flag.startswith("-"):
                raise ConfigError(f"{src}: slime.{group}: write flags without leading dashes, got {flag!r}")
            if value is None:
                target.pop(flag, None)
            else:
                target[flag] = _copy(value)
            origin[f"slime.{group}.{flag}"] = src


def merge_chain(chain: Sequence[tuple[Path, Mapping[str, Any]]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge recipe files (base first) into one raw tree; return it and the key -> file origin map."""
    merged: dict[str, Any] = {"variables": {}, "slime": {}, "env": {}}
    origin: dict[str, str] = {}
    for path, data in chain:
        src = display(path)
        for key, value in data.items():
            origin.setdefault(key, src)
            if key == "extends":
                continue
            if key == "variables":
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{src}: variables must map NAME to a default (null = required)")
                for name, default in value.items():
                    if isinstance(default, (Mapping, list)):
                        raise ConfigError(f"{src}: variables.{name}: a default must be a string or number")
                    merged["variables"][name] = None if default is None else str(default)
                    origin[f"variables.{name}"] = src
            elif key == "slime":
                _merge_slime(merged["slime"], value, origin, src)
            elif key in _DEEP and isinstance(value, Mapping):
                if not isinstance(merged.get(key), dict):
                    merged[key] = {}
                _deep_merge(merged[key], value, key, origin, src)
            else:
                merged[key] = _copy(value)
                origin[key] = src
    return merged, origin


def load_recipe(
    ref: str | Path,
    sets: Sequence[str] = (),
    *,
    environ: Mapping[str, str] | None = None,
    computed: Mapping[str, str] | None = None,
    recipes_dir: Path | None = None,
) -> Recipe:
    """Load, merge, override, resolve and validate a recipe.

    Args:
        ref: a recipe file or a name under `recipes_dir`.
        sets: ``KEY=VALUE`` overrides: an upper-case KEY sets a variable, a dotted KEY (``slime.rollout.
            num-rollout``, ``plugin.m2rl_data.seed``) sets a recipe key; VALUE is read as YAML.
        environ: where variables are read from (default: ``os.environ``).
        computed: values the launcher computes (e.g. ``M2RL_DIR``), below the environment in precedence.
        recipes_dir: where bare names are looked up.

    Raises:
        ConfigError: naming the key and the recipe file, for any invalid input.
    """
    path = find_recipe(ref, recipes_dir)
    chain = load_chain(path)
    raw, origin = merge_chain(chain)
    var_sets, key_sets = split_sets(sets, display(path))
    apply_sets(raw, key_sets, origin, display(path))
    declared: dict[str, str | None] = {**BUILTINS, **raw["variables"]}
    for name in var_sets:
        if name not in declared:
            raise ConfigError(
                f"{display(path)}: --set {name}: no such variable; declared: {', '.join(sorted(declared))}"
            )
    scope = VariableScope(
        declared=declared,
        overrides=var_sets,
        environ=dict(os.environ if environ is None else environ),
        computed=dict(computed or {}),
        where=display(path),
    )
    resolver = Resolver(scope)

    def resolve(text: str, key: str) -> str:
        return resolver.substitute(text, where_text(origin, key, display(path)))

    resolved = {key: resolve_tree(raw[key], resolve, key) for key in TOP_KEYS if key in raw and key not in _UNRESOLVED}
    for name in BUILTINS:  # the launcher reads these (cluster size, checkout locations) even when unused
        resolver.value(name, f"{display(path)}: variable {name}")
    for name in declared:  # unused ones too (e.g. HF_EXPORT_DIR for `convert`), when they can be resolved
        try:
            resolver.value(name, f"{display(path)}: variable {name}")
        except ConfigError:
            continue  # an unused variable that depends on an unset required one: only an error when used
    defaults = {name: var_sets.get(name, scope.computed.get(name, default)) for name, default in declared.items()}
    return build_recipe(path, tuple(p for p, _ in chain), raw, resolved, origin, resolver.resolved(), defaults)
