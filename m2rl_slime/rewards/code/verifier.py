"""The `code` domain verifier: run the answer's final code block against the row's unit tests.

What it fixes relative to the paper's reward (reward_anchors.md §2.5): the final fenced block is taken
(last ``python`` block, else the last fenced block), never a greedy span over several blocks; every test
runs (an optional deterministic cap, no random subsampling); stderr and `sys.exit(0)` do not fail a
correct program; outputs are compared like a judge (tokens, integers exactly, floats with a
tolerance); time limits are CPU time (a loaded host does not fail a correct program); and an
infrastructure failure is `sandbox_error`/`sandbox_unavailable`, never a wrong answer. A row may carry
its benchmark's rules in its metadata (``compare: lcb``, ``time_limit_s``; `CodeConfig.for_row`).
Score: 1.0 iff every selected test passes (the paper's pass-all), or the pass fraction with
``reward: pass_fraction``; `details` always carries the fraction and per-test statuses.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...config import parse_dataclass
from ...errors import SandboxError
from ...sandbox.base import RunResult, RunSpec, Sandbox, SandboxUnavailableError, wall_backstop
from ..result import Reason, Result
from . import lcb
from .compare import call_result_matches, first_mismatch
from .config import CodeConfig
from .testcases import TestCase, TestsError, TestSuite, call_harness, call_output, call_stdin, parse_tests

_PY_TAGS = frozenset({"python", "py", "python3", "py3"})
_CPP_TAGS = frozenset({"cpp", "c++", "cc", "cxx"})
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^\n]*$")
_SYNTAX = re.compile(r"^(SyntaxError|IndentationError|TabError)\b")
_STATUS_REASON = {
    "wrong": Reason.WRONG,
    "output_limit": Reason.WRONG,
    "runtime_error": Reason.RUNTIME_ERROR,
    "timeout": Reason.TIMEOUT,
    "compile_error": Reason.COMPILE_ERROR,
}


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """The code chosen from a response: its text, language, and how many fenced blocks there were."""

    code: str
    language: str  # python | cpp | the unknown tag
    tag: str
    blocks: int
    closed: bool


def extract_code(text: str) -> CodeBlock | None:
    """The last ``python`` fenced block, else the last fenced block of any kind; None without a fence.

    An unclosed final fence (a truncated response) runs to the end of the text, as in CommonMark.
    """
    blocks: list[tuple[str, list[str], bool]] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            match = _FENCE.match(line)
            if match:
                fence, tag = match.group(1), match.group(2).lower()
                blocks.append((tag, [], False))
            continue
        stripped = line.strip()
        if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
            blocks[-1] = (blocks[-1][0], blocks[-1][1], True)
            fence = None
        else:
            blocks[-1][1].append(line)
    if not blocks:
        return None
    python = [b for b in blocks if b[0] in _PY_TAGS]
    tag, lines, closed = python[-1] if python else blocks[-1]
    language = "python" if tag in _PY_TAGS or not tag else "cpp" if tag in _CPP_TAGS else tag
    return CodeBlock("\n".join(lines).strip("\n") + "\n", language, tag, len(blocks), closed)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str  # pass | wrong | runtime_error | timeout | compile_error | output_limit
    time_s: float | None
    info: Mapping[str, Any]
    isolated: bool | None
    cpu_s: float | None = None


def _select(cases: tuple[TestCase, ...], config: CodeConfig) -> tuple[TestCase, ...]:
    cap = config.max_tests
    if cap is None or len(cases) <= cap:
        return cases
    if config.test_selection == "first":
        return cases[:cap]
    return tuple(cases[(i * len(cases)) // cap] for i in range(cap))


def _clip(text: Any, limit: int) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def _solution_file(code: str) -> dict[str, str]:
    return {"solution.py": base64.b64encode(code.encode()).decode("ascii")}


def _call_matches(value: Any, expected: Any, config: CodeConfig) -> bool:
    if config.compare == "lcb":
        return lcb.values_equal(lcb.parse_returned(value), expected)
    return call_result_matches(value, expected, config.tolerance)


def _judge(case: TestCase, suite: TestSuite, result: RunResult, nonce: str, config: CodeConfig) -> _Outcome:
    run, limit = result.run_result, config.details_max_chars // 4
    compiled = result.compile_result
    if compiled is not None and (compiled.status != "Finished" or compiled.return_code != 0):
        return _Outcome("compile_error", None, {"stderr": _clip(compiled.stderr, limit)}, result.network_isolated)
    if run is None:
        return _Outcome("runtime_error", None, {"message": _clip(result.message, limit)}, result.network_isolated)
    tail = {"stderr": _clip(run.stderr[-limit:], limit)} if run.stderr else {}
    status, info = "pass", {}
    if run.status == "TimeLimitExceeded":
        status, info = "timeout", {"cpu_limit_s": config.run_timeout_s, "cpu_time_s": run.cpu_time,
                                   "wall_time_s": run.execution_time}  # fmt: skip
    elif run.truncated:
        status, info = "output_limit", {"message": "output exceeded the sandbox's byte cap"}
    elif run.status != "Finished" or run.return_code != 0:
        last = run.stderr.strip().rsplit("\n", 1)[-1] if run.stderr.strip() else ""
        header = "Traceback (most recent call last)" not in run.stderr or 'File "solution.py"' in run.stderr
        status = "compile_error" if _SYNTAX.match(last) and header else "runtime_error"
        info = {"return_code": run.return_code, **tail}
    elif suite.fn_name is not None:
        found, value = call_output(run.stdout, nonce, raw=config.compare == "lcb")
        if not found:
            status, info = "runtime_error", {"message": "the function did not return", **tail}
        elif not _call_matches(value, case.expected, config):
            status, info = "wrong", {"expected": _clip(case.expected, limit), "got": _clip(value, limit)}
    else:
        mismatch = (
            lcb.stdout_mismatch(run.stdout, case.expected)
            if config.compare == "lcb"
            else first_mismatch(run.stdout, case.expected, config.tolerance)
        )
        if mismatch is not None:
            line, want, got = mismatch
            status, info = "wrong", {"line": line, "expected": _clip(want, limit), "got": _clip(got, limit)}
    return _Outcome(status, run.execution_time, info, result.network_isolated, run.cpu_time)


def _spec(case: TestCase, suite: TestSuite, block: CodeBlock, nonce: str, config: CodeConfig) -> RunSpec:
    common = {"run_timeout": wall_backstop(config.run_timeout_s), "cpu_timeout": config.run_timeout_s,
              "compile_timeout": wall_backstop(config.compile_timeout_s),
              "compile_cpu_timeout": config.compile_timeout_s, "memory_limit_mb": config.memory_limit_mb}  # fmt: skip
    if suite.fn_name is None:
        if config.compare == "lcb" and block.language == "python":
            return RunSpec(lcb.stdio_driver(), "python", case.stdin, files=_solution_file(block.code), **common)
        return RunSpec(block.code, block.language, case.stdin, **common)
    driver, files = call_harness(block.code, suite.fn_name, lcb=config.compare == "lcb")
    return RunSpec(driver, "python", call_stdin(case, nonce), files=files, **common)


async def _run_tests(
    cases: tuple[TestCase, ...], suite: TestSuite, block: CodeBlock, sandbox: Sandbox, config: CodeConfig
) -> dict[int, _Outcome]:
    """Run tests concurrently; stop early on a failure (config) or a compile error (always)."""
    outcomes: dict[int, _Outcome] = {}
    nonce = secrets.token_hex(8)
    gate = asyncio.Semaphore(config.test_concurrency)
    stop = asyncio.Event()

    async def one(case: TestCase) -> None:
        async with gate:
            if stop.is_set():
                return
            result = await sandbox.run(_spec(case, suite, block, nonce, config))
            outcome = _judge(case, suite, result, nonce, config)
            outcomes[case.index] = outcome
            if outcome.status == "compile_error" or (outcome.status != "pass" and config.stop_on_first_failure):
                stop.set()

    tasks = [asyncio.ensure_future(one(case)) for case in cases]
    try:
        for next_done in asyncio.as_completed(tasks):
            await next_done
            if stop.is_set():
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


def _summarise(cases: tuple[TestCase, ...], outcomes: dict[int, _Outcome], config: CodeConfig) -> tuple[Result, dict]:
    statuses = [outcomes[c.index].status if c.index in outcomes else "skipped" for c in cases]
    passed = statuses.count("pass")
    fraction = passed / len(cases)
    times = [o.time_s for o in outcomes.values() if o.time_s is not None]
    cpu = [o.cpu_s for o in outcomes.values() if o.cpu_s is not None]
    isolated = [o.isolated for o in outcomes.values() if o.isolated is not None]
    details: dict[str, Any] = {
        "tests_selected": len(cases), "tests_run": len(outcomes), "tests_passed": passed, "pass_fraction": fraction,
        "statuses": statuses, "test_time_max_s": max(times, default=None), "test_cpu_max_s": max(cpu, default=None),
        "network_isolated": all(isolated) if isolated else None,
    }  # fmt: skip
    failures = [c for c in cases if c.index in outcomes and outcomes[c.index].status != "pass"]
    if not failures:
        return Result.correct(**details), details
    first = failures[0]
    outcome = outcomes[first.index]
    details["first_failure"] = {"index": first.index, "status": outcome.status, **outcome.info}
    score = fraction if config.reward == "pass_fraction" else 0.0
    return Result(score, _STATUS_REASON[outcome.status], details), details


async def verify(
    response: str,
    label: Any,
    metadata: Mapping[str, Any],
    *,
    config: CodeConfig | Mapping[str, Any] | None = None,
    sandbox: Sandbox | None = None,
) -> Result:
    """Score a code answer by running its final code block on the row's unit tests.

    Args:
        response: The graded text (thinking already removed).
        label: The row's label (may hold the tests, as a mapping or a JSON string).
        metadata: The row's metadata; tests are read from ``unit_tests`` (never mutated).
        config: `CodeConfig` (or its mapping); None = defaults (embedded executor).
        sandbox: Backend to use; None = `m2rl_slime.sandbox.get_sandbox(config)`.

    Returns:
        `ok` when all selected tests pass; else `wrong`/`runtime_error`/`timeout`/`compile_error` (of
        the lowest-index failing test), `no_code`, `bad_label` (naming the field), `sandbox_error` or
        `sandbox_unavailable`.
    """
    started = time.monotonic()
    if isinstance(config, Mapping):
        config = parse_dataclass(CodeConfig, config, "m2rl_reward.code")
    config = config or CodeConfig()
    metadata = metadata if isinstance(metadata, Mapping) else {}
    try:
        suite = parse_tests(label, metadata)
        judging = config.for_row(metadata)
    except TestsError as exc:
        return Result.fail(Reason.BAD_LABEL, error=str(exc), field=exc.field)
    block = extract_code(response)
    if block is None or not block.code.strip():
        return Result.fail(Reason.NO_CODE, error="no fenced code block (or only an empty one) in the response")
    limit = config.details_max_chars
    base = {"language": block.language, "code": _clip(block.code, limit), "code_blocks": block.blocks,
            "tests_total": len(suite.cases), "fn_name": suite.fn_name}  # fmt: skip
    if block.language not in config.languages or (suite.fn_name and block.language != "python"):
        allowed = "python" if suite.fn_name else ", ".join(config.languages)
        return Result.fail(
            Reason.NO_CODE, error=f"final code block is {block.tag or 'untagged'}; need {allowed}", **base
        )
    if sandbox is None:
        from ...sandbox.registry import get_sandbox

        sandbox = get_sandbox(config)
    cases = _select(suite.cases, judging)
    base["sandbox"] = sandbox.describe()
    if judging.compare != config.compare or judging.run_timeout_s != config.run_timeout_s:
        base["judging"] = {"compare": judging.compare, "run_timeout_s": judging.run_timeout_s}
    try:
        outcomes = await asyncio.wait_for(_run_tests(cases, suite, block, sandbox, judging), config.sample_timeout_s)
    except asyncio.TimeoutError:
        error = (
            f"the sample's tests did not finish within sample_timeout_s={config.sample_timeout_s:g} s (sandbox busy)"
        )
        return Result.fail(Reason.SANDBOX_ERROR, error=error, **base)
    except SandboxUnavailableError as exc:
        return Result.fail(Reason.SANDBOX_UNAVAILABLE, error=str(exc)[:500], **base)
    except SandboxError as exc:
        return Result.fail(Reason.SANDBOX_ERROR, error=str(exc)[:500], **base)
    result, details = _summarise(cases, outcomes, judging)
    merged = {**base, **details, "time_s": round(time.monotonic() - started, 4)}
    return Result(result.score, result.reason, merged)
