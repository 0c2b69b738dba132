"""The HTTP client against loopback fake servers: retries, backoff, circuit breaker, deadlines, many loops."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import pytest
from aiohttp import web

from m2rl_slime.errors import SandboxError
from m2rl_slime.sandbox.base import RunSpec, SandboxUnavailableError
from m2rl_slime.sandbox.client import ClientSettings, FusionClient, RequestError, adapt, split_url

OK_BODY = {
    "status": "Success",
    "message": "",
    "compile_result": None,
    "run_result": {"status": "Finished", "execution_time": 0.01, "return_code": 0, "stdout": "ok\n", "stderr": ""},
    "files": {},
}
FAST = ClientSettings(retries=2, backoff_s=0.01, backoff_max_s=0.02, breaker_failures=3, breaker_reset_s=0.3,
                      busy_timeout_s=5.0)  # fmt: skip
SPEC = RunSpec("print('ok')", run_timeout=1.0, compile_timeout=1.0)


class FakeServer:
    """Answers /run_code with the scripted (status, body) pairs, then repeats the last one.

    A status of 0 drops the connection without answering. `health` (a JSON body) is served at /health
    when given (404 otherwise, as SandboxFusion); /v1/ping answers "pong".
    """

    def __init__(self, script, delay: float = 0.0, health=None, port: int = 0):
        self.script = list(script)
        self.delay = delay
        self.health = health
        self.port = port
        self.hits = 0
        self.bodies = []
        self.active = self.most_active = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            self.bodies.append(await request.json())
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body = self.script[min(self.hits, len(self.script)) - 1]
            if status == 0:
                request.transport.close()
                raise ConnectionResetError("dropped on purpose")
            text = body if isinstance(body, str) else json.dumps(body)
            return web.Response(status=status, text=text, content_type="application/json")
        finally:
            self.active -= 1

    async def handle_health(self, _request: web.Request) -> web.Response:
        if self.health is None:
            return web.Response(status=404, text="Not Found")
        return web.json_response(self.health)

    async def handle_ping(self, _request: web.Request) -> web.Response:
        return web.json_response("pong")

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_post("/run_code", self.handle)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/v1/ping", self.handle_ping)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


def _free_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on (for now)
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def test_retries_gateway_errors_then_succeeds():
    async def go():
        fake = FakeServer([(503, "busy"), (502, "bad gateway"), (200, OK_BODY)])
        async with fake as url:
            client = FusionClient(url, FAST)
            result = await client.run(SPEC)
        return fake, client, result

    fake, client, result = asyncio.run(go())
    assert result.status == "Success" and fake.hits == 3
    assert client.stats()["retries"] == 2 and client.stats()["breaker"] == "closed"


@pytest.mark.parametrize(
    "answer,words",
    [
        ((500, "Internal Server Error"), "HTTP 500"),
        (
            (200, {**OK_BODY, "status": "SandboxError", "message": "runner crashed", "run_result": None}),
            "runner crashed",
        ),
        ((0, ""), "Disconnect|Connection|reset"),
    ],
    ids=["http-500", "sandbox-error-response", "dropped-connection"],
)
def test_a_failure_after_delivery_is_never_resent(answer, words):
    """The program may be what broke the server: sending it again would break the next one too."""

    async def go():
        fake = FakeServer([answer, (200, OK_BODY)])
        async with fake as url:
            client = FusionClient(url, FAST)
            with pytest.raises(RequestError, match=words) as info:
                await client.run(SPEC)
        return fake, info.value

    fake, error = asyncio.run(go())
    assert fake.hits == 1 and error.delivered


def test_persistent_gateway_errors_open_the_breaker_and_a_probe_closes_it():
    async def go():
        fake = FakeServer([(503, "down")] * 3 + [(200, OK_BODY)])
        async with fake as url:
            client = FusionClient(url, FAST)
            with pytest.raises(RequestError, match="failed 3 attempts.*HTTP 503"):
                await client.run(SPEC)
            hits = fake.hits
            with pytest.raises(SandboxUnavailableError, match=url):
                await client.run(SPEC)  # open, and no probe due yet: nothing sent
            assert fake.hits == hits
            await asyncio.sleep(FAST.breaker_reset_s)
            result = await client.run(SPEC)  # the probe (GET /v1/ping) finds it up: closed, request sent
        return client, result

    client, result = asyncio.run(go())
    assert result.status == "Success"
    stats = client.stats()
    assert stats["breaker"] == "closed" and stats["breaker_opened"] == 1 and stats["unavailable"] == 1


def test_the_breaker_closes_about_a_second_after_the_server_comes_back():
    """With the default settings: after a restart, samples score again within one probe interval."""
    port = _free_port()
    settings = ClientSettings(retries=0)  # the default breaker: 5 failures, probe every 0.5 s
    client = FusionClient(f"http://127.0.0.1:{port}", settings)

    async def go():
        for _ in range(settings.breaker_failures):
            with pytest.raises(RequestError, match="Connect"):
                await client.run(SPEC)
        with pytest.raises(SandboxUnavailableError):
            await client.run(SPEC)
        async with FakeServer([(200, OK_BODY)], port=port):
            await asyncio.sleep(1.0)
            return await client.run(SPEC)

    assert asyncio.run(go()).status == "Success"
    assert client.stats()["breaker"] == "closed"


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


def test_a_hanging_server_never_hangs_the_caller():
    settings = ClientSettings(retries=1, backoff_s=0.01, request_slack_s=0.2, breaker_failures=10)
    spec = RunSpec("x", run_timeout=0.2, compile_timeout=0.1)

    async def go():
        fake = FakeServer([(200, OK_BODY)], delay=30)
        async with fake as url:
            with pytest.raises(RequestError, match="no response within"):
                await FusionClient(url, settings).run(spec)
            return fake.hits

    assert asyncio.run(go()) == 1  # delivered: not sent again


def test_connection_refused_is_retried_then_opens_the_breaker():
    client = FusionClient(f"http://127.0.0.1:{_free_port()}", FAST)

    async def go():
        with pytest.raises(RequestError, match="ClientConnectorError|Connect") as info:
            await client.run(SPEC)
        assert not info.value.delivered
        with pytest.raises(SandboxUnavailableError):
            await client.run(SPEC)

    asyncio.run(go())
    assert client.stats()["breaker"] == "open" and client.stats()["retries"] == 2


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
    assert state.transport.closed  # closed when its loop shut down (no "Unclosed client session")


def test_busy_429_is_retried_until_the_busy_timeout_without_touching_the_breaker():
    async def go(script, settings):
        fake = FakeServer(script)
        async with fake as url:
            client = FusionClient(url, settings)
            try:
                result = await client.run(SPEC)
            except SandboxError as exc:
                result = exc
        return fake.hits, client, result

    settings = dataclasses.replace(FAST, retries=0, busy_timeout_s=0.3)
    hits, client, result = asyncio.run(go([(429, '{"detail": "busy"}')] * 4 + [(200, OK_BODY)], settings))
    assert hits == 5 and result.status == "Success"  # 429 never uses up `retries`
    hits, client, result = asyncio.run(go([(429, '{"detail": "busy"}')], settings))
    assert hits >= 2 and isinstance(result, RequestError) and "429" in str(result) and not result.delivered
    assert client.stats()["breaker"] == "closed" and client.stats()["breaker_opened"] == 0


def test_in_flight_requests_follow_the_servers_slots():
    async def go(health):
        fake = FakeServer([(200, OK_BODY)], delay=0.3, health=health)
        async with fake as url:
            client = FusionClient(url, ClientSettings())
            results = await asyncio.gather(*[client.run(SPEC) for _ in range(12)])
        return fake, client, results

    fake, client, results = asyncio.run(go({"slots_total": 2, "features": ["cpu_timeout"]}))
    assert all(r.status == "Success" for r in results)
    assert fake.most_active == 2 and client.stats()["server_slots"] == 2
    fake, _, _ = asyncio.run(go(None))  # a SandboxFusion server does not say: the default bound (64)
    assert fake.most_active > 2


def test_cpu_limits_are_sent_as_wall_clock_limits_to_servers_that_do_not_know_them():
    spec = RunSpec("x", run_timeout=7.0, cpu_timeout=2.0, compile_timeout=31.0, compile_cpu_timeout=10.0)
    plain = adapt(spec, frozenset())
    assert plain["run_timeout"] == 2.0 and plain["compile_timeout"] == 10.0 and "cpu_timeout" not in plain
    ours = adapt(spec, frozenset({"cpu_timeout"}))
    assert (ours["run_timeout"], ours["cpu_timeout"], ours["compile_cpu_timeout"]) == (7.0, 2.0, 10.0)
