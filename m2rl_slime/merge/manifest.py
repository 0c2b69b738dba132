"""Resume state (``.merge_progress.json``), the final ``merge_manifest.json`` and the side files
(config, generation config, tokenizer) copied next to the merged weights.

The progress file records the plan id (a hash of inputs, method, parameters, seed, dtype, package version
and shard layout) and every completed shard with its size and sha256. ``--resume`` refuses a different
plan, re-hashes the completed shards, deletes temporary files and continues at the first shard that is
missing or does not verify.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError
from .io import TMP_SUFFIX, sha256_file, write_atomic
from .plan import MergePlan

log = logging.getLogger(__name__)
PROGRESS = ".merge_progress.json"
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


class Progress:
    """Completed shards of one plan in one output directory, persisted after every shard."""

    def __init__(self, out: Path, plan: MergePlan):
        self.out = out
        self.plan_id = plan.plan_id
        self.done: list[dict[str, Any]] = []
        self.stats: dict[str, Any] = {}
        self.model_stats: Any = None
        self.finished: dict[str, Any] | None = None  # the manifest, when `out` already holds this merge

    @classmethod
    def start(cls, out: Path, plan: MergePlan, resume: bool) -> Progress:
        """Prepare `out` for `plan`: a fresh empty directory, or a verified partial one with `resume`.

        Raises:
            ConfigError: `out` holds something else, or a different merge.
        """
        state = cls(out, plan)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        busy = out.is_dir() and any(out.iterdir())
        if not busy:
            out.mkdir(parents=True, exist_ok=True)
            state.save()
            return state
        if not resume:
            raise ConfigError(f"--out {out} is not empty; pass --resume to continue a merge there or use an empty dir")
        path = out / PROGRESS
        if not path.is_file():
            manifest = out / MANIFEST
            data = json.loads(manifest.read_text()) if manifest.is_file() else {}
            if data.get("plan_id") == plan.plan_id:
                state.done, state.finished = data["shards"], data
                return state
            raise ConfigError(f"--resume: {out} has no {PROGRESS} (not an interrupted m2rl merge)")
        data = json.loads(path.read_text())
        if data.get("plan_id") != plan.plan_id:
            raise ConfigError(f"--resume: {out} holds a merge of different inputs, parameters or version; refusing")
        state.model_stats = data.get("model_stats")
        state._verify(data.get("done", []), data.get("stats", {}), plan)
        return state

    def _verify(self, done: list[dict[str, Any]], stats: dict[str, Any], plan: MergePlan) -> None:
        for tmp in self.out.glob("*" + TMP_SUFFIX):
            tmp.unlink()
        expected = [s.file for s in plan.shards]
        for i, entry in enumerate(done):
            path = self.out / entry["file"]
            if (
                i >= len(expected)
                or entry["file"] != expected[i]
                or not path.is_file()
                or path.stat().st_size != entry["bytes"]
                or sha256_file(path) != entry["sha256"]
            ):
                log.warning("resume: shard %s is missing or does not verify; continuing from it", entry["file"])
                break
            self.done.append(entry)
            self.stats[entry["file"]] = stats[entry["file"]]
        for name in expected[len(self.done) :]:
            (self.out / name).unlink(missing_ok=True)
        self.save()
        log.info("resume: %d of %d shards verified", len(self.done), len(expected))

    def record(self, file: str, nbytes: int, sha256: str, stats: dict[str, Any]) -> None:
        """Persist one completed shard."""
        self.done.append({"file": file, "bytes": nbytes, "sha256": sha256})
        self.stats[file] = stats
        self.save()

    def save(self) -> None:
        data = {"plan_id": self.plan_id, "done": self.done, "stats": self.stats, "model_stats": self.model_stats}
        write_atomic(self.out / PROGRESS, json.dumps(data, indent=1).encode())

    def finish(self) -> None:
        (self.out / PROGRESS).unlink(missing_ok=True)


def write_index(out: Path, plan: MergePlan) -> None:
    """Write model.safetensors.index.json for the planned shards."""
    weight_map = {t.name: s.file for s in plan.shards for t in s.tensors}
    meta = {
        "total_size": sum(s.nbytes for s in plan.shards),
        "merge_method": plan.config.method,
        "merge_plan_id": plan.plan_id,
    }
    write_atomic(
        out / "model.safetensors.index.json",
        json.dumps({"metadata": meta, "weight_map": weight_map}, indent=2).encode(),
    )


def copy_side_files(out: Path, plan: MergePlan) -> list[str]:
    """Copy config/tokenizer files from the chosen source; set the config's dtype. Returns copied names."""
    src = _side_source(plan)
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
            tmp = out / (name + TMP_SUFFIX)
            shutil.copyfile(path, tmp)
            tmp.replace(out / name)
        copied.append(name)
    if "config.json" not in copied:
        log.warning("%s has no config.json; the merged checkpoint will not load without one", src)
    return copied


def _side_source(plan: MergePlan) -> Path:
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


def write_manifest(out: Path, plan: MergePlan, progress: Progress, report: dict[str, Any]) -> dict[str, Any]:
    """Write merge_manifest.json and return its content."""
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
        "shards": progress.done,
        **report,
    }
    write_atomic(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
