"""Translate a mergekit YAML (``merge_method``, ``base_model``, ``models`` with ``parameters``) into our
configuration, for the methods both tools have, with an explicit parameter mapping and a warning
wherever mergekit's semantics differ from ours (see docs/merge.md, "Semantics vs mergekit").

Mapping:

=================  ==============  ===========================================================
mergekit           ours            parameters
=================  ==============  ===========================================================
linear             average         weight -> expert weight; a listed base_model -> include_base;
                                   no base_model: every model is averaged, the first gives layout/config
task_arithmetic    ta              weight -> weight, lambda -> lambda
ties               ties            density -> density (one value for all models), lambda, normalize
dare_ties          ties_dare       density -> drop = 1 - density, normalize (mergekit default false)
dare_linear        ta_dare         density -> drop = 1 - density, lambda
sce                sce             select_topk -> select_topk; min_energy = 1e-6 (mergekit's cut)
=================  ==============  ===========================================================

Anything else (slices, modules, tokenizer surgery, gradients or filtered parameter lists, unknown keys)
is refused with a message, where mergekit would often silently ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

METHOD_MAP = {
    "linear": "average",
    "task_arithmetic": "ta",
    "ties": "ties",
    "dare_ties": "ties_dare",
    "dare_linear": "ta_dare",
    "sce": "sce",
}
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}
_TOP_KEYS = {
    "merge_method",
    "base_model",
    "models",
    "parameters",
    "dtype",
    "out_dtype",
    "tokenizer_source",
    "tokenizer",
}
_DARE = {"dare_ties", "dare_linear"}


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, (list, Mapping)):
        raise ConfigError(f"{where}: gradients and filtered parameter lists are not supported; use one value")
    return value


def _model_path(entry: Any, where: str) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("model"), str):
        return entry["model"]
    raise ConfigError(f"{where}: expected a model path")


def _expert_name(path: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path.rstrip("/")).name) or "expert"
    if not base[0].isalnum():
        base = "m" + base
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _check_top(doc: Mapping[str, Any], where: str) -> str:
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unsupported mergekit key(s) {', '.join(unknown)} (mergekit ignores or needs them; "
            f"supported: {', '.join(sorted(_TOP_KEYS))})"
        )
    method = doc["merge_method"]
    if method not in METHOD_MAP:
        raise ConfigError(
            f"{where}: mergekit merge_method {method!r} has no equivalent; supported: {', '.join(METHOD_MAP)}"
        )
    for key in ("tokenizer_source", "tokenizer"):
        if doc.get(key) not in (None, "base"):
            raise ConfigError(f"{where}: {key}: {doc[key]!r} is not supported (experts must share the base vocab)")
    if doc.get("base_model") is None and method != "linear":
        raise ConfigError(f"{where}: base_model is required for {method} (task vectors are relative to it)")
    if doc.get("base_model") is not None and not isinstance(doc["base_model"], (str, Mapping)):
        raise ConfigError(f"{where}: base_model must be a model path")
    if not isinstance(doc.get("models"), list) or not doc["models"]:
        raise ConfigError(f"{where}: models must be a non-empty list")
    return method


def translate(doc: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[str]]:
    """Translate a parsed mergekit YAML.

    Returns:
        (MergeConfig keyword fields, warnings where mergekit's result would differ from ours).
    """
    method = _check_top(doc, where)
    warnings: list[str] = []
    if doc.get("base_model") is None:  # linear only: a plain average needs no base
        base = _model_path(doc["models"][0], f"{where}: models[0]")
        warnings.append(
            f"linear without base_model: the first model ({base}) supplies the tensor layout, config and "
            "tokenizer files and is the reference of the delta statistics, as in mergekit"
        )
        base_listed = None
    else:
        base = base_listed = _model_path(doc["base_model"], f"{where}: base_model")
    glob = dict(doc.get("parameters") or {})
    params: dict[str, Any] = {}
    experts, densities, taken = [], [], set()
    for i, entry in enumerate(doc["models"]):
        at = f"{where}: models[{i}]"
        path = _model_path(entry, at)
        mparams = dict(entry.get("parameters") or {}) if isinstance(entry, Mapping) else {}
        unknown = sorted(set(mparams) - {"weight", "density"})
        if unknown:
            raise ConfigError(f"{at}: unsupported model parameter(s) {', '.join(unknown)}")
        weight = float(_scalar(mparams.get("weight", glob.get("weight", 1.0)), f"{at}.weight"))
        if path == base_listed:
            if method == "linear":
                params.update(include_base=True, base_weight=weight)
            continue
        experts.append({"name": _expert_name(path, taken), "path": path, "weight": weight})
        densities.append(float(_scalar(mparams.get("density", glob.get("density", 1.0)), f"{at}.density")))
    if not experts:
        raise ConfigError(f"{where}: no model besides base_model")
    if len(set(densities)) > 1:
        raise ConfigError(f"{where}: per-model densities differ ({sorted(set(densities))}); ours is one value")
    params.update(_method_params(method, glob, densities[0], experts, where, warnings))
    fields = {"method": METHOD_MAP[method], "base": base, "experts": tuple(experts), "params": params}
    fields.update(_dtypes(doc, warnings))
    return fields, warnings


def _method_params(
    method: str, glob: dict[str, Any], density: float, experts: list[dict[str, Any]], where: str, warnings: list[str]
) -> dict[str, Any]:
    allowed = {
        "linear": {"normalize", "weight"},
        "task_arithmetic": {"lambda", "normalize", "weight"},
        "ties": {"lambda", "normalize", "int8_mask", "density", "weight"},
        "dare_ties": {"lambda", "normalize", "int8_mask", "rescale", "density", "weight"},
        "dare_linear": {"lambda", "normalize", "rescale", "density", "weight"},
        "sce": {"select_topk", "int8_mask"},
    }[method]
    unknown = sorted(set(glob) - allowed)
    if unknown:
        raise ConfigError(f"{where}: parameter(s) {', '.join(unknown)} not supported for {method}")
    g = {k: _scalar(v, f"{where}: parameters.{k}") for k, v in glob.items()}
    out: dict[str, Any] = {}
    if "lambda" in g:
        out["lambda"] = float(g["lambda"])
    weighted = any(e["weight"] != 1.0 for e in experts)
    normalize = g.get("normalize", method in ("linear", "ties"))
    if method == "linear" and not normalize:
        raise ConfigError(f"{where}: linear with normalize: false (a plain sum) is not supported; use method ta")
    if method in ("task_arithmetic", "dare_linear") and normalize:
        raise ConfigError(f"{where}: normalize: true on {method} divides by the weight sum; scale lambda instead")
    if method in ("ties", "dare_ties"):
        out["normalize"] = bool(normalize)
        if weighted:
            warnings.append(
                "mergekit elects TIES signs on weight-scaled deltas; ours elects on unweighted deltas "
                "(TIES paper), so results differ where weights change a sign majority"
            )
    if method == "ties":
        out["density"] = density
        warnings.append(
            "mergekit ties keeps exactly k = int(density*n) elements per tensor (argsort); ours keeps every "
            "|delta| >= the k-th largest (ties at the threshold are kept) and elects sgn(0) = 0, not +1"
        )
    if method in _DARE:
        out["drop"] = 1.0 - density
        out["rescale"] = bool(g.get("rescale", True))
        if out["rescale"]:
            warnings.append(
                f"mergekit DARE rescales by an L1-norm match per tensor; ours by exactly 1/(1-p) = "
                f"{1 / density:.4g} (mergekit density {density} = our drop {1 - density:.4g})"
            )
        warnings.append("DARE masks differ from mergekit's (ours: counter-based per tensor/expert/block seed)")
    if method == "dare_ties" and not out["normalize"]:
        warnings.append("mergekit dare_ties default normalize: false sums agreeing deltas; kept as normalize: false")
    if method == "sce":
        out["select_topk"] = float(g.get("select_topk", 1.0))
        out["min_energy"] = 1e-6
        if weighted:
            warnings.append("mergekit sce ignores per-model weight; ignored here too")
            for e in experts:
                e["weight"] = 1.0
    if "int8_mask" in g:
        warnings.append("int8_mask only changes mergekit's mask dtype; ignored")
    return out


def _dtypes(doc: Mapping[str, Any], warnings: list[str]) -> dict[str, Any]:
    compute = doc.get("dtype")
    out = doc.get("out_dtype", compute)
    if compute is not None and _DTYPES.get(compute) != "fp32":
        warnings.append(f"mergekit computes in dtype {compute}; we always compute in fp32 (only the output is {out})")
    if out is None:
        return {}
    if out not in _DTYPES:
        raise ConfigError(f"unsupported out_dtype {out!r}; supported: {', '.join(_DTYPES)}")
    return {"dtype": _DTYPES[out]}
