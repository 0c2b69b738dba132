"""`prepare`: the Nemotron RL blend (jsonl/parquet) -> one slime-ready prompt file per domain.

Rows are routed by their source (``dataset`` column, see `sources.py`), converted by `schema.py`,
optionally length-filtered and de-duplicated, and streamed into temporary files that are renamed into
``OUT/<domain>.jsonl`` only when the whole run succeeded. ``OUT/prepare_summary.json`` records the counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, UnknownNameError
from .config import PrepareConfig
from .files import JsonlShards, atomic_writer, iter_rows
from .schema import Row, RowError, convert_row
from .source_domains import EXCLUDE, SourceTable, row_source
from .templates import templates_for

logger = logging.getLogger(__name__)

SOURCE_SEPARATOR = "::"
_EXAMPLES_PER_REASON = 3


@dataclass(frozen=True, slots=True)
class BlendInput:
    """One input file; `source` forces the source name of all its rows (``PATH::SOURCE`` on the CLI)."""

    path: Path
    source: str | None = None

    @classmethod
    def parse(cls, text: str) -> BlendInput:
        path, sep, source = text.partition(SOURCE_SEPARATOR)
        if sep and not source:
            raise ConfigError(f"{text!r}: empty source after {SOURCE_SEPARATOR}")
        return cls(Path(path), source or None)


@dataclass(frozen=True, slots=True)
class PrepareOptions:
    """Run options of `prepare_blend` (the CLI flags)."""

    limit: int | None = None
    dedup: bool = False
    max_prompt_tokens: int | None = None
    tokenizer: str | None = None
    skip_unknown_sources: bool = False
    strict: bool = False
    progress: bool | None = None  # None: a bar only on a terminal


@dataclass(slots=True)
class Tally:
    """Rows in / out / dropped by reason for one domain (or one eval file)."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # extra report lines of a kind's own preparer


@dataclass(slots=True)
class Summary:
    """What a prepare run did; `table()` is the CLI's report."""

    domains: dict[str, Tally] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)  # "excluded:<src>", "unknown:<src>", "invalid_json", ...
    files: dict[str, str] = field(default_factory=dict)

    def tally(self, domain: str) -> Tally:
        return self.domains.setdefault(domain, Tally())

    def table(self) -> str:
        lines = [f"{'domain':<10} {'rows in':>9} {'rows out':>9} {'dropped':>8}  reasons"]
        for domain in sorted(self.domains):
            t = self.domains[domain]
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(t.dropped.items())) or "-"
            lines.append(f"{domain:<10} {t.rows_in:>9} {t.rows_out:>9} {sum(t.dropped.values()):>8}  {reasons}")
        for what, n in sorted(self.skipped.items()):
            lines.append(f"{'(skipped)':<10} {n:>9} {'':>9} {n:>8}  {what}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        domains = {
            d: {**asdict(t), "dropped": dict(t.dropped), "sources": dict(t.sources)} for d, t in self.domains.items()
        }
        return {"domains": domains, "skipped": dict(self.skipped), "files": dict(self.files)}


class TokenCounter:
    """Prompt length in tokens as slime measures it: chat template (with tools) then encode."""

    def __init__(self, tokenizer_path: str):
        from transformers import AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path, trust_remote_code=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--tokenizer {tokenizer_path}: cannot load a tokenizer ({exc})") from None
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if not self.has_template:
            logger.warning("tokenizer %s has no chat template; counting the message texts only", tokenizer_path)

    def __call__(self, row: Row) -> int:
        if self.has_template:
            text = self.tokenizer.apply_chat_template(
                row.prompt, tools=row.tools or None, tokenize=False, add_generation_prompt=True
            )
        else:
            text = "\n".join(m["content"] for m in row.prompt)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


class _Filters:
    def __init__(self, options: PrepareOptions):
        if options.max_prompt_tokens is not None and not options.tokenizer:
            raise ConfigError("--max-prompt-tokens needs --tokenizer PATH (the policy's tokenizer)")
        self.max_tokens = options.max_prompt_tokens
        self.count = TokenCounter(options.tokenizer) if options.max_prompt_tokens is not None else None
        self.seen: set[bytes] | None = set() if options.dedup else None

    def reason(self, row: Row) -> str | None:
        if self.count is not None and self.count(row) > self.max_tokens:
            return "too_long"
        if self.seen is not None:
            payload = json.dumps([row.domain, row.prompt, row.tools], sort_keys=True, ensure_ascii=False)
            key = hashlib.sha1(payload.encode("utf-8")).digest()
            if key in self.seen:
                return "duplicate"
            self.seen.add(key)
        return None


def progress_bar(options: PrepareOptions, desc: str) -> Any:
    """A tqdm bar over input rows (auto-disabled off a terminal unless `options.progress` says otherwise)."""
    from tqdm import tqdm

    return tqdm(
        total=options.limit, unit="rows", desc=desc, disable=None if options.progress is None else not options.progress
    )


class _Run:
    """State of one prepare run (kept off the functions so each stays short)."""

    def __init__(self, config: PrepareConfig, options: PrepareOptions, shards: JsonlShards):
        self.table = SourceTable(config.sources, config.strip_prefixes)
        self.templates = templates_for(config.templates)
        self.columns = config.source_columns
        self.options = options
        self.filters = _Filters(options)
        self.shards = shards
        self.summary = Summary()
        self.examples: Counter = Counter()

    def fail_or_skip(self, bucket: str, where: str, message: str, *, unknown: bool = False) -> None:
        if self.options.strict or (unknown and not self.options.skip_unknown_sources):
            hint = " (map it under m2rl_data.prepare.sources or pass --skip-unknown-sources)" if unknown else ""
            raise ConfigError(f"{where}: {message}{hint}")
        self.summary.skipped[bucket] += 1
        self._example(bucket, where, message)

    def _example(self, bucket: str, where: str, message: str) -> None:
        self.examples[bucket] += 1
        if self.examples[bucket] <= _EXAMPLES_PER_REASON:
            logger.warning("dropped (%s) %s: %s", bucket, where, message)

    def domain_of(self, raw: Any, forced: str | None, where: str) -> tuple[str, str] | None:
        source = forced or (row_source(raw, self.columns) if isinstance(raw, dict) else None)
        if source is None:
            self.fail_or_skip("no_source", where, f"no source column ({', '.join(self.columns)})", unknown=True)
            return None
        try:
            domain = self.table.resolve(source)
        except UnknownNameError as exc:
            self.fail_or_skip(f"unknown:{source}", where, str(exc), unknown=True)
            return None
        if domain == EXCLUDE:
            self.summary.skipped[f"excluded:{source}"] += 1
            return None
        return domain, source

    def add(self, raw: Any, forced: str | None, where: str) -> None:
        routed = self.domain_of(raw, forced, where)
        if routed is None:
            return
        domain, source = routed
        tally = self.summary.tally(domain)
        tally.rows_in += 1
        tally.sources[source] += 1
        try:
            row = convert_row(raw, domain, source, self.templates[domain])
        except RowError as exc:
            if self.options.strict:
                raise ConfigError(f"{where}: {domain} row: {exc}") from None
            tally.dropped[exc.reason] += 1
            self._example(exc.reason, where, f"{domain} row: {exc}")
            return
        reason = self.filters.reason(row)
        if reason is not None:
            tally.dropped[reason] += 1
            return
        self.shards.write(domain, row.to_json())
        tally.rows_out += 1


def prepare_blend(
    inputs: Sequence[BlendInput | str],
    out_dir: str | Path,
    config: PrepareConfig | None = None,
    options: PrepareOptions | None = None,
) -> Summary:
    """Convert blend rows into ``out_dir/<domain>.jsonl`` files (all or nothing).

    Args:
        inputs: Input files (`BlendInput` or ``"PATH[::SOURCE]"`` strings).
        out_dir: Output directory (created if needed; existing domain files are replaced on success).
        config: Source table, templates and other prepare settings.
        options: Limit, filters, strictness, progress bar.

    Returns:
        The run's `Summary` (also written to ``out_dir/prepare_summary.json``).

    Raises:
        ConfigError: an unreadable input, an unknown source (unless skipped), or any bad row with
            ``strict``; nothing is written then.
    """
    config, options = config or PrepareConfig(), options or PrepareOptions()
    parsed = [BlendInput.parse(i) if isinstance(i, str) else i for i in inputs]
    if not parsed:
        raise ConfigError("no input files (--blend PATH[::SOURCE] ...)")
    out_dir = Path(out_dir)
    shards = JsonlShards(out_dir)
    try:
        run = _Run(config, options, shards)
        _feed(run, parsed, options)
        for domain, tally in run.summary.domains.items():
            if tally.rows_out == 0:
                logger.warning("domain %s: no rows left, no file written", domain)
        run.summary.files = {d: str(p) for d, p in shards.commit().items()}
    except BaseException:
        shards.discard()
        raise
    with atomic_writer(out_dir / "prepare_summary.json") as f:
        report = {"version": __version__, "inputs": [str(i.path) for i in parsed], **run.summary.to_json()}
        json.dump(report, f, indent=2, sort_keys=True)
    return run.summary


def _feed(run: _Run, inputs: Iterable[BlendInput], options: PrepareOptions) -> None:
    seen = 0
    with progress_bar(options, "prepare") as bar:
        for item in inputs:
            for line_no, raw, error in iter_rows(item.path):
                if options.limit is not None and seen >= options.limit:
                    return
                seen += 1
                bar.update(1)
                where = f"{item.path}:{line_no}"
                if error is not None:
                    run.fail_or_skip("invalid_json", where, error)
                    continue
                run.add(raw, item.source, where)
