"""Async HTTP client for any server that speaks SandboxFusion's `/run_code` (ours or a real fleet).

Why not the PyPI `sandbox-fusion` client (0.3.7): its async `run_code` opens a new `ClientSession` per
request (no connection pool, no concurrency bound), retries every error including the sandbox's own
``SandboxError`` with tenacity and re-raises a bare `Exception`, its `RunCodeRequest` has no
`memory_limit_MB` field (pydantic drops it silently), endpoints live in module globals, and there is
no circuit breaker. The wire format is small, so this module speaks it directly with aiohttp:

- one `ClientSession` (pooled connector) per running event loop, created lazily and closed when that
  loop shuts down (an async generator registered with the loop), so the client works from slime's
  long-lived loop and from repeated `asyncio.run(...)` calls alike;
- at most `max_in_flight` requests per loop; a hard per-request deadline (compile + run timeouts +
  `request_slack_s`);
- retries with capped exponential backoff and jitter on transport errors, timeouts, HTTP 5xx/429 and a
  ``SandboxError`` response; other 4xx and malformed responses are not retried;
- a process-wide circuit breaker (transport errors, timeouts and 5xx only; a 429 or a ``SandboxError``
  response means the server is up): once open, calls fail fast with `SandboxUnavailableError` and a
  loud, rate-limited log line naming the URL.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..errors import SandboxError
from .base import RunResult, RunSpec, SandboxUnavailableError
from .breaker import CircuitBreaker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """HTTP client behaviour (all from the `code` section of `m2rl_reward`)."""

    max_in_flight: int = 64
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    request_slack_s: float = 10.0
    connect_timeout_s: float = 5.0
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0


class _Retryable(Exception):
    def __init__(self, message: str, *, counts_for_breaker: bool = True):
        super().__init__(message)
        self.counts_for_breaker = counts_for_breaker


@dataclass(slots=True)
class _LoopState:
    session: aiohttp.ClientSession
    semaphore: asyncio.Semaphore
    keeper: Any  # the async generator that closes the session when the loop shuts down


async def _close_at_loop_shutdown(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await session.close()


def split_url(url: str) -> tuple[str, str | None]:
    """(base HTTP URL, Unix socket path or None). Accepts a trailing ``/run_code`` and ``unix:///path``."""
    url = url.strip()
    if url.startswith("unix://"):
        return "http://localhost", url[len("unix://") :]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"sandbox URL must start with http://, https:// or unix://, got {url!r}")
    return url.rstrip("/").removesuffix("/run_code"), None


class FusionClient:
    """`Sandbox` backend that posts `RunSpec`s to a SandboxFusion-compatible server.

    Args:
        url: Base URL (``http://host:8080``; a trailing ``/run_code`` is accepted) or ``unix:///path``.
        settings: Concurrency, retries, backoff and breaker thresholds.
        label: What to call the sandbox in logs (default: the URL).
        alive: Optional liveness check of a local server process; when it says False after a failed
            attempt, retrying stops at once.
    """

    def __init__(
        self,
        url: str,
        settings: ClientSettings | None = None,
        *,
        label: str | None = None,
        alive: Callable[[], bool] | None = None,
    ):
        self.settings = settings or ClientSettings()
        self._alive = alive
        self.base_url, self._unix_path = split_url(url)
        self.url = url if label is None else label
        self._breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_reset_s)
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._counts = {"requests": 0, "retries": 0, "failures": 0, "unavailable": 0, "sandbox_errors": 0}
        self._last_unavailable_log = 0.0
        self._atexit = False

    def describe(self) -> str:
        return self.url

    def stats(self) -> Mapping[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        return {
            **counts,
            "url": self.url,
            "breaker": self._breaker.state,
            "breaker_opened": self._breaker.times_opened,
        }

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None:
            return state
        with self._lock:  # forget loops that were closed (their sessions were closed at loop shutdown)
            for old in [old for old in self._loops if old.is_closed()]:
                del self._loops[old]
        limit = self.settings.max_in_flight
        if self._unix_path:
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(self._unix_path, limit=limit)
        else:
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0)
        session = aiohttp.ClientSession(connector=connector)
        keeper = _close_at_loop_shutdown(session)
        await keeper.__anext__()
        state = _LoopState(session, asyncio.Semaphore(limit), keeper)
        with self._lock:
            self._loops[loop] = state
            if not self._atexit:
                atexit.register(self._close_at_exit)
                self._atexit = True
        return state

    def _close_at_exit(self) -> None:
        """Close sessions of loops still running in other threads (e.g. a router's loop thread) at exit."""
        with self._lock:
            states = list(self._loops.items())
        for loop, state in states:
            if loop.is_running() and not loop.is_closed():
                try:
                    asyncio.run_coroutine_threadsafe(state.keeper.aclose(), loop).result(timeout=2)
                except Exception:  # best effort at interpreter exit
                    logger.debug("could not close the sandbox client session of a loop at exit", exc_info=True)

    async def aclose(self) -> None:
        """Close this loop's session now (other loops close theirs when they shut down)."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.keeper.aclose()

    async def run(self, spec: RunSpec) -> RunResult:
        """Run one program remotely.

        Raises:
            SandboxUnavailableError: the breaker is open (nothing sent).
            SandboxError: every attempt failed, or the server rejected the request (4xx) or answered
                something that is not a `/run_code` response.
        """
        state = await self._state()
        async with state.semaphore:
            return await self._run_with_retries(state.session, spec)

    def _unavailable(self, last_error: str) -> SandboxUnavailableError:
        self._count("unavailable")
        now = time.monotonic()
        if now - self._last_unavailable_log > 10.0:
            self._last_unavailable_log = now
            logger.error(
                "CODE SANDBOX UNAVAILABLE at %s (circuit breaker open, retry in %.0f s): code samples score 0 with "
                "reason sandbox_unavailable (%d so far). Last error: %s",
                self.url,
                self._breaker.retry_in(),
                self._counts["unavailable"],
                last_error or "-",
            )
        return SandboxUnavailableError(
            f"code sandbox at {self.url} is unavailable (circuit breaker open; last error: {last_error or '-'})"
        )

    async def _run_with_retries(self, session: aiohttp.ClientSession, spec: RunSpec) -> RunResult:
        s = self.settings
        deadline = spec.compile_timeout + spec.run_timeout + s.request_slack_s
        payload = json.dumps(spec.to_json())
        last_error = ""
        for attempt in range(s.retries + 1):
            if not self._breaker.allow():
                raise self._unavailable(last_error)
            self._count("requests")
            try:
                result = await self._post(session, payload, deadline)
            except _Retryable as exc:
                last_error = str(exc)
                self._count("failures")
                if exc.counts_for_breaker and self._breaker.record_failure():
                    logger.error(
                        "CODE SANDBOX at %s failed %d times in a row (last: %s); opening the circuit breaker for %.0f s",
                        self.url,
                        s.breaker_failures,
                        last_error,
                        s.breaker_reset_s,
                    )
                elif not exc.counts_for_breaker:
                    self._breaker.record_success()
                if attempt == s.retries or (self._alive is not None and not self._alive()):
                    break
                self._count("retries")
                delay = min(s.backoff_max_s, s.backoff_s * 2**attempt) * (0.5 + self._rng.random())
                await asyncio.sleep(delay)
                continue
            except SandboxError:
                self._breaker.record_success()  # the server answered: it is up, the request is at fault
                raise
            self._breaker.record_success()
            return result
        raise SandboxError(f"code sandbox at {self.url} failed {s.retries + 1} attempts; last error: {last_error}")

    async def _post(self, session: aiohttp.ClientSession, payload: str, deadline: float) -> RunResult:
        timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=self.settings.connect_timeout_s)
        headers = {"Content-Type": "application/json"}
        try:
            async with session.post(
                f"{self.base_url}/run_code", data=payload, headers=headers, timeout=timeout
            ) as resp:
                body = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise _Retryable(f"no response within {deadline:.0f} s") from None
        except aiohttp.ClientError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        text = body[:300].decode(errors="replace")
        if status == 429:  # the server is up but busy: back off and retry, the breaker is not involved
            raise _Retryable(f"HTTP 429 (busy): {text}", counts_for_breaker=False)
        if status >= 500:
            raise _Retryable(f"HTTP {status}: {text}")
        if status != 200:
            raise SandboxError(f"code sandbox at {self.url} rejected the request: HTTP {status}: {text}")
        try:
            result = RunResult.from_json(json.loads(body))
        except ValueError as exc:
            raise SandboxError(f"code sandbox at {self.url} sent a malformed /run_code response: {exc}") from None
        if result.status == "SandboxError":
            self._count("sandbox_errors")
            raise _Retryable(f"sandbox error: {result.message[:300]}", counts_for_breaker=False)
        return result
