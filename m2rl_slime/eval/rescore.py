"""``eval score DIR``: (re-)score saved samples without regenerating them.

Which samples are scored: pending ones (``reward: null``: a deferred scorer such as the HLE judge or
BFCL's checker, or a scorer that was unavailable when they were generated), samples scored by another
version of their benchmark's scorer (a new scorer version), samples whose reason is in ``reasons`` (e.g.
``sandbox_error`` after a sandbox outage), or all of them with ``force``. The label, metadata and prompt
come from the prepared files named in ``run.json`` (or ``data_dir``); a multi-turn sample is scored on
its saved conversation.

``samples.jsonl`` is rewritten in one pass through a temporary file (renamed when complete), chunk by
chunk, so memory stays bounded and an interrupted re-score leaves the old file intact.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..data.files import atomic_writer
from ..errors import ConfigError, ServerError, UnavailableError
from .rows import EvalItem, load_items
from .runner import build_scorers
from .samples import RUN, SAMPLES, dumps, locked, read_json, read_samples, write_items
from .scorers import Scorer, ScoreRequest, ScorerSettings, trim
from .suite import Benchmark, Suite, load_suite

logger = logging.getLogger(__name__)
CHUNK = 512


@dataclass(frozen=True, slots=True)
class ScoreReport:
    """Samples scored now, left as they were, and benchmarks whose scorer could not run (name -> why)."""

    scored: int
    kept: int
    unavailable: Mapping[str, str]


def _wanted(record: Mapping[str, Any], scorer: Scorer | None, force: bool, reasons: frozenset[str], pending_only: bool) -> bool:  # fmt: skip
    if scorer is None:
        return False
    if record.get("reward") is None:
        return True
    if pending_only:
        return False
    return force or record.get("reason") in reasons or record.get("scorer_version") != scorer.version


def _files(directory: Path, suite: Suite, data_dir: str | Path | None) -> dict[str, Path]:
    run = read_json(directory / RUN) if (directory / RUN).is_file() else {}
    files = {name: Path(path) for name, path in (run.get("files") or {}).items()}
    if data_dir is not None:
        from .suite import benchmark_path

        files.update({b.name: benchmark_path(b, data_dir) for b in suite.benchmarks})
    return files


def _items(bench: Benchmark, path: Path) -> dict[str, EvalItem]:
    located = replace(bench, file=str(path), limit=None)
    return {item.uid: item for item in load_items(located, path.parent)}


class _Rescorer:
    def __init__(self, suite: Suite, scorers: dict[str, Scorer], files: dict[str, Path], options: dict[str, Any]):
        self.suite, self.scorers, self.files, self.options = suite, scorers, files, options
        self.items: dict[str, dict[str, EvalItem]] = {}
        self.unavailable: dict[str, str] = {}
        self.scored = self.kept = self.unknown_uid = 0

    def _item(self, record: Mapping[str, Any]) -> EvalItem | None:
        name = record["benchmark"]
        if name not in self.items:
            path = self.files.get(name)
            if path is None or not path.is_file():
                self.unavailable[name] = f"its prepared file {path} is not readable; pass --data-dir"
                self.scorers.pop(name, None)
                return None
            self.items[name] = _items(self.suite.get(name), path)
        return self.items[name].get(str(record["uid"]))

    async def _score(self, name: str, records: list[dict[str, Any]]) -> None:
        scorer = self.scorers.get(name)
        requests, targets = [], []
        for record in records:
            item = self._item(record)
            if item is None or scorer is None:
                self.unknown_uid += item is None and name not in self.unavailable
                continue
            requests.append(ScoreRequest(
                name, item.uid, int(record["sample_idx"]), self.suite.get(name).domain, record.get("response") or "",
                item.label, item.metadata, item.prompt, record.get("messages"), record.get("episode"),
            ))  # fmt: skip
            targets.append(record)
        if not requests or name not in self.scorers:
            return
        try:
            results = await scorer.score(requests)
        except (UnavailableError, ServerError) as exc:
            self.unavailable[name] = f"scorer {scorer.name} failed: {exc}"
            self.scorers.pop(name, None)
            logger.warning("benchmark %s: %s", name, self.unavailable[name])
            return
        for record, result in zip(targets, results, strict=True):
            record.update(reward=result.score, reason=result.reason.value, details=trim(dict(result.details)))
            record.update(scorer=scorer.name, scorer_version=scorer.version)
        self.scored += len(targets)

    async def chunk(self, records: list[dict[str, Any]]) -> list[str]:
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            if _wanted(record, self.scorers.get(record["benchmark"]), **self.options):
                groups[record["benchmark"]].append(record)
            else:
                self.kept += 1
        await asyncio.gather(*(self._score(name, group) for name, group in groups.items()))
        return [dumps(r) for r in records]


async def _rewrite(path: Path, rescorer: _Rescorer, progress: bool | None) -> None:
    from tqdm import tqdm

    bar = tqdm(total=sum(1 for _ in read_samples(path)), desc="scoring", unit="sample", disable=progress is False)
    try:
        with atomic_writer(path) as out:
            chunk: list[dict[str, Any]] = []
            for record in read_samples(path):
                chunk.append(record)
                if len(chunk) >= CHUNK:
                    out.writelines(await rescorer.chunk(chunk))
                    bar.update(len(chunk))
                    chunk = []
            out.writelines(await rescorer.chunk(chunk))
            bar.update(len(chunk))
    finally:
        bar.close()
        for scorer in rescorer.scorers.values():
            await scorer.aclose()


def score_directory(
    directory: str | Path,
    suite: Suite,
    settings: ScorerSettings,
    *,
    pending_only: bool = False,
    force: bool = False,
    reasons: Iterable[str] = (),
    scorer_overrides: Mapping[str, str] | None = None,
    data_dir: str | Path | None = None,
    progress: bool | None = None,
    only: Sequence[str] = (),
) -> ScoreReport:
    """Score the samples of `directory` that need it (see the module docstring); rebuild ``items.jsonl``.

    The caller holds the directory lock (``eval run`` does; `score_samples` takes it).
    """
    directory = Path(directory)
    suite = suite.select(only)
    benchmarks = list(suite.benchmarks)
    for name, scorer_name in (scorer_overrides or {}).items():
        bench = suite.get(name)
        benchmarks[benchmarks.index(bench)] = replace(bench, scorer=scorer_name)
    suite = replace(suite, benchmarks=tuple(benchmarks))
    scorers, unavailable = build_scorers(benchmarks, settings)
    options = {"force": force, "reasons": frozenset(reasons), "pending_only": pending_only}
    rescorer = _Rescorer(suite, scorers, _files(directory, suite, data_dir), options)
    asyncio.run(_rewrite(directory / SAMPLES, rescorer, progress))
    if rescorer.unknown_uid:
        logger.warning("%d samples name items that are not in their prepared file (was it regenerated?)",
                       rescorer.unknown_uid)  # fmt: skip
    write_items(directory)
    present = {r["benchmark"] for r in read_samples(directory / SAMPLES)}
    unavailable = {k: v for k, v in {**unavailable, **rescorer.unavailable}.items() if k in present}
    return ScoreReport(rescorer.scored, rescorer.kept, unavailable)


def score_samples(directory: str | Path, suite_ref: str | None = None, **kwargs: Any) -> ScoreReport:
    """``eval score``: `score_directory` under the directory lock, with the suite of its ``run.json``."""
    directory = Path(directory)
    if not (directory / SAMPLES).is_file():
        raise ConfigError(f"{directory}: no {SAMPLES} (run `eval run` or `eval collect` first)")
    run = read_json(directory / RUN) if (directory / RUN).is_file() else {}
    ref = suite_ref or run.get("suite_path") or run.get("suite")
    if not ref:
        raise ConfigError(f"{directory}: {RUN} names no suite; pass --suite")
    try:
        suite = load_suite(ref)
    except ConfigError:
        if suite_ref or not run.get("suite"):
            raise
        suite = load_suite(run["suite"])
    if run.get("suite_sha") not in (None, suite.sha):
        logger.warning("the suite %s changed since %s was generated; scoring with its current scorers", suite.name,
                       directory)  # fmt: skip
    settings = kwargs.pop("settings", None) or ScorerSettings()
    settings = settings if settings.reward else replace(settings, reward=suite.reward)
    with locked(directory):
        return score_directory(directory, suite, settings, **kwargs)
