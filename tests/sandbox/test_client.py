"""The HTTP client against loopback fake servers: retries, backoff, circuit breaker, deadlines, many loops."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from aiohttp import web

from m2rl_slime.errors import SandboxError
from m2rl_slime.sandbox.base import RunSpec, SandboxUnavailableError
from m2rl_slime.sandbox.client import ClientSettings, FusionClient, split_url

OK_BODY = {
    "status": "Success",
    "message": "",
    "compile_result": None,
    "run_result": {"status": "Finished", "execution_time": 0.01, "return_code": 0, "stdout": "ok\n", "stderr": ""},
    "files": {},
}
FAST = ClientSettings(retries=2, backoff_s=0.01, backoff_max_s=0.02, breaker_failures=3, breaker_reset_s=0.3)
SPEC = RunSpec("print('ok')", run_timeout=1.0, compile_timeout=1.0)


class FakeServer:
    """Answers /run_code with the scripted (status, body) pairs, then repeats the last one."""

    def __init__(self, script, delay: float = 0.0):
        self.script = list(script)
        self.delay = delay
        self.hits = 0
        self.bodies = []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        self.bodies.append(await request.json())
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.script[min(self.hits, len(self.script)) - 1]
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/run_code", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


def test_split_url():
    assert split_url("http://h:8080/run_code") == ("http://h:8080", None)
    assert split_url("https://h/") == ("https://h", None)
    assert split_url("unix:///tmp/s.sock") == ("http://localhost", "/tmp/s.sock")
    with pytest.raises(ValueError, match="http://"):
        split_url("h:8080")


def test_sends_the_fusion_request_and_parses_the_response():
    async def go():
        fake = FakeServer([(200, OK_BODY)])
        async with fake as url:
            result = await FusionClient(url + "/run_code", FAST).run(RunSpec("x", memory_limit_mb=128))
        return fake, result

    fake, result = asyncio.run(go())
    assert result.status == "Success" and result.run_result.stdout == "ok\n"
    assert fake.bodies[0]["memory_limit_MB"] == 128 and fake.bodies[0]["language"] == "python"


def test_retries_5xx_then_succeeds():
    async def go():
        fake = FakeServer([(503, "busy"), (500, "oops"), (200, OK_BODY)])
        async with fake as url:
            client = FusionClient(url, FAST)
            result = await client.run(SPEC)
        return fake, client, result

    fake, client, result = asyncio.run(go())
    assert result.status == "Success" and fake.hits == 3
    assert client.stats()["retries"] == 2 and client.stats()["breaker"] == "closed"


def test_persistent_5xx_raises_then_breaker_fails_fast_then_recovers():
    async def go():
        fake = FakeServer([(500, "down")] * 4 + [(200, OK_BODY)])
        async with fake as url:
            client = FusionClient(url, FAST)
            with pytest.raises(SandboxError, match="failed 3 attempts.*HTTP 500"):
                await client.run(SPEC)
            hits = fake.hits
            with pytest.raises(SandboxUnavailableError, match=url):
                await client.run(SPEC)
            assert fake.hits == hits  # nothing sent while open
            await asyncio.sleep(FAST.breaker_reset_s)
            with pytest.raises(SandboxError):  # the half-open probe fails (still 500): open again
                await client.run(SPEC)
            await asyncio.sleep(FAST.breaker_reset_s)
            result = await client.run(SPEC)  # probe succeeds: closed
        return client, result

    client, result = asyncio.run(go())
    assert result.status == "Success"
    stats = client.stats()
    assert stats["breaker"] == "closed" and stats["breaker_opened"] == 2 and stats["unavailable"] >= 1


def test_4xx_and_malformed_responses_are_not_retried():
    async def go(script):
        fake = FakeServer(script)
        async with fake as url:
            with pytest.raises(SandboxError) as info:
                await FusionClient(url, FAST).run(SPEC)
        return fake.hits, str(info.value)

    hits, message = asyncio.run(go([(400, '{"detail": "language \'cobol\' is not supported"}')]))
    assert hits == 1 and "HTTP 400" in message and "cobol" in message
    hits, message = asyncio.run(go([(200, "not json")]))
    assert hits == 1 and "malformed" in message
    hits, message = asyncio.run(go([(200, {"status": "Nope"})]))
    assert hits == 1 and "malformed" in message


def test_sandbox_error_responses_are_retried_but_do_not_open_the_breaker():
    bad = {**OK_BODY, "status": "SandboxError", "message": "runner crashed", "run_result": None}

    async def go():
        fake = FakeServer([(200, bad)])
        async with fake as url:
            client = FusionClient(url, FAST)
            for _ in range(2):
                with pytest.raises(SandboxError, match="runner crashed"):
                    await client.run(SPEC)
        return fake, client

    fake, client = asyncio.run(go())
    assert fake.hits == 6 and client.stats()["breaker"] == "closed"


def test_a_hanging_server_never_hangs_the_caller():
    settings = ClientSettings(retries=1, backoff_s=0.01, request_slack_s=0.2, breaker_failures=10)
    spec = RunSpec("x", run_timeout=0.2, compile_timeout=0.1)

    async def go():
        fake = FakeServer([(200, OK_BODY)], delay=30)
        async with fake as url:
            started = time.monotonic()
            with pytest.raises(SandboxError, match="no response within"):
                await FusionClient(url, settings).run(spec)
            return time.monotonic() - started, fake.hits

    elapsed, hits = asyncio.run(go())
    assert hits == 2 and elapsed < 3.0


def test_connection_refused_opens_the_breaker():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = FusionClient(f"http://127.0.0.1:{port}", FAST)

    async def go():
        with pytest.raises(SandboxError, match="ClientConnectorError|Connect"):
            await client.run(SPEC)
        with pytest.raises(SandboxUnavailableError):
            await client.run(SPEC)

    started = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - started < 3.0
    assert client.stats()["breaker"] == "open"


def test_one_client_serves_many_event_loops_and_closes_their_sessions():
    async def serve_and_call(client_holder):
        fake = FakeServer([(200, OK_BODY)])
        async with fake as url:
            client = client_holder.setdefault("client", FusionClient(url, FAST))
            client.base_url = url  # each loop gets a fresh fake server on a new port
            return (await client.run(SPEC)).status

    holder: dict = {}
    assert [asyncio.run(serve_and_call(holder)) for _ in range(3)] == ["Success"] * 3
    client = holder["client"]
    assert len(client._loops) == 1  # closed loops are forgotten
    (state,) = client._loops.values()
    assert state.session.closed  # closed when its loop shut down (no "Unclosed client session")


def test_busy_429_is_retried_without_touching_the_breaker():
    async def go(script):
        fake = FakeServer(script)
        async with fake as url:
            client = FusionClient(url, FAST)
            try:
                result = await client.run(SPEC)
            except SandboxError as exc:
                result = exc
        return fake.hits, client, result

    hits, client, result = asyncio.run(go([(429, '{"detail": "busy"}'), (200, OK_BODY)]))
    assert hits == 2 and result.status == "Success"
    hits, client, result = asyncio.run(go([(429, '{"detail": "busy"}')]))
    assert hits == 3 and isinstance(result, SandboxError) and "429" in str(result)
    assert client.stats()["breaker"] == "closed" and client.stats()["breaker_opened"] == 0
