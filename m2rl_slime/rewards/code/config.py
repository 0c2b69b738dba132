"""`CodeConfig`: the `code` section of the `m2rl_reward` plugin setting (judging, limits, sandbox choice)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import ConfigError
from .compare import Tolerance

ROW_COMPARE_MODES = ("lines", "tokens", "lcb")
MAX_ROW_TIME_LIMIT_S = 60.0


@dataclass(frozen=True, slots=True)
class CodeConfig:
    """The `code` section of `m2rl_reward` (all keys optional).

    Fields sharing a name with `m2rl_slime.sandbox.ExecutorSettings` (workers, isolation,
    memory_limit_mb, output_limit_mb, python) configure the embedded executor; those sharing one with
    `ClientSettings` (max_in_flight, retries, backoff_s, backoff_max_s, request_slack_s,
    breaker_failures, breaker_reset_s) configure the HTTP client.

    Attributes:
        sandbox_url: None = the embedded executor (a private sandbox server started on first use);
            else a SandboxFusion-compatible base URL (``http://host:8080``, a trailing ``/run_code`` is
            accepted) of our `serve` command or a real SandboxFusion fleet, or ``unix:///path``.
        isolation: Embedded executor only. ``required`` refuses to run without namespace isolation;
            ``best_effort`` falls back to rlimits only (network reachable) with a loud warning.
        run_timeout_s / compile_timeout_s: Per-test CPU-time limits (the paper: 10 s run), with a
            wall-clock backstop of 3x + 1 s for programs that block. A server that does not know CPU
            limits (a SandboxFusion fleet) applies them as wall-clock limits.
        memory_limit_mb: Memory of a program (its whole process tree on a server with cgroups; sent as
            ``memory_limit_MB``).
        output_limit_mb: Embedded executor: cap of a program's stdout and files (exactly the cap is fine).
        max_tests: Deterministic cap on the tests run per sample (None = all).
        test_selection: Which tests the cap keeps: the ``first`` N, or N ``evenly_spaced`` ones.
        stop_on_first_failure: Stop a sample's remaining tests at its first failure.
        reward: ``pass_all`` (1.0 iff all selected tests pass, the paper) or ``pass_fraction``.
        compare: ``tokens`` (the default: whitespace-insensitive token compare, like Codeforces' standard
            checker), ``lines`` (also line structure must match) or ``lcb`` (LiveCodeBench's rules, see
            `lcb.py`; implies stop_on_first_failure, pass_all and every test). Nemotron's own rows need ``tokens``:
            some tests of one problem expect one answer per line, others all answers on one line. A row's
            ``metadata.compare`` overrides it for that row (`for_row`).
        float_rel_tol / float_abs_tol: Tolerance between two numbers both written as floats.
        case_insensitive: Compare output case-insensitively (SandboxFusion's CommonOJ does).
        languages: Languages the extracted block may be in (``python``, ``cpp``).
        test_concurrency: Tests of one sample run at the same time.
        sample_timeout_s: Wall-clock budget of one sample's tests, queueing included; past it the sample
            scores ``sandbox_error`` (the sandbox was too busy), never a wrong answer.
        workers: Embedded executor slots (programs at once on this host); None = CPUs.
        python: Embedded executor interpreter (None = the current one).
        max_in_flight: HTTP requests in flight per event loop; None = the server's slots (64 for a
            server that does not report them).
        retries / backoff_s / backoff_max_s / request_slack_s: HTTP client settings (`retries` counts
            resends of requests that never reached the server; HTTP 429 is retried until the sample's
            deadline).
        breaker_failures / breaker_reset_s: Circuit breaker: open after that many consecutive
            transport failures, then ping the server every `breaker_reset_s` seconds and close at its
            first answer.
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
    compare: Literal["lines", "tokens", "lcb"] = "tokens"
    float_rel_tol: float = 1e-6
    float_abs_tol: float = 1e-6
    case_insensitive: bool = False
    languages: tuple[str, ...] = ("python", "cpp")
    test_concurrency: int = 4
    sample_timeout_s: float = 900.0
    workers: int | None = None
    python: str | None = None
    max_in_flight: int | None = None
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    request_slack_s: float = 10.0
    breaker_failures: int = 5
    breaker_reset_s: float = 0.5
    details_max_chars: int = 2000

    def validate(self) -> None:
        positive = ("run_timeout_s", "compile_timeout_s", "memory_limit_mb", "output_limit_mb", "test_concurrency",
                    "sample_timeout_s", "breaker_failures", "details_max_chars")  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_tests", "workers", "max_in_flight"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 or null, got {getattr(self, name)}")
        if self.retries < 0 or self.backoff_s < 0 or self.breaker_reset_s < 0:
            raise ConfigError("retries, backoff_s and breaker_reset_s must be >= 0")
        unknown = sorted(set(self.languages) - {"python", "cpp"})
        if unknown or not self.languages:
            raise ConfigError(f"languages must be a non-empty subset of python, cpp; got {list(self.languages)}")
        if self.reward == "pass_fraction" and self.stop_on_first_failure:
            raise ConfigError("reward: pass_fraction needs stop_on_first_failure: false (every test must run)")
        if self.sandbox_url is not None and not self.sandbox_url.startswith(("http://", "https://", "unix://")):
            raise ConfigError(f"sandbox_url must start with http://, https:// or unix://, got {self.sandbox_url!r}")

    def for_row(self, metadata: Mapping[str, Any]) -> CodeConfig:
        """The settings that judge one row: its ``compare`` and ``time_limit_s`` (CPU seconds per test, at
        most `MAX_ROW_TIME_LIMIT_S`) metadata override this config's (benchmark rows carry their rules).

        Raises:
            TestsError: a malformed override (the sample scores ``bad_label``).
        """
        from .testcases import TestsError

        changes: dict[str, Any] = {}
        compare = metadata.get("compare")
        if compare is not None:
            if compare not in ROW_COMPARE_MODES:
                raise TestsError(
                    "metadata.compare", f"expected one of {', '.join(ROW_COMPARE_MODES)}, got {compare!r}"
                )
            changes["compare"] = compare
        limit = metadata.get("time_limit_s")
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= MAX_ROW_TIME_LIMIT_S:
                raise TestsError(
                    "metadata.time_limit_s", f"expected seconds in (0, {MAX_ROW_TIME_LIMIT_S:g}], got {limit!r}"
                )
            changes["run_timeout_s"] = float(limit)
        if changes.get("compare", self.compare) == "lcb":  # the benchmark's rules: every test, pass@1
            changes.update(stop_on_first_failure=True, reward="pass_all", max_tests=None)
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.float_rel_tol, self.float_abs_tol, self.case_insensitive, self.compare)
