"""Strict, typed validation of a resolved recipe; builds the `Recipe` only when every section is valid.

- ``slime``: every flag must be one slime's parser knows (`flags.slime_flags`), with a value of the shape
  and type the parser expects; a flag may appear in one group only; the flags the launcher generates
  (``--custom-config-path``, ``--eval-config``) may not be set by hand.
- ``plugin``: each key must be one of `m2rl_slime.config.PLUGIN_SETTINGS` and parse with its dataclass.
- ``eval``: only keys slime's ``--eval-config`` accepts (from the same generated table); a ``suite``
  section is rendered into it first (`expand_suite`).
- ``services``: parsed into `Service`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import PLUGIN_SETTINGS, parse_dataclass, parse_section
from ..errors import ConfigError
from .flags import SlimeFlags, slime_flags, to_tokens
from .model import GROUPS, Recipe, Service, display, where_text

# Flags the launcher writes itself, and the recipe section that feeds each.
GENERATED_FLAGS = {"custom-config-path": "plugin", "eval-config": "eval"}
ENTRYPOINTS = ("train.py", "train_async.py")
# The ``suite`` section is rendered by the eval package, named by dotted path (as recipes name hooks) so
# that launch, which eval builds on (run records), never imports it.
SUITE_RENDERER = "m2rl_slime.eval.slime_config.recipe_eval_section"
SUITE_PRUNER = "m2rl_slime.eval.slime_config.drop_missing"


def build_recipe(
    path: Path,
    chain: Sequence[Path],
    raw: Mapping[str, Any],
    resolved: Mapping[str, Any],
    origin: Mapping[str, str],
    variables: Mapping[str, str],
    defaults: Mapping[str, str | None],
) -> Recipe:
    """Validate the resolved sections and assemble the `Recipe`."""
    top = display(path)

    def where(key: str) -> str:
        return where_text(origin, key, top)

    table = slime_flags()
    slime = check_slime(resolved.get("slime") or {}, where, table)
    resolved, raw, suite = expand_suite(resolved, raw, where)
    plugin = check_plugin(resolved.get("plugin") or {}, where)
    eval_cfg = check_eval(resolved.get("eval"), where, table)
    if eval_cfg is None and "eval-interval" in slime.get("eval", {}) and "eval-prompt-data" not in slime["eval"]:
        raise ConfigError(f"{where('slime.eval.eval-interval')} is set but the recipe defines no eval datasets")
    entrypoint = resolved.get("entrypoint", "train.py")
    if entrypoint not in ENTRYPOINTS:
        raise ConfigError(f"{where('entrypoint')}: {entrypoint!r} is not one of {', '.join(ENTRYPOINTS)}")
    output_dir = resolved.get("output_dir")
    if not isinstance(output_dir, str) or not output_dir:
        raise ConfigError(f"{where('output_dir')}: a directory shared by all nodes is required for generated files")
    description = resolved.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where('description')}: expected a string")
    return Recipe(
        name=path.stem,
        path=path,
        chain=tuple(chain),
        description=description,
        entrypoint=entrypoint,
        output_dir=output_dir,
        slime=slime,
        plugin=plugin,
        eval=eval_cfg,
        services=check_services(resolved.get("services") or [], where),
        env=check_env(resolved.get("env") or {}, "env", where),
        variables=dict(variables),
        defaults=dict(defaults),
        raw=raw,
        origin=dict(origin),
        suite=suite,
    )


def expand_suite(
    resolved: Mapping[str, Any], raw: Mapping[str, Any], where: Any
) -> tuple[Mapping[str, Any], Mapping[str, Any], dict[str, Any] | None]:
    """Render a ``suite:`` section into ``eval`` (and the suite's reward settings into
    ``plugin.m2rl_reward``, under the recipe's own); `raw` gets the rendered ``eval`` for ``--emit-script``."""
    if resolved.get("suite") is None:
        return resolved, raw, None
    if resolved.get("eval") is not None:
        raise ConfigError(f"{where('suite')}: a recipe has either `suite` or `eval`, not both")
    from .._dotted import load_dotted

    eval_cfg, reward, suite = load_dotted(SUITE_RENDERER)(resolved["suite"], where("suite"))
    plugin, raw_plugin = dict(resolved.get("plugin") or {}), dict(raw.get("plugin") or {})
    if reward:
        plugin["m2rl_reward"] = {**reward, **(plugin.get("m2rl_reward") or {})}
        raw_plugin["m2rl_reward"] = {**reward, **(raw_plugin.get("m2rl_reward") or {})}
    raw = {**raw, "eval": eval_cfg, "plugin": raw_plugin}
    return {**resolved, "eval": eval_cfg, "plugin": plugin}, raw, suite


def check_slime(groups: Mapping[str, Any], where: Any, table: SlimeFlags) -> dict[str, dict[str, Any]]:
    """Check every flag and value; return groups in `GROUPS` order."""
    seen: dict[str, str] = {}
    ordered: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        flags = groups.get(group) or {}
        for flag, value in flags.items():
            key = f"slime.{group}.{flag}"
            if flag in GENERATED_FLAGS:
                section = GENERATED_FLAGS[flag]
                raise ConfigError(f"{where(key)}: --{flag} is generated by the launcher; use the `{section}:` section")
            if flag in seen:
                raise ConfigError(f"{where(key)}: --{flag} is already set in slime.{seen[flag]}")
            seen[flag] = group
            to_tokens(flag, value, where(key), table)
        if flags:
            ordered[group] = dict(flags)
    return ordered


def check_plugin(plugin: Any, where: Any) -> dict[str, Any]:
    """Parse each plugin section with its dataclass; return the sections unchanged (they are re-parsed by
    the hooks inside slime)."""
    if not isinstance(plugin, Mapping):
        raise ConfigError(f"{where('plugin')}: expected a mapping of {', '.join(PLUGIN_SETTINGS)}")
    for key, value in plugin.items():
        if key not in PLUGIN_SETTINGS:
            raise ConfigError(f"{where(f'plugin.{key}')}: unknown plugin key; known: {', '.join(PLUGIN_SETTINGS)}")
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where(f'plugin.{key}')}: expected a mapping, got {type(value).__name__}")
        parse_section(key, value, where(f"plugin.{key}"))
    return dict(plugin)


def check_eval(eval_cfg: Any, where: Any, table: SlimeFlags) -> dict[str, Any] | None:
    """Check the ``eval`` section against the keys slime's eval config accepts."""
    if eval_cfg is None:
        return None
    if not isinstance(eval_cfg, Mapping):
        raise ConfigError(f"{where('eval')}: expected a mapping with `defaults` and `datasets`")
    unknown = sorted(set(eval_cfg) - {"defaults", "datasets"})
    if unknown:
        raise ConfigError(f"{where('eval')}: unknown key(s) {', '.join(unknown)}; valid keys: datasets, defaults")
    defaults = eval_cfg.get("defaults") or {}
    bad = sorted(set(defaults) - table.eval_default_keys)
    if bad:
        raise ConfigError(f"{where('eval.defaults')}: slime does not accept {', '.join(bad)} in eval defaults")
    datasets = eval_cfg.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise ConfigError(f"{where('eval.datasets')}: expected a non-empty list of datasets")
    for i, dataset in enumerate(datasets):
        key = f"eval.datasets[{i}]"
        if not isinstance(dataset, Mapping) or "name" not in dataset or "path" not in dataset:
            raise ConfigError(f"{where(key)}: each dataset needs at least `name` and `path`")
        bad = sorted(set(dataset) - table.eval_dataset_keys)
        if bad:
            raise ConfigError(
                f"{where(key)}: slime does not accept {', '.join(bad)}; valid: {', '.join(sorted(table.eval_dataset_keys))}"
            )
    checked: dict[str, Any] = {"defaults": dict(defaults)} if defaults else {}
    checked["datasets"] = [dict(d) for d in datasets]
    return checked


def check_env(env: Any, key: str, where: Any) -> dict[str, str]:
    """Environment variables: names to scalars, returned as strings."""
    if not isinstance(env, Mapping):
        raise ConfigError(f"{where(key)}: expected a mapping NAME: value")
    out: dict[str, str] = {}
    for name, value in env.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where(f'{key}.{name}')}: expected a string or number, got {value!r}")
        out[str(name)] = str(value)
    return out


def check_services(services: Any, where: Any) -> tuple[Service, ...]:
    """Parse the ``services`` list."""
    if not isinstance(services, list):
        raise ConfigError(f"{where('services')}: expected a list of services")
    parsed = []
    for i, item in enumerate(services):
        key = f"services[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"{where(key)}: expected a mapping with name, command, env, health_urls, wait_command, timeout_s"
            )
        item = dict(item)
        if "env" in item:
            item["env"] = check_env(item["env"], f"{key}.env", where)
        for argv_key in ("command", "wait_command"):
            if isinstance(item.get(argv_key), list):
                item[argv_key] = [str(token) for token in item[argv_key]]
        parsed.append(parse_dataclass(Service, item, where(key)))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where('services')}: service names must be unique, got {', '.join(names)}")
    return tuple(parsed)
