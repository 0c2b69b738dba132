"""The files written next to the merged weights: ``merge_manifest.json``, the index, and the side files
(config, generation config, tokenizer) copied from the base or another source. Each is written
atomically (temporary name, fsync, rename) into the directory it is given (see `workdir.publish` for the
order in which they reach the output directory).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError
from .io import INDEX_NAME, copy_atomic, write_atomic
from .plan import MergePlan

log = logging.getLogger(__name__)
MANIFEST = "merge_manifest.json"
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)
_DTYPE_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def write_index(out: Path, plan: MergePlan) -> None:
    """Write model.safetensors.index.json for the planned shards."""
    weight_map = {t.name: s.file for s in plan.shards for t in s.tensors}
    meta = {
        "total_size": sum(s.nbytes for s in plan.shards),
        "merge_method": plan.config.method,
        "merge_plan_id": plan.plan_id,
    }
    write_atomic(
        out / INDEX_NAME,
        json.dumps({"metadata": meta, "weight_map": weight_map}, indent=2).encode(),
    )


def copy_side_files(out: Path, plan: MergePlan) -> list[str]:
    """Copy config/tokenizer files from the chosen source; set the config's dtype. Returns copied names."""
    src = side_source(plan)
    copied = []
    for name in SIDE_FILES:
        path = src / name
        if not path.is_file():
            continue
        if name == "config.json":
            config = json.loads(path.read_text())
            major = str(config.get("transformers_version", "4")).split(".")[0]
            v5 = major.isdigit() and int(major) >= 5
            keys = [k for k in ("torch_dtype", "dtype") if k in config] or ["dtype" if v5 else "torch_dtype"]
            for key in keys:
                config[key] = _DTYPE_NAMES[plan.config.dtype]
            write_atomic(out / name, (json.dumps(config, indent=2) + "\n").encode())
        else:
            copy_atomic(path, out / name)
        copied.append(name)
    if "config.json" not in copied:
        log.warning("%s has no config.json; the merged checkpoint will not load without one", src)
    return copied


def side_source(plan: MergePlan) -> Path:
    """The directory config/tokenizer files are copied from (``copy_from``).

    Raises:
        ConfigError: `copy_from` is neither ``base``, an expert name nor a directory.
    """
    choice = plan.config.copy_from
    if choice == "base":
        return plan.base.path
    for spec, ckpt in zip(plan.config.experts, plan.experts, strict=True):
        if spec.name == choice:
            return ckpt.path
    path = Path(choice)
    if not path.is_dir():
        raise ConfigError(f"copy_from {choice!r} is neither 'base', an expert name nor a directory")
    return path


def write_manifest(out: Path, plan: MergePlan, shards: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
    """Write merge_manifest.json (the finished `shards` with sizes and hashes, plus `report`); return it."""
    cfg = plan.config
    manifest = {
        "package": "m2rl-slime",
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "plan_id": plan.plan_id,
        "method": cfg.method,
        "formula": plan.method.formula,
        "params": asdict(plan.params),
        "seed": cfg.seed,
        "dtype": cfg.dtype,
        "inputs": [
            {"role": "base", "name": "base", "path": str(plan.base.path), "fingerprint": plan.fingerprints["base"]}
        ]
        + [
            {
                "role": "expert",
                "name": e.name,
                "path": str(c.path),
                "weight": e.weight,
                "fingerprint": plan.fingerprints[e.name],
            }
            for e, c in zip(cfg.experts, plan.experts, strict=True)
        ],
        "ignored_tensors": list(plan.ignored),
        "shards": shards,
        **report,
    }
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
