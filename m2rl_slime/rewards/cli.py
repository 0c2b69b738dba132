"""`python -m m2rl_slime.rewards score FILE.jsonl`: score a file of rollouts and print a per-domain table.

One JSON object per line: `response` (required), `label`, `metadata`, and optionally `domain`,
`prompt`, `expected_reward`, `expected_reason`. The domain comes from `domain`, else `metadata.domain`,
else `metadata.rm_type`, else `--domain`. This is what to run to debug a reward before spending GPU hours.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import parse_section
from ..domains import domain_names
from ..errors import M2RLError
from .config import RewardConfig
from .mcq import prompt_text
from .result import Result
from .router import Item, Router
from .slime_hooks import sample_domain


def _load_settings(path: str | None) -> tuple[RewardConfig, Any]:
    if path is None:
        return RewardConfig(), None
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise M2RLError(f"--config {path}: cannot read YAML: {exc}") from None
    if not isinstance(data, dict):
        raise M2RLError(f"--config {path}: expected a mapping with m2rl_reward / m2rl_agent keys")
    config = RewardConfig.from_mapping(data.get("m2rl_reward"), f"{path}: m2rl_reward")
    agent = None
    if data.get("m2rl_agent") is not None:
        agent = parse_section("m2rl_agent", data["m2rl_agent"], f"{path}: m2rl_agent")
    return config, agent


def _read_rows(path: str, default_domain: str | None) -> list[tuple[int, dict, Item]]:
    rows = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise M2RLError(f"{path}: {exc.strerror}") from None
    with handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise M2RLError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "response" not in row:
                raise M2RLError(f"{path}:{lineno}: each line must be an object with a 'response' field")
            where = f"{path}:{lineno}"
            metadata = row.get("metadata")
            domain = sample_domain({"domain": row["domain"]} if row.get("domain") else metadata, default_domain, where)
            view = dict(metadata) if isinstance(metadata, dict) else {}
            if domain == "science" and "prompt_text" not in view and prompt_text(row.get("prompt")):
                view["prompt_text"] = prompt_text(row.get("prompt"))
            rows.append((lineno, row, Item(domain, row["response"], row.get("label"), view)))
    if not rows:
        raise M2RLError(f"{path}: no rows")
    return rows


def _table(domains: list[str], results: list[Result]) -> str:
    by_domain: dict[str, list[Result]] = collections.defaultdict(list)
    for domain, result in zip(domains, results):
        by_domain[domain].append(result)
    lines = [f"{'domain':<9} {'count':>6} {'mean':>7}  reasons", "-" * 60]
    for domain in sorted(by_domain):
        res = by_domain[domain]
        reasons = collections.Counter(r.reason.value for r in res)
        shown = ", ".join(f"{k}={v}" for k, v in reasons.most_common())
        lines.append(f"{domain:<9} {len(res):>6} {sum(r.score for r in res) / len(res):>7.3f}  {shown}")
    lines.append(f"{'all':<9} {len(results):>6} {sum(r.score for r in results) / len(results):>7.3f}")
    return "\n".join(lines)


def _check(rows: list[tuple[int, dict, Item]], results: list[Result], path: str) -> list[str]:
    problems = []
    for (lineno, row, _), result in zip(rows, results):
        want_score, want_reason = row.get("expected_reward"), row.get("expected_reason")
        if want_score is not None and abs(float(want_score) - result.score) > 1e-9:
            problems.append(f"{path}:{lineno}: reward {result.score} ({result.reason.value}), expected {want_score}")
        elif want_reason is not None and want_reason != result.reason.value:
            problems.append(f"{path}:{lineno}: reason {result.reason.value}, expected {want_reason}")
    return problems


def _score(opts: argparse.Namespace) -> int:
    config, agent = _load_settings(opts.config)
    overrides = {}
    if opts.require_thinking is not None:
        overrides["require_thinking"] = opts.require_thinking
    if opts.workers is not None:
        overrides["workers"] = opts.workers
    if opts.deadline is not None:
        overrides["deadline_s"] = opts.deadline
    if overrides:
        config = replace(config, **overrides)
        config.validate()
    rows = _read_rows(opts.file, opts.domain)
    results = Router(config, agent).score_many([item for _, _, item in rows], progress=len(rows) > 50)
    print(_table([item.domain for _, _, item in rows], results))
    if opts.out:
        tmp = Path(opts.out + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for (lineno, _, item), result in zip(rows, results):
                out.write(json.dumps({"line": lineno, "domain": item.domain, **result.to_dict()}, default=str) + "\n")
        tmp.replace(opts.out)
    if opts.check:
        problems = _check(rows, results, opts.file)
        checked = sum(1 for _, row, _ in rows if "expected_reward" in row or "expected_reason" in row)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"checked {checked} rows against their expected reward/reason: {checked - len(problems)} agree")
        return 1 if problems else 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m m2rl_slime.rewards", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score a JSONL file of rollouts and print a per-domain table")
    p.add_argument("file", help="JSONL rollouts: response, label, metadata[, domain, expected_reward]")
    p.add_argument("--config", help="YAML with m2rl_reward (and m2rl_agent) keys, e.g. a rendered custom config")
    p.add_argument("--domain", help=f"domain for rows that name none ({', '.join(domain_names())})")
    think = p.add_mutually_exclusive_group()
    think.add_argument(
        "--require-thinking",
        dest="require_thinking",
        action="store_true",
        default=None,
        help="score 0 (no_think_close) when a response lacks </think> (the default)",
    )
    think.add_argument(
        "--no-require-thinking",
        dest="require_thinking",
        action="store_false",
        help="grade responses without </think> whole",
    )
    p.add_argument("--workers", type=int, help="verifier worker processes (default: min(8, CPUs))")
    p.add_argument("--deadline", type=float, help="hard per-item deadline in seconds (default 10)")
    p.add_argument("--out", help="write one JSON result per row here")
    p.add_argument(
        "--check", action="store_true", help="compare with expected_reward/expected_reason; exit 1 on any disagreement"
    )
    opts = parser.parse_args(argv)
    try:
        return _score(opts)
    except M2RLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
