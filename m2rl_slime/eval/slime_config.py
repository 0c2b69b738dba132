"""A suite rendered into slime's ``--eval-config`` for an eval-only slime run (``launch/eval.sh``).

Not a slime hook: the launcher calls `recipe_eval_section` when a recipe has a ``suite:`` section::

    suite:
      name: ${SUITE}            # a suite name (recipes/eval/<name>.yaml) or path
      data_dir: ${EVAL_DATA_DIR}
      out: ${OUT}               # where the run's raw eval data, samples and run record go
      model: ${HF_MODEL}        # recorded with every sample
      model_id: ${MODEL_ID:-}   # default: the model directory's name
      only: ""                  # comma-separated benchmark names (default: all)

Each benchmark becomes one dataset with every setting explicit (K, temperature, top_p, max response
length, the data keys) and ``metadata_overrides`` carrying the suite's domain and an ``m2rl_eval`` record
(suite, benchmark, K, sampling, scorer, model), so ``python -m m2rl_slime.eval collect`` needs nothing but
slime's saved eval samples. Benchmarks whose scorer runs outside slime (the HLE judge, BFCL's reference
checker) get the `slime_hooks.deferred_reward` hook and are scored by ``eval score``; benchmarks with an
episode driver run only through ``eval run`` and are left out, with a line saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .suite import Benchmark, Suite, benchmark_path, load_suite

logger = logging.getLogger(__name__)

SUITE_SECTION_KEYS = ("name", "data_dir", "out", "model", "model_id", "only")
DEFERRED_RM = "m2rl_slime.eval.slime_hooks.deferred_reward"
AGENT_GENERATE = "m2rl_slime.agent.generate"
DATA_KEYS = {"input_key": "prompt", "label_key": "label", "metadata_key": "metadata", "tool_key": "tools"}


def model_label(model: str | None, model_id: str | None) -> str | None:
    """The model's name in reports: `model_id`, else the checkpoint directory's name."""
    if model_id:
        return model_id
    return Path(model.rstrip("/")).name if model else None


def eval_record(suite: Suite, bench: Benchmark, path: Path, model: str | None, model_id: str | None) -> dict:
    """The ``m2rl_eval`` metadata every sample of `bench` carries through slime."""
    return {
        "suite": suite.name,
        "suite_sha": suite.sha,
        "benchmark": bench.name,
        "k": bench.k,
        "path": str(path),
        "sampling": bench.sampling.to_dict(),
        "scorer": bench.scorer,
        "subset": bench.subset,
        "model_path": model,
        "model_id": model_label(model, model_id),
    }


def dataset_entry(suite: Suite, bench: Benchmark, data_dir: str, model: str | None, model_id: str | None) -> dict:
    """One ``eval.datasets`` entry of slime's eval config."""
    path = benchmark_path(bench, data_dir)
    overrides: dict[str, Any] = {"m2rl_eval": eval_record(suite, bench, path, model, model_id)}
    if bench.domain:
        overrides["domain"] = bench.domain
    entry: dict[str, Any] = {
        "name": bench.name,
        "path": f"{path}@[0:{bench.limit}]" if bench.limit else str(path),
        **DATA_KEYS,
        "apply_chat_template": True,
        "n_samples_per_eval_prompt": bench.k,
        "temperature": bench.sampling.temperature,
        "top_p": bench.sampling.top_p,
        "max_response_len": bench.sampling.max_tokens,
    }
    if bench.sampling.top_k != -1:
        entry["top_k"] = bench.sampling.top_k
    if bench.sampling.stop_token_ids:
        entry["stop_token_ids"] = list(bench.sampling.stop_token_ids)
    if bench.sampling.chat_template_kwargs:
        entry["apply_chat_template_kwargs"] = dict(bench.sampling.chat_template_kwargs)
    if bench.scorer != "reward":
        entry["custom_rm_path"] = DEFERRED_RM
    if bench.generate == "agent":
        entry["custom_generate_function_path"] = AGENT_GENERATE
    entry["metadata_overrides"] = overrides
    return entry


def _section(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(SUITE_SECTION_KEYS)}")
    unknown = sorted(set(raw) - set(SUITE_SECTION_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SUITE_SECTION_KEYS)}")
    for key in ("name", "data_dir", "out"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}.{key}: expected a non-empty string")
    return {key: (str(raw[key]) if raw.get(key) not in (None, "") else None) for key in SUITE_SECTION_KEYS}


def recipe_eval_section(raw: Any, where: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Render a recipe's ``suite:`` section.

    Returns:
        (slime's eval config body, the suite's ``m2rl_reward`` settings, the section as the recipe keeps
        it: its keys plus ``skipped``, benchmark -> why it is not part of the slime run).

    Raises:
        ConfigError: a bad section, an unknown suite or benchmark, or no benchmark a slime run can take.
    """
    section = _section(raw, where)
    only = tuple(n.strip() for n in (section["only"] or "").split(",") if n.strip())
    suite = load_suite(section["name"], only)
    skipped = {
        b.name: f"episode driver {b.driver!r}: run it with `python -m m2rl_slime.eval run`"
        for b in suite.benchmarks
        if b.driver
    }
    datasets = [
        dataset_entry(suite, b, section["data_dir"], section["model"], section["model_id"])
        for b in suite.benchmarks
        if b.name not in skipped
    ]
    if not datasets:
        raise ConfigError(f"{where}: no benchmark of suite {suite.name} can run in slime ({skipped})")
    return {"datasets": datasets}, dict(suite.reward), {**section, "skipped": skipped}


def drop_missing(recipe: Any) -> Any:
    """The recipe without the eval datasets whose prepared file does not exist (one line each).

    Raises:
        ConfigError: none of the suite's prepared files exists.
    """
    from ..data.files import strip_slice

    for name, why in (recipe.suite or {}).get("skipped", {}).items():
        logger.info("benchmark %s: not in this slime run (%s)", name, why)
    kept = []
    for dataset in recipe.eval["datasets"]:
        path = Path(strip_slice(str(dataset["path"])))
        if path.is_file():
            kept.append(dataset)
        else:
            logger.warning(
                "benchmark %s: missing (%s does not exist; build it with `python -m m2rl_slime.data prepare-eval`)",
                dataset["name"],
                path,
            )
    if not kept:
        raise ConfigError(
            f"{recipe.where('suite')}: none of the suite's prepared files exists under "
            f"{recipe.suite['data_dir']}; build them with `python -m m2rl_slime.data prepare-eval` (docs/eval_sets.md)"
        )
    if len(kept) == len(recipe.eval["datasets"]):
        return recipe
    section = {**recipe.eval, "datasets": kept}
    return replace(recipe, eval=section, raw={**recipe.raw, "eval": section})
