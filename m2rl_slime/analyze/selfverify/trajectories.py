"""The trajectories a model judges: its own saved samples (``samples.jsonl`` of an evaluation directory),
each joined to the prepared row it answered (for the question) and labelled by the rule verifier.

A sample is judged when its benchmark is selected, its ``sample_idx`` is below ``max_per_item``, it was
scored (``reward`` not null) and it is single-turn. Its gold label is ``reward >= threshold`` (1.0: fully
correct). The prepared file of a benchmark is the one ``run.json`` recorded, or the file of the same name
under ``--data-dir``; each row's prompt hash must equal the sample's (``prompt_sha``), so a judge never
sees another question than the one the model answered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...data.files import iter_rows
from ...errors import ConfigError
from ...eval.identity import prompt_sha
from ...eval.samples import RUN, SAMPLES, item_rows, read_json, read_samples
from ...eval.scorers import prompt_text
from ..uncertainty import mean_se

# Table 7's benchmarks.
DEFAULT_BENCHMARKS = ("aime24", "ifeval", "lcb_v5", "gpqa_diamond")


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One saved sample to judge."""

    benchmark: str
    uid: str
    sample_idx: int
    domain: str | None
    question: str
    reasoning: str | None
    content: str | None
    reward: float
    gold: bool


@dataclass(frozen=True, slots=True)
class ModelTrajectories:
    """A model's trajectories, its generation score per benchmark and what was left out (and why)."""

    name: str
    model_id: str | None
    trajectories: tuple[Trajectory, ...]
    generation: Mapping[str, dict[str, Any]]
    skipped: Mapping[str, int] = field(default_factory=dict)


def _prepared_file(directory: Path, run: Mapping[str, Any], bench: str, data_dir: Path | None) -> Path:
    recorded = (run.get("files") or {}).get(bench)
    candidates = [Path(recorded)] if recorded else []
    if data_dir is not None:
        candidates.insert(0, data_dir / (Path(recorded).name if recorded else f"{bench}.jsonl"))
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates) or "nothing recorded in run.json"
    raise ConfigError(f"{directory}: the prepared rows of {bench} are not found (tried {tried}); pass --data-dir")


def _rows(path: Path) -> dict[str, Mapping[str, Any]]:
    rows = {}
    for line_no, raw, error in iter_rows(path):
        if error is not None or not isinstance(raw, Mapping):
            raise ConfigError(f"{path}:{line_no}: {error or 'not a prepared row'}")
        uid = (raw.get("metadata") or {}).get("uid")
        if uid not in (None, ""):
            rows[str(uid)] = raw
    return rows


def generation_scores(directory: str | Path, benchmarks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A model's Avg@K +- s.e. per selected benchmark, from its evaluation directory's samples."""
    return _generation([s for s in read_samples(Path(directory) / SAMPLES) if s["benchmark"] in set(benchmarks)])


def _generation(samples: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Avg@K +- s.e. per benchmark over all scored samples (the model's generation score)."""
    by_bench: dict[str, list[float]] = defaultdict(list)
    for row in item_rows(samples):
        by_bench[row["benchmark"]].append(row["mean"])
    out = {}
    for bench, means in by_bench.items():
        est = mean_se(means)
        out[bench] = {"avg": est.value, "se": est.se, "n_items": est.n}
    return out


def load_model(name: str, directory: str | Path, benchmarks: Sequence[str], *, max_per_item: int,
               threshold: float, data_dir: str | Path | None = None) -> ModelTrajectories:  # fmt: skip
    """Read one model's evaluation directory (see the module docstring).

    Raises:
        ConfigError: no samples, a prepared file that cannot be found, or a prompt that differs from the
            one the model answered.
    """
    directory = Path(directory)
    run = read_json(directory / RUN) if (directory / RUN).is_file() else {}
    samples = [s for s in read_samples(directory / SAMPLES) if s["benchmark"] in set(benchmarks)]
    skipped: Counter[str] = Counter()
    wanted = []
    for sample in samples:
        if int(sample["sample_idx"]) >= max_per_item:
            skipped["beyond --max-per-item"] += 1
        elif sample.get("reward") is None:
            skipped["not scored (reward null)"] += 1
        elif sample.get("messages"):
            skipped["multi-turn (not judged)"] += 1
        else:
            wanted.append(sample)
    rows_of: dict[str, dict[str, Mapping[str, Any]]] = {}
    trajectories = []
    for sample in wanted:
        bench = str(sample["benchmark"])
        if bench not in rows_of:
            rows_of[bench] = _rows(_prepared_file(directory, run, bench, Path(data_dir) if data_dir else None))
        row = rows_of[bench].get(str(sample["uid"]))
        if row is None:
            raise ConfigError(
                f"{directory}: item {bench}/{sample['uid']} is not in its prepared file; pass --data-dir"
            )
        if sample.get("prompt_sha") and prompt_sha(row.get("prompt"), row.get("tools") or []) != sample["prompt_sha"]:
            raise ConfigError(f"{directory}: the prepared row of {bench}/{sample['uid']} is not the prompt the model "
                              "answered (prompt_sha differs); point --data-dir at the files of that evaluation")  # fmt: skip
        reward = float(sample["reward"])
        trajectories.append(Trajectory(
            bench, str(sample["uid"]), int(sample["sample_idx"]), (row.get("metadata") or {}).get("domain"),
            prompt_text(row.get("prompt")) or "", sample.get("reasoning"), sample.get("content"), reward,
            reward >= threshold,
        ))  # fmt: skip
    if not trajectories:
        raise ConfigError(f"{directory}: no scored single-turn sample of {', '.join(benchmarks)} to judge")
    model_id = run.get("model_id") or next((s.get("model_id") for s in samples), None)
    return ModelTrajectories(name, model_id, tuple(trajectories), _generation(samples), dict(skipped))
