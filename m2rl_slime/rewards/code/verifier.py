"""The `code` domain verifier: run the answer's final code block against the row's unit tests.

What it fixes relative to the paper's reward (reward_anchors.md §2.5): the final fenced block is taken
(last ``python`` block, else the last fenced block), never a greedy span over several blocks; every test
runs (an optional deterministic cap, no random subsampling); stderr and `sys.exit(0)` do not fail a
correct program; outputs are compared line by line like a judge (strip, trailing blank lines, float
tolerance); and an infrastructure failure is `sandbox_error`/`sandbox_unavailable`, never a wrong
answer. Score: 1.0 iff every selected test passes (the paper's pass-all), or the pass fraction with
``reward: pass_fraction``; `details` always carries the fraction and per-test statuses.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...config import parse_dataclass
from ...errors import ConfigError, SandboxError
from ...sandbox.base import RunResult, RunSpec, Sandbox, SandboxUnavailableError
from ..result import Reason, Result
from .compare import Tolerance, call_result_matches, first_mismatch
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
class CodeConfig:
    """The `code` section of `m2rl_reward` (all keys optional).

    Attributes:
        sandbox_url: None = the embedded executor (a private sandbox server started on first use);
            else a SandboxFusion-compatible base URL (``http://host:8080``, a trailing ``/run_code`` is
            accepted) of our `serve` command or a real SandboxFusion fleet, or ``unix:///path``.
        isolation: Embedded executor only. ``required`` refuses to run without namespace isolation;
            ``best_effort`` falls back to rlimits only (network reachable) with a loud warning.
        run_timeout_s / compile_timeout_s: Per-test limits (the paper: 10 s run).
        memory_limit_mb: Address-space limit of a program (sent as ``memory_limit_MB``).
        output_limit_mb: Embedded executor: cap of a program's stdout/stderr/files.
        max_tests: Deterministic cap on the tests run per sample (None = all).
        test_selection: Which tests the cap keeps: the ``first`` N, or N ``evenly_spaced`` ones.
        stop_on_first_failure: Stop a sample's remaining tests at its first failure.
        reward: ``pass_all`` (1.0 iff all selected tests pass, the paper) or ``pass_fraction``.
        compare: ``tokens`` (the default: whitespace-insensitive token compare, like Codeforces' standard
            checker) or ``lines`` (also line structure must match). Nemotron's own rows need ``tokens``:
            some tests of one problem expect one answer per line, others all answers on one line.
        float_rel_tol / float_abs_tol: Tolerance for numeric tokens written as floats.
        case_insensitive: Compare output case-insensitively (SandboxFusion's CommonOJ does).
        languages: Languages the extracted block may be in (``python``, ``cpp``).
        test_concurrency: Tests of one sample run at the same time.
        workers: Embedded executor slots (programs at once on this host); None = CPUs.
        python: Embedded executor interpreter (None = the current one).
        max_in_flight / retries / backoff_s / backoff_max_s / request_slack_s: HTTP client settings.
        breaker_failures / breaker_reset_s: Circuit breaker: open after that many consecutive
            transport failures, probe again after that many seconds.
        details_max_chars: Truncation of code and outputs in `Result.details`.
    """

    sandbox_url: str | None = None
    isolation: Literal["required", "best_effort"] = "required"
    run_timeout_s: float = 10.0
    compile_timeout_s: float = 10.0
    memory_limit_mb: int = 4096
    output_limit_mb: int = 16
    max_tests: int | None = None
    test_selection: Literal["first", "evenly_spaced"] = "first"
    stop_on_first_failure: bool = True
    reward: Literal["pass_all", "pass_fraction"] = "pass_all"
    compare: Literal["lines", "tokens"] = "tokens"
    float_rel_tol: float = 1e-6
    float_abs_tol: float = 1e-6
    case_insensitive: bool = False
    languages: tuple[str, ...] = ("python", "cpp")
    test_concurrency: int = 4
    workers: int | None = None
    python: str | None = None
    max_in_flight: int = 64
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    request_slack_s: float = 10.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    details_max_chars: int = 2000

    def validate(self) -> None:
        positive = ("run_timeout_s", "compile_timeout_s", "memory_limit_mb", "output_limit_mb", "test_concurrency",
                    "max_in_flight", "breaker_failures", "details_max_chars")  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_tests is not None and self.max_tests <= 0:
            raise ConfigError(f"max_tests must be > 0 or null, got {self.max_tests}")
        if self.workers is not None and self.workers <= 0:
            raise ConfigError(f"workers must be > 0 or null, got {self.workers}")
        if self.retries < 0 or self.backoff_s < 0 or self.breaker_reset_s < 0:
            raise ConfigError("retries, backoff_s and breaker_reset_s must be >= 0")
        unknown = sorted(set(self.languages) - {"python", "cpp"})
        if unknown or not self.languages:
            raise ConfigError(f"languages must be a non-empty subset of python, cpp; got {list(self.languages)}")
        if self.reward == "pass_fraction" and self.stop_on_first_failure:
            raise ConfigError("reward: pass_fraction needs stop_on_first_failure: false (every test must run)")
        if self.sandbox_url is not None and not self.sandbox_url.startswith(("http://", "https://", "unix://")):
            raise ConfigError(f"sandbox_url must start with http://, https:// or unix://, got {self.sandbox_url!r}")

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.float_rel_tol, self.float_abs_tol, self.case_insensitive, self.compare)


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
        status, info = "timeout", {"time_limit_s": config.run_timeout_s}
    elif run.truncated:
        status, info = "output_limit", {"message": "output exceeded the sandbox's byte cap"}
    elif run.status != "Finished" or run.return_code != 0:
        last = run.stderr.strip().rsplit("\n", 1)[-1] if run.stderr.strip() else ""
        header = "Traceback (most recent call last)" not in run.stderr or 'File "solution.py"' in run.stderr
        status = "compile_error" if _SYNTAX.match(last) and header else "runtime_error"
        info = {"return_code": run.return_code, **tail}
    elif suite.fn_name is not None:
        found, value = call_output(run.stdout, nonce)
        if not found:
            status, info = "runtime_error", {"message": "the function did not return", **tail}
        elif not call_result_matches(value, case.expected, config.tolerance):
            status, info = "wrong", {"expected": _clip(case.expected, limit), "got": _clip(value, limit)}
    else:
        mismatch = first_mismatch(run.stdout, case.expected, config.tolerance)
        if mismatch is not None:
            line, want, got = mismatch
            status, info = "wrong", {"line": line, "expected": _clip(want, limit), "got": _clip(got, limit)}
    return _Outcome(status, run.execution_time, info, result.network_isolated)


def _spec(case: TestCase, suite: TestSuite, block: CodeBlock, nonce: str, config: CodeConfig) -> RunSpec:
    common = {"run_timeout": config.run_timeout_s, "compile_timeout": config.compile_timeout_s,
              "memory_limit_mb": config.memory_limit_mb}  # fmt: skip
    if suite.fn_name is None:
        return RunSpec(block.code, block.language, case.stdin, **common)
    driver, files = call_harness(block.code, suite.fn_name)
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
    isolated = [o.isolated for o in outcomes.values() if o.isolated is not None]
    details: dict[str, Any] = {
        "tests_selected": len(cases), "tests_run": len(outcomes), "tests_passed": passed, "pass_fraction": fraction,
        "statuses": statuses, "test_time_max_s": max(times, default=None),
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
    try:
        suite = parse_tests(label, metadata if isinstance(metadata, Mapping) else {})
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
    cases = _select(suite.cases, config)
    base["sandbox"] = sandbox.describe()
    try:
        outcomes = await _run_tests(cases, suite, block, sandbox, config)
    except SandboxUnavailableError as exc:
        return Result.fail(Reason.SANDBOX_UNAVAILABLE, error=str(exc)[:500], **base)
    except SandboxError as exc:
        return Result.fail(Reason.SANDBOX_ERROR, error=str(exc)[:500], **base)
    result, details = _summarise(cases, outcomes, config)
    merged = {**base, **details, "time_s": round(time.monotonic() - started, 4)}
    return Result(result.score, result.reason, merged)
