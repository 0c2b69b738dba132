"""Client for a remote workplace environment speaking the NeMo-Gym resources-server API.

`POST /seed_session` opens a session (its id comes back as a cookie and, from our server, in the body),
`POST /{tool_name}` with the JSON arguments runs a tool (`{"output": ...}`), and `POST /close_session`
frees it (our server's extension; NeMo-Gym servers lack it, so a 404 there is ignored). One aiohttp
session per client, a timeout on every request, capped retries only for requests that are safe to repeat:
a tool call is retried only when the connection could not be made (it never reached the server).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from typing import Any

from ..errors import M2RLError
from .env import StepResult, ToolCall, unavailable_tool

logger = logging.getLogger(__name__)

SESSION_COOKIE = "m2rl_session"
SESSION_HEADER = "X-M2RL-Session"
_ERROR_PREFIX = "Error executing tool '"


class EnvironmentUnavailable(M2RLError):
    """The remote environment could not be reached or answered with an error (infrastructure, not a tool)."""


def _decode(url: str, status: int, text: str) -> Any:
    """The JSON body of a response, or `EnvironmentUnavailable` for an HTTP error or a non-JSON body."""
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise EnvironmentUnavailable(f"POST {url}: HTTP {status}: not JSON: {text[:200]!r}") from None
    if status >= 400:
        detail = body.get("detail") if isinstance(body, dict) else body
        raise EnvironmentUnavailable(f"POST {url}: HTTP {status}: {detail}")
    return body


class RemoteEnvClient:
    """A shared HTTP client for one environment server.

    Args:
        base_url: e.g. ``http://127.0.0.1:12000``.
        timeout_s: Per-request timeout.
        retries: Attempts for repeatable requests (and for connection failures of tool calls).
    """

    def __init__(self, base_url: str, *, timeout_s: float = 30.0, retries: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                cookie_jar=aiohttp.DummyCookieJar(),  # the session id travels in an explicit header
                connector=aiohttp.TCPConnector(limit=256),
            )
            self._loop = loop
        return self._session

    async def _post(self, path: str, payload: Any, session_id: str | None, *, repeatable: bool) -> Any:
        import aiohttp

        url = f"{self.base_url}/{path}"
        headers = {SESSION_HEADER: session_id, "Cookie": f"{SESSION_COOKIE}={session_id}"} if session_id else None
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                async with self._client().post(url, json=payload, headers=headers) as resp:
                    status, text = resp.status, await resp.text()
            except aiohttp.ClientConnectorError as exc:  # never reached the server: always safe to retry
                last = exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not repeatable:
                    raise EnvironmentUnavailable(f"POST {url}: {type(exc).__name__}: {exc}") from None
                last = exc
            else:
                if status >= 500 and repeatable:
                    last = EnvironmentUnavailable(f"HTTP {status}: {text[:200]}")
                else:
                    return _decode(url, status, text)
            if attempt + 1 < self.retries:
                await asyncio.sleep(min(0.5 * 2**attempt, 4.0))
        raise EnvironmentUnavailable(f"POST {url}: failed after {self.retries} attempt(s): {last!r}")

    async def open_session(self) -> str:
        body = await self._post("seed_session", {}, None, repeatable=True)
        session_id = body.get("session_id") if isinstance(body, dict) else None
        if not isinstance(session_id, str):
            raise EnvironmentUnavailable(f"{self.base_url}/seed_session returned no session_id: {body!r:.200}")
        return session_id

    async def call(self, session_id: str, call: ToolCall) -> StepResult:
        body = await self._post(call.name, dict(call.arguments), session_id, repeatable=False)
        if not isinstance(body, dict) or "output" not in body:
            raise EnvironmentUnavailable(f"{self.base_url}/{call.name} returned no output: {body!r:.200}")
        output = body["output"]
        return StepResult(output, ok=not (isinstance(output, str) and output.startswith(_ERROR_PREFIX)))

    async def close_session(self, session_id: str) -> None:
        try:
            await self._post("close_session", {}, session_id, repeatable=True)
        except EnvironmentUnavailable as exc:
            logger.debug("closing session %s failed: %s", session_id, exc)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class RemoteEpisodeEnv:
    """One episode on a remote environment; calls to tools the task does not offer never leave the process."""

    def __init__(self, client: RemoteEnvClient, allowed: Collection[str] | None = None) -> None:
        self.client = client
        self.allowed = allowed
        self.session_id: str | None = None

    async def start(self) -> None:
        self.session_id = await self.client.open_session()

    async def call(self, call: ToolCall) -> StepResult:
        if self.allowed is not None and call.name not in self.allowed:
            return unavailable_tool(call.name, self.allowed)
        if self.session_id is None:
            raise EnvironmentUnavailable("call() before start()")
        return await self.client.call(self.session_id, call)

    async def close(self) -> None:
        if self.session_id is not None:
            await self.client.close_session(self.session_id)
            self.session_id = None


_clients: dict[tuple[str, float, int], RemoteEnvClient] = {}


def shared_client(base_url: str, timeout_s: float, retries: int) -> RemoteEnvClient:
    """The process-wide client for one environment server (one HTTP connection pool per process)."""
    key = (base_url, timeout_s, retries)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = RemoteEnvClient(base_url, timeout_s=timeout_s, retries=retries)
    return client
