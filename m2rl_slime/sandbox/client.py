"""Async client for any server that speaks SandboxFusion's `/run_code` (ours or a real fleet), over HTTP or,
to the embedded server, over `frames` (the same bodies and statuses, length-prefixed on a Unix socket).

Why not the PyPI `sandbox-fusion` client (0.3.7): its async `run_code` opens a new `ClientSession` per
request (no connection pool, no concurrency bound), retries every error including the sandbox's own
``SandboxError`` with tenacity and re-raises a bare `Exception`, its `RunCodeRequest` has no
`memory_limit_MB` field (pydantic drops it silently), endpoints live in module globals, and there is
no circuit breaker. The wire format is small, so this module speaks it directly with aiohttp:

- one `ClientSession` (pooled connector), or one pool of frame connections, per running event loop,
  created lazily and closed when that loop shuts down, so the client works from slime's long-lived
  loop and repeated `asyncio.run(...)`;
- at first use it reads the server's ``GET /health``: our server reports its slots (the default
  in-flight bound is then exactly that many requests, so none waits server-side while its deadline
  ticks) and its features (``cpu_timeout``: CPU-time limits; for other servers a spec's CPU limits are
  sent as SandboxFusion's wall-clock ``run_timeout``/``compile_timeout``);
- a hard per-request deadline (wall-clock compile + run timeouts + `request_slack_s`);
- a program is sent again only when it provably did not reach the server (connection refused, HTTP
  429/502/503/504); a failure after delivery (timeout, dropped connection, HTTP 500, a ``SandboxError``
  response) is never resent, so a program that breaks a server cannot break the next one too; 429
  (busy) is retried with backoff until `busy_timeout_s`, without counting as a failure;
- a process-wide circuit breaker (transport failures and 502-504 only): once open, calls fail fast with
  `SandboxUnavailableError` and a loud, rate-limited log line, and every `breaker_reset_s` one caller
  pings the server; the first answer closes it.
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
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import SandboxError
from . import frames
from .base import RunResult, RunSpec, SandboxUnavailableError
from .breaker import CircuitBreaker

logger = logging.getLogger(__name__)

DEFAULT_IN_FLIGHT = 64  # for a server that does not report its slots
_RETRIED_STATUS = (502, 503, 504)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """HTTP client behaviour (all from the `code` section of `m2rl_reward`).

    `max_in_flight` None sizes the in-flight requests to the server's slots (from its ``/health``; 64
    for a server that does not say); `retries` bounds resends of undelivered requests; `busy_timeout_s`
    bounds how long a request keeps retrying HTTP 429; `breaker_reset_s` is the probe interval.
    """

    max_in_flight: int | None = None
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    request_slack_s: float = 10.0
    connect_timeout_s: float = 5.0
    busy_timeout_s: float = 600.0
    breaker_failures: int = 5
    breaker_reset_s: float = 0.5


class RequestError(SandboxError):
    """A request failed. `delivered`: the server may have received it (then it is never resent);
    `transport`: the failure says something about the server's health (it counts for the breaker)."""

    def __init__(self, message: str, *, delivered: bool, transport: bool = False):
        super().__init__(message)
        self.delivered, self.transport = delivered, transport


class _Retry(Exception):
    def __init__(self, message: str, *, breaker: bool, busy: bool = False):
        super().__init__(message)
        self.breaker, self.busy = breaker, busy


class _Limiter:
    """A semaphore whose size can change (once the server has said how many slots it has)."""

    def __init__(self, limit: int):
        self.limit, self.active = limit, 0
        self._changed = asyncio.Event()

    async def __aenter__(self) -> None:
        while self.active >= self.limit:
            self._changed.clear()
            await self._changed.wait()
        self.active += 1

    async def __aexit__(self, *exc: Any) -> None:
        self.active -= 1
        self._changed.set()

    def resize(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._changed.set()


class _HttpTransport:
    """Requests over HTTP (aiohttp, one pooled session per event loop)."""

    def __init__(self, base_url: str, unix_path: str | None, connect_timeout_s: float):
        if unix_path:
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(unix_path, limit=0)
        else:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        self.session = aiohttp.ClientSession(connector=connector)
        self.base_url, self.connect_timeout_s = base_url, connect_timeout_s

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def aclose(self) -> None:
        await self.session.close()

    async def get(self, path: str, timeout: float) -> tuple[int, bytes] | None:
        """(status, body) of ``GET path``, or None when the server could not be reached in time."""
        limit = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, self.connect_timeout_s))
        try:
            async with self.session.get(f"{self.base_url}{path}", timeout=limit) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    async def run(self, payload: bytes, deadline: float) -> tuple[int, bytes]:
        """(status, body) of ``POST /run_code``; raises `_Retry` (not delivered) or a transport `RequestError`."""
        timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=self.connect_timeout_s)
        headers = {"Content-Type": "application/json"}
        try:
            async with self.session.post(
                f"{self.base_url}/run_code", data=payload, headers=headers, timeout=timeout
            ) as resp:
                return resp.status, await resp.read()
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was delivered
            raise _Retry(f"{type(exc).__name__}: {exc}", breaker=True) from None
        except asyncio.TimeoutError:
            raise _transport(f"no response within {deadline:.0f} s") from None
        except aiohttp.ClientError as exc:  # the connection broke after the request went out
            raise _transport(f"{type(exc).__name__}: {exc}") from None


class _Stale(Exception):
    """A kept frame connection turned out closed by the server before the request was written."""


class _FramesTransport:
    """Requests in `frames` over a Unix socket (the embedded backend): a pool of idle connections per loop."""

    def __init__(self, path: str, connect_timeout_s: float):
        self.path, self.connect_timeout_s = path, connect_timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def _connection(self, pooled: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """(reader, writer, whether it is a kept one): an idle connection if `pooled` and one is left, else a new one."""
        while pooled and self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer, True
            writer.close()  # the server closed it while it was idle (e.g. it restarted)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.path), self.connect_timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:  # never connected: nothing was delivered
            raise _Retry(f"cannot connect to {self.path}: {type(exc).__name__}: {exc}", breaker=True) from None
        return reader, writer, False

    async def _exchange(self, op: int, payload: bytes, deadline: float) -> tuple[int, bytes]:
        try:
            return await self._exchange_once(op, payload, deadline, pooled=True)
        except _Stale:  # a kept connection the server had closed (it restarted): the request never got there
            return await self._exchange_once(op, payload, deadline, pooled=False)

    async def _exchange_once(self, op: int, payload: bytes, deadline: float, *, pooled: bool) -> tuple[int, bytes]:
        reader, writer, kept = await self._connection(pooled)
        expired = []

        def expire() -> None:
            expired.append(True)
            writer.transport.abort()

        timer = asyncio.get_running_loop().call_later(deadline, expire)
        done = False
        try:
            writer.write(frames.request_frame(op, payload))
            head = await reader.readexactly(frames.RESPONSE_HEAD.size)
            status, size = frames.RESPONSE_HEAD.unpack(head)
            body = await reader.readexactly(size)
            done = True
        except (asyncio.IncompleteReadError, OSError) as exc:
            if expired:
                raise _transport(f"no response within {deadline:.0f} s") from None
            if kept and isinstance(exc, BrokenPipeError):  # the write found the peer gone: nothing was read
                raise _Stale from None
            raise _transport(f"the connection broke: {type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            if done and not self.closed:
                self._idle.append((reader, writer))
            else:  # also when cancelled: closing the connection makes the server stop the run
                writer.close()
        return status, body

    async def get(self, path: str, timeout: float) -> tuple[int, bytes] | None:
        op = {"/health": frames.OP_HEALTH, "/v1/ping": frames.OP_PING}[path]
        try:
            return await self._exchange(op, b"", timeout)
        except (_Retry, RequestError):
            return None

    async def run(self, payload: bytes, deadline: float) -> tuple[int, bytes]:
        return await self._exchange(frames.OP_RUN, payload, deadline)


@dataclass(slots=True)
class _LoopState:
    transport: _HttpTransport | _FramesTransport
    limiter: _Limiter
    keeper: Any  # the async generator that closes the transport when the loop shuts down
    discovery: asyncio.Lock = field(default_factory=asyncio.Lock)  # callers wait for the one asking /health


async def _close_at_loop_shutdown(transport: _HttpTransport | _FramesTransport) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await transport.aclose()


def split_url(url: str) -> tuple[str, str | None]:
    """(base HTTP URL, Unix socket path or None). Accepts a trailing ``/run_code`` and ``unix:///path``."""
    url = url.strip()
    if url.startswith("unix://"):
        return "http://localhost", url[len("unix://") :]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"sandbox URL must start with http://, https:// or unix://, got {url!r}")
    return url.rstrip("/").removesuffix("/run_code"), None


def adapt(spec: RunSpec, features: frozenset[str]) -> dict[str, Any]:
    """The request body for a server with `features`: CPU limits become wall-clock ones where unknown."""
    body = spec.to_json()
    if "cpu_timeout" not in features:
        for cpu, wall in (("cpu_timeout", "run_timeout"), ("compile_cpu_timeout", "compile_timeout")):
            value = body.pop(cpu, None)
            if value is not None:
                body[wall] = value
    return body


class FusionClient:
    """`Sandbox` backend that posts `RunSpec`s to a SandboxFusion-compatible server.

    Args:
        url: Base URL (``http://host:8080``; a trailing ``/run_code`` is accepted) or ``unix:///path``.
        settings: Concurrency, retries, backoff and breaker thresholds.
        label: What to call the sandbox in logs (default: the URL).
        alive: Optional liveness check of a local server process; when it says False after a failed
            attempt, retrying stops at once.
        frames: Speak `frames` (our server's ``--frames`` socket; `url` is then ``unix:///path`` of
            that socket) instead of HTTP.
    """

    def __init__(
        self,
        url: str,
        settings: ClientSettings | None = None,
        *,
        label: str | None = None,
        alive: Callable[[], bool] | None = None,
        frames: bool = False,
    ):
        self.settings = settings or ClientSettings()
        self._alive = alive
        self.base_url, self._unix_path = split_url(url)
        if frames and not self._unix_path:
            raise ValueError(f"the frames protocol needs a unix:// URL, got {url!r}")
        self._frames = frames
        self.url = url if label is None else label
        self.breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_reset_s)
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._counts = {"requests": 0, "retries": 0, "busy": 0, "failures": 0, "unavailable": 0, "sandbox_errors": 0}
        self._last_unavailable_log = 0.0
        self._atexit = False
        self.server_slots: int | None = None
        self.features: frozenset[str] = frozenset()
        self._discovered_at: float | None = None

    def describe(self) -> str:
        return self.url

    def stats(self) -> Mapping[str, Any]:
        with self._lock:
            counts = dict(self._counts)
        return {**counts, "url": self.url, "breaker": self.breaker.state, "breaker_opened": self.breaker.times_opened,
                "server_slots": self.server_slots}  # fmt: skip

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
        timeout = self.settings.connect_timeout_s
        if self._frames:
            assert self._unix_path is not None
            transport: _HttpTransport | _FramesTransport = _FramesTransport(self._unix_path, timeout)
        else:
            transport = _HttpTransport(self.base_url, self._unix_path, timeout)
        keeper = _close_at_loop_shutdown(transport)
        await keeper.__anext__()
        state = _LoopState(transport, _Limiter(self.settings.max_in_flight or DEFAULT_IN_FLIGHT), keeper)
        with self._lock:
            self._loops[loop] = state
            if not self._atexit:
                atexit.register(self._close_at_exit)
                self._atexit = True
        return state

    async def _discover(self, state: _LoopState) -> None:
        """Read the server's slots and features from ``/health`` (again after 5 s while it cannot be reached)."""
        now = time.monotonic()
        if self._discovered_at is not None and now - self._discovered_at < 5.0:
            return
        self._discovered_at = now
        answer = await state.transport.get("/health", 5.0)
        if answer is None:
            return
        try:
            body = json.loads(answer[1]) if answer[0] == 200 else None
        except ValueError:
            body = None
        slots = body.get("slots_total") if isinstance(body, Mapping) else None
        if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0:
            self.features = frozenset(f for f in body.get("features", ()) if isinstance(f, str))
            self.server_slots = slots
        else:
            self.server_slots = 0  # it answered, but does not say: keep the defaults

    def _size(self, state: _LoopState) -> None:
        if self.settings.max_in_flight is None and self.server_slots and state.limiter.limit != self.server_slots:
            state.limiter.resize(self.server_slots)

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
            SandboxUnavailableError: the breaker is open and the server did not answer a probe (nothing sent).
            RequestError: the request failed (`delivered` says whether the server may have run it), or the
                server rejected it (4xx) or answered something that is not a `/run_code` response.
        """
        state = await self._state()
        if self.server_slots is None:
            async with state.discovery:
                if self.server_slots is None:
                    await self._discover(state)
        self._size(state)
        async with state.limiter:
            return await self._run_with_retries(state.transport, spec)

    def _unavailable(self, last_error: str) -> SandboxUnavailableError:
        self._count("unavailable")
        now = time.monotonic()
        if now - self._last_unavailable_log > 10.0:
            self._last_unavailable_log = now
            logger.error(
                "CODE SANDBOX UNAVAILABLE at %s (circuit breaker open, next probe in %.1f s): code samples score 0 "
                "with reason sandbox_unavailable (%d so far). Last error: %s",
                self.url,
                self.breaker.retry_in(),
                self._counts["unavailable"],
                last_error or "-",
            )
        return SandboxUnavailableError(
            f"code sandbox at {self.url} is unavailable (circuit breaker open; last error: {last_error or '-'})"
        )

    async def _gate(self, transport: _HttpTransport | _FramesTransport, last_error: str) -> None:
        """Pass when the breaker is closed, or a probe we took finds the server up; else raise unavailable."""
        if self.breaker.allow():
            return
        if self.breaker.take_probe():
            if await self._ping(transport):
                self.breaker.record_success()
                logger.warning("code sandbox at %s answers again; circuit breaker closed", self.url)
                return
            self.breaker.probe_failed()
        raise self._unavailable(last_error)

    async def ping(self) -> bool:
        """Does the server answer ``GET /v1/ping``?"""
        return await self._ping((await self._state()).transport)

    @staticmethod
    async def _ping(transport: _HttpTransport | _FramesTransport) -> bool:
        answer = await transport.get("/v1/ping", 2.0)
        return answer is not None and answer[0] == 200

    async def _run_with_retries(self, transport: _HttpTransport | _FramesTransport, spec: RunSpec) -> RunResult:
        s = self.settings
        body = adapt(spec, self.features)
        deadline = body["compile_timeout"] + body["run_timeout"] + s.request_slack_s
        payload = json.dumps(body).encode()
        last_error, attempt, busy_until = "", 0, time.monotonic() + s.busy_timeout_s
        while True:
            await self._gate(transport, last_error)
            self._count("requests")
            try:
                result = await self._post(transport, payload, deadline)
            except _Retry as exc:
                last_error = str(exc)
                if exc.busy:
                    self._count("busy")
                    self.breaker.record_success()  # it answered: it is up
                    if time.monotonic() >= busy_until:
                        raise RequestError(f"code sandbox at {self.url} stayed busy (HTTP 429) for "
                                           f"{s.busy_timeout_s:.0f} s; last: {last_error}", delivered=False) from None  # fmt: skip
                else:
                    self._failure(last_error, exc.breaker)
                    attempt += 1
                    if attempt > s.retries or (self._alive is not None and not self._alive()):
                        raise RequestError(f"code sandbox at {self.url} failed {attempt} attempts; last error: "
                                           f"{last_error}", delivered=False) from None  # fmt: skip
                self._count("retries")
                delay = min(s.backoff_max_s, s.backoff_s * 2 ** min(attempt, 16)) * (0.5 + self._rng.random())
                await asyncio.sleep(delay)
                continue
            except RequestError as exc:
                if exc.transport:
                    self._failure(str(exc), True)
                else:
                    self.breaker.record_success()  # the server answered: it is up, the request is at fault
                raise
            self.breaker.record_success()
            return result

    def _failure(self, message: str, breaker: bool) -> None:
        self._count("failures")
        if breaker and self.breaker.record_failure():
            logger.error(
                "CODE SANDBOX at %s failed %d times in a row (last: %s); opening the circuit breaker (probing every "
                "%.1f s)", self.url, self.settings.breaker_failures, message, self.settings.breaker_reset_s,
            )  # fmt: skip

    async def _post(self, transport: _HttpTransport | _FramesTransport, payload: bytes, deadline: float) -> RunResult:
        status, body = await transport.run(payload, deadline)
        text = body[:300].decode(errors="replace")
        if status == 429:
            raise _Retry(f"HTTP 429 (busy): {text}", breaker=False, busy=True)
        if status in _RETRIED_STATUS:  # a gateway or an unavailable server: the program did not run
            raise _Retry(f"HTTP {status}: {text}", breaker=True)
        if status != 200:
            raise RequestError(f"code sandbox at {self.url} answered HTTP {status}: {text}", delivered=True)
        try:
            result = RunResult.from_json(json.loads(body))
        except ValueError as exc:
            raise RequestError(f"code sandbox at {self.url} sent a malformed /run_code response: {exc}",
                               delivered=True) from None  # fmt: skip
        if result.status == "SandboxError":
            self._count("sandbox_errors")
            raise RequestError(f"code sandbox at {self.url} failed to run the program: {result.message[:300]}",
                               delivered=True)  # fmt: skip
        return result


def _transport(message: str) -> RequestError:
    return RequestError(message, delivered=True, transport=True)
