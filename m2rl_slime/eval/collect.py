"""``eval collect``: slime's saved eval rollouts (``--save-debug-rollout-data``) -> samples.jsonl / items.jsonl.

slime writes ``<template with rollout_id = eval_<id>>.pt``: ``{"rollout_id", "samples": [Sample.to_dict()]}``
with every eval dataset's samples (prompt, response, reward, metadata, status, tokens, index). An eval
run rendered from a suite (`slime_config`) puts an ``m2rl_eval`` record into each sample's metadata
(suite, benchmark, K, sampling, scorer, model), and our reward hook records its verdict in
``metadata["m2rl_reward"]``; both become the per-sample record of `samples.FIELDS`. The sample index
among the K is slime's running index modulo K (it numbers prompt i's samples i*K .. i*K+K-1). Samples
from datasets without ``m2rl_eval`` (an in-training eval) are collected with ``--suite``/``--model-id``,
the benchmark being the dataset's ``metadata.benchmark``.

Collecting is idempotent: keys already in samples.jsonl are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError
from .identity import ckpt_sha, split_reasoning, utc_now
from .rows import load_items
from .samples import RUN, SAMPLES, SampleLog, locked, read_json, write_items, write_json
from .scorers import trim
from .suite import Benchmark, Sampling

logger = logging.getLogger(__name__)
_FINISH = {"completed": "stop", "truncated": "length", "aborted": "abort", "failed": None}


@dataclass(frozen=True, slots=True)
class CollectReport:
    written: int
    existing: int
    files: tuple[str, ...]
    benchmarks: Mapping[str, int]


def find_rollout_files(paths: Iterable[str | Path]) -> list[Path]:
    """The eval rollout files among `paths`: files as given; directories searched for ``eval_*.pt`` (also
    under ``raw/``)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(path.glob("eval_*.pt")) + sorted(path.glob("raw/eval_*.pt"))
        else:
            raise ConfigError(f"{path}: no such file or directory")
    if not found:
        raise ConfigError(f"no eval_*.pt under {', '.join(map(str, paths))} (slime's --save-debug-rollout-data)")
    return found


def load_rollout(path: Path, *, allow_pickle: bool = False) -> list[dict[str, Any]]:
    """The sample dicts of one saved rollout file (tensors-and-containers only unless `allow_pickle`)."""
    import pickle

    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as exc:
        raise ConfigError(
            f"{path}: holds objects beyond plain data ({str(exc)[:200]}); if you wrote this file yourself, "
            "pass --allow-pickle to load it with full unpickling"
        ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read the rollout file: {exc}") from None
    samples = data.get("samples") if isinstance(data, Mapping) else None
    if not isinstance(samples, list):
        raise ConfigError(f"{path}: not a slime rollout file (no `samples` list)")
    return samples


def _prompt_shas(path: str | None, cache: dict[str, dict[str, str]]) -> dict[str, str]:
    if path is None:
        return {}
    if path not in cache:
        file = Path(path)
        try:
            bench = Benchmark("x", file.name, 1, Sampling(1.0, 1.0, 1))
            cache[path] = {item.uid: item.prompt_sha for item in load_items(bench, file.parent)}
        except ConfigError as exc:
            logger.warning("prompt hashes unavailable (%s); prompt_sha is null for these samples", exc)
            cache[path] = {}
    return cache[path]


def to_record(
    sample: Mapping[str, Any], fallback: Mapping[str, Any], shas: dict[str, dict[str, str]], seen: dict[tuple, int]
) -> dict:
    """One slime sample dict -> a per-sample record (`samples.FIELDS`).

    `seen` counts samples per (benchmark, uid) so far: without a known K, the sample index is the order of
    appearance (slime sorts each dataset's samples by index before saving them).
    """
    metadata = sample.get("metadata") if isinstance(sample.get("metadata"), Mapping) else {}
    info = metadata.get("m2rl_eval") if isinstance(metadata.get("m2rl_eval"), Mapping) else {}
    info = {**fallback, **info}
    benchmark = info.get("benchmark") or metadata.get("benchmark")
    uid = metadata.get("uid")
    if not benchmark or uid in (None, ""):
        raise ConfigError(
            f"sample index {sample.get('index')}: no benchmark or metadata.uid; collect an eval run rendered from "
            "a suite (launch/eval.sh), or pass --suite and --model-id for rows prepared with prepare-eval"
        )
    order = seen.get((benchmark, str(uid)), 0)
    seen[(benchmark, str(uid))] = order + 1
    sample_idx = int(sample["index"]) % int(info["k"]) if info.get("k") else order
    verdict = metadata.get("m2rl_reward") if isinstance(metadata.get("m2rl_reward"), Mapping) else None
    reward, reason, details, scorer, version = None, None, None, info.get("scorer") or "reward", None
    if verdict is not None and not verdict.get("deferred"):
        reward, reason, details = float(verdict["score"]), verdict.get("reason"), trim(verdict.get("details") or {})
        version = f"m2rl_slime.rewards {__version__}"
    elif verdict is None and isinstance(sample.get("reward"), (int, float)):
        reward, scorer = float(sample["reward"]), f"slime:{metadata.get('rm_type') or 'custom'}"
    response = sample.get("response") or ""
    reasoning, content = split_reasoning(response)
    status = str(sample.get("status") or "completed")
    tokens, length = sample.get("tokens") or [], int(sample.get("response_length") or 0)
    sampling = info.get("sampling") or {}
    return {
        "suite": info.get("suite"), "benchmark": benchmark, "uid": str(uid), "sample_idx": sample_idx,
        "model_id": info.get("model_id"), "ckpt_sha": None,
        "prompt_sha": _prompt_shas(info.get("path"), shas).get(str(uid)),
        "response": response, "reasoning": reasoning, "content": content,
        "reward": reward, "reason": reason, "details": details, "status": status,
        "finish_reason": _FINISH.get(status), "prompt_tokens": max(0, len(tokens) - length) if tokens else None,
        "response_tokens": length, "temperature": sampling.get("temperature"), "top_p": sampling.get("top_p"),
        "max_tokens": sampling.get("max_tokens"), "seed": None, "scorer": scorer, "scorer_version": version,
        "generated_at": info.get("generated_at"),
    }  # fmt: skip


def collect(
    paths: Iterable[str | Path], out: str | Path, *, fallback: Mapping[str, Any] | None = None,
    allow_pickle: bool = False,
) -> CollectReport:  # fmt: skip
    """Turn saved eval rollouts into ``out/samples.jsonl``, ``out/items.jsonl`` and ``out/run.json``.

    Args:
        paths: ``eval_*.pt`` files or directories holding them (an eval run's OUT).
        out: The evaluation directory.
        fallback: ``m2rl_eval`` fields for samples that carry none (suite, model_id, k).
        allow_pickle: Load rollout files with full unpickling (only files you wrote).

    Raises:
        ConfigError: no rollout file, an unreadable one, or a sample without benchmark/uid.
    """
    files = find_rollout_files(paths)
    out = Path(out)
    shas: dict[str, dict[str, str]] = {}
    checkpoints: dict[str | None, str | None] = {}
    counts: dict[str, int] = {}
    first: dict[str, Any] = {}
    written = duplicates = 0
    with locked(out), SampleLog(out / SAMPLES) as log:
        existing = len(log.keys)
        for file in files:
            seen: dict[tuple, int] = {}
            for sample in load_rollout(file, allow_pickle=allow_pickle):
                record = to_record(sample, fallback or {}, shas, seen)
                info = (sample.get("metadata") or {}).get("m2rl_eval") or {}
                first.setdefault(record["benchmark"], info)
                model_path = info.get("model_path") or (fallback or {}).get("model_path")
                if model_path not in checkpoints:
                    checkpoints[model_path] = ckpt_sha(model_path)
                record["ckpt_sha"] = checkpoints[model_path]
                if log.append(record):
                    written += 1
                    counts[record["benchmark"]] = counts.get(record["benchmark"], 0) + 1
                else:
                    duplicates += 1
        if duplicates > existing:
            logger.warning("%d samples repeat keys already collected and were skipped: collect each eval step "
                           "(eval_<id>.pt) into its own directory", duplicates - existing)  # fmt: skip
        _write_run(out, first, fallback or {})
        write_items(out)
    return CollectReport(written, existing, tuple(map(str, files)), counts)


def _write_run(out: Path, first: Mapping[str, Mapping[str, Any]], fallback: Mapping[str, Any]) -> None:
    run = read_json(out / RUN) if (out / RUN).is_file() else {}
    any_info = next(iter(first.values()), {}) or fallback
    model_path = any_info.get("model_path") or run.get("model_path")
    protocol = {
        name: {"k": info.get("k"), "sampling": info.get("sampling"), "scorer": info.get("scorer"),
               **({"subset": info["subset"]} if info.get("subset") else {})}
        for name, info in first.items() if info
    }  # fmt: skip
    write_json(out / RUN, {
        **run, "suite": any_info.get("suite") or fallback.get("suite") or run.get("suite"),
        "suite_sha": any_info.get("suite_sha") or run.get("suite_sha"), "model_id": any_info.get("model_id"),
        "model_path": model_path, "ckpt_sha": ckpt_sha(model_path) or run.get("ckpt_sha"), "generator": "slime",
        "m2rl_slime": __version__, "created_at": run.get("created_at", utc_now()), "updated_at": utc_now(),
        "benchmarks": {**run.get("benchmarks", {}), **protocol},
        "files": {**run.get("files", {}), **{n: i["path"] for n, i in first.items() if i.get("path")}},
    })  # fmt: skip
