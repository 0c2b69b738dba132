"""Evaluation directories written directly (no generation): per-item rewards given, so Avg@K, standard
errors and rankings are known. Used by the summary, compare and report tests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

PROTOCOL = {
    "aime24": {"k": 2, "sampling": {"temperature": 1.0, "top_p": 0.7, "max_tokens": 32768}, "scorer": "reward"},
    "gpqa_diamond": {"k": 1, "sampling": {"temperature": 1.0, "top_p": 0.7, "max_tokens": 32768}, "scorer": "reward"},
}


def write_model(
    out: Path, model_id: str, rewards: Mapping[str, Sequence[Sequence[float | None]]], *, model_path: str | None = None
) -> Path:
    """One evaluation directory: `rewards[benchmark][item] = [reward of sample 0, 1, ...]` (None = pending)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for bench, items in rewards.items():
        for i, samples in enumerate(items):
            for j, reward in enumerate(samples):
                lines.append(json.dumps({
                    "suite": "paper9", "benchmark": bench, "uid": f"{bench}-{i}", "sample_idx": j,
                    "model_id": model_id, "reward": reward, "reason": None if reward is None else ("ok" if reward else "wrong"),
                    "status": "completed", "scorer": "reward", "scorer_version": None if reward is None else "v1",
                }))  # fmt: skip
    (out / "samples.jsonl").write_text("".join(line + "\n" for line in lines))
    run = {"suite": "paper9", "model_id": model_id, "model_path": model_path,
           "benchmarks": {b: PROTOCOL.get(b, {"k": 1}) for b in rewards}}  # fmt: skip
    (out / "run.json").write_text(json.dumps(run))
    return out


def write_manifest(path: Path, method: str, experts: Mapping[str, Path]) -> Path:
    """A merged checkpoint directory with the manifest `m2rl_slime.merge` writes (the fields compare reads)."""
    path.mkdir(parents=True, exist_ok=True)
    inputs = [{"role": "base", "name": "base", "path": "/sft"}]
    inputs += [{"role": "expert", "name": name, "path": str(p)} for name, p in experts.items()]
    (path / "merge_manifest.json").write_text(json.dumps({"method": method, "inputs": inputs}))
    return path


def write_record(save_dir: Path, name: str, hours: float, nodes: int = 1, gpus: int = 8) -> Path:
    """A closed run record of `hours` GPU hours on nodes x gpus (start 2025-01-01T00:00:00Z)."""
    import datetime as dt

    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(hours=hours / (nodes * gpus))
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    record = {"run_name": name, "recipe": f"recipes/{name}.yaml",
              "segments": [{"start": stamp(start), "end": stamp(end), "nodes": nodes, "gpus_per_node": gpus, "status": "ok"}]}  # fmt: skip
    save_dir.mkdir(parents=True, exist_ok=True)
    (save_dir / "m2rl_run_record.json").write_text(json.dumps(record))
    return save_dir
