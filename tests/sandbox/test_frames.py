"""The embedded backend's framed protocol (`m2rl_slime.sandbox.frames`): the client's rules over frames, the
frame server's handling of hostile or impatient clients, and the real server answering frames as it answers HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct

import pytest

from m2rl_slime.sandbox import frames
from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import ClientSettings, FusionClient, RequestError

from .test_client import OK_BODY

FAST = ClientSettings(retries=2, backoff_s=0.01, backoff_max_s=0.02, busy_timeout_s=5.0)
SPEC = RunSpec("print('ok')", run_timeout=1.0, compile_timeout=1.0)


class FakeFrames:
    """A frame server (the real `frames.FrameServer`) whose run answers follow `script`, then repeat the last one.

    An exception in the script is raised by the handler (the server must answer 500).
    """

    def __init__(self, path: str, script, *, health=None, delay: float = 0.0):
        self.path, self.script, self.health, self.delay = path, list(script), health, delay
        self.hits = self.cancelled = 0
        self.bodies: list[dict] = []
        self.peers: set[int] = set()

    async def answer(self, op: int, payload: bytes) -> tuple[int, bytes]:
        if op == frames.OP_HEALTH:
            if self.health is None:
                return 404, frames.detail("Not Found")
            return 200, json.dumps(self.health).encode()
        if op == frames.OP_PING:
            return 200, b'"pong"'
        self.hits += 1
        self.bodies.append(json.loads(payload))
        self.peers.update(id(conn) for conn in self.listener.connections)
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        status, body = self.script[min(self.hits, len(self.script)) - 1]
        if isinstance(body, Exception):
            raise body
        return status, json.dumps(body).encode()

    async def __aenter__(self) -> str:
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.listener = frames.FrameListener(self.answer)
        await self.listener.start(path=self.path)
        return f"unix://{self.path}"

    async def __aexit__(self, *exc) -> None:
        await self.listener.stop(0.0)

    @property
    def connections(self) -> int:
        """Connections that carried a run request."""
        return len(self.peers)


def test_runs_and_health_travel_in_frames_over_one_kept_connection(tmp_path):
    async def go():
        fake = FakeFrames(
            str(tmp_path / "f.sock"), [(200, OK_BODY)], health={"slots_total": 3, "features": ["cpu_timeout"]}
        )
        async with fake as url:
            client = FusionClient(url, FAST, frames=True)
            results = [await client.run(RunSpec("x", cpu_timeout=2.0, memory_limit_mb=64)) for _ in range(5)]
        return fake, client, results

    fake, client, results = asyncio.run(go())
    assert all(r.status == "Success" and r.run_result.stdout == "ok\n" for r in results)
    assert client.server_slots == 3 and "cpu_timeout" in client.features  # read from the health frame
    assert fake.bodies[0]["cpu_timeout"] == 2.0 and fake.bodies[0]["memory_limit_MB"] == 64
    assert fake.connections == 1  # the idle connection is kept and reused


def test_busy_answers_are_retried_and_rejections_are_never_resent(tmp_path):
    async def go(script):
        fake = FakeFrames(str(tmp_path / "f.sock"), script)
        async with fake as url:
            try:
                return fake, await FusionClient(url, FAST, frames=True).run(SPEC)
            except RequestError as exc:
                return fake, exc

    fake, result = asyncio.run(go([(429, {"detail": "busy"}), (429, {"detail": "busy"}), (200, OK_BODY)]))
    assert result.status == "Success" and fake.hits == 3
    fake, error = asyncio.run(go([(400, {"detail": "language 'rust' is not supported here"})]))
    assert isinstance(error, RequestError) and error.delivered and "HTTP 400" in str(error) and fake.hits == 1
    fake, error = asyncio.run(go([(200, RuntimeError("handler bug"))]))
    assert isinstance(error, RequestError) and "HTTP 500" in str(error) and "handler bug" in str(error)
    assert fake.hits == 1  # delivered: a 500 is never resent


def test_a_request_past_its_deadline_fails_and_stops_its_run(tmp_path):
    async def go():
        fake = FakeFrames(str(tmp_path / "f.sock"), [(200, OK_BODY)], delay=30.0)
        async with fake as url:
            client = FusionClient(url, ClientSettings(retries=0, request_slack_s=0.1), frames=True)
            with pytest.raises(RequestError, match="no response within") as caught:
                await client.run(RunSpec("x", run_timeout=0.1, compile_timeout=0.1))
            for _ in range(100):
                if fake.cancelled:
                    break
                await asyncio.sleep(0.01)
        return fake, caught.value

    fake, error = asyncio.run(go())
    assert error.delivered and error.transport
    assert fake.cancelled == 1 and fake.hits == 1  # the server cancelled the run when the connection closed


def test_a_cancelled_caller_stops_its_run_on_the_server(tmp_path):
    async def go():
        fake = FakeFrames(str(tmp_path / "f.sock"), [(200, OK_BODY)], delay=30.0)
        async with fake as url:
            client = FusionClient(url, FAST, frames=True)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.run(SPEC), 0.3)
            for _ in range(100):
                if fake.cancelled:
                    break
                await asyncio.sleep(0.01)
            fake.delay = 0.0
            result = await client.run(SPEC)  # the client goes on with a new connection
        return fake, result

    fake, result = asyncio.run(go())
    assert fake.cancelled == 1 and result.status == "Success"


def test_no_server_means_not_delivered_and_a_restarted_one_is_reached_again(tmp_path):
    path = str(tmp_path / "f.sock")

    async def go():
        client = FusionClient(f"unix://{path}", FAST, frames=True)
        with pytest.raises(RequestError) as caught:
            await client.run(SPEC)
        first = FakeFrames(path, [(200, OK_BODY)])
        async with first:
            assert (await client.run(SPEC)).status == "Success"
        second = FakeFrames(path, [(200, OK_BODY)])  # the idle connection to the first one is stale now
        async with second:
            result = await client.run(SPEC)
        return caught.value, second, result

    error, second, result = asyncio.run(go())
    assert not error.delivered and "cannot connect" in str(error)
    assert result.status == "Success" and second.hits == 1


def test_frames_need_a_unix_url():
    with pytest.raises(ValueError, match="unix://"):
        FusionClient("http://127.0.0.1:1", frames=True)


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<BI", 9, 2) + b"{}",  # unknown op
        struct.pack("<BI", frames.OP_RUN, frames.MAX_FRAME + 1),  # too large
        frames.request_frame(frames.OP_PING, b"") * 2,  # a second request before the first was answered
    ],
    ids=["unknown-op", "oversized", "out-of-turn"],
)
def test_the_frame_server_closes_connections_that_break_the_protocol(tmp_path, data):
    path = str(tmp_path / "f.sock")

    async def go():
        fake = FakeFrames(path, [(200, OK_BODY)], delay=1.0)
        async with fake:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(data)
            received = await asyncio.wait_for(reader.read(), 5.0)  # until the server closes
            writer.close()
        return received

    assert asyncio.run(go()) == b""


# ---- the real server: frames and HTTP give the same answers ---------------------------------------------


def _http(path: str, body: bytes) -> tuple[int, dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        head = f"POST /run_code HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def _frame(path: str, body: bytes) -> tuple[int, dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(frames.request_frame(frames.OP_RUN, body))
        data = b""

        def complete() -> bool:
            head = frames.RESPONSE_HEAD.size
            return len(data) >= head and len(data) >= head + frames.RESPONSE_HEAD.unpack_from(data)[1]

        while not complete():
            chunk = sock.recv(1 << 16)
            assert chunk, "the frame server closed the connection"
            data += chunk
    status, _ = frames.RESPONSE_HEAD.unpack_from(data)
    return status, json.loads(data[frames.RESPONSE_HEAD.size :])


def test_the_server_answers_frames_exactly_as_it_answers_http(embedded):
    assert embedded._dir is not None
    http_path, frame_path = (os.path.join(embedded._dir, name) for name in ("sandbox.sock", "sandbox.frames"))
    cases = [
        b"{not json",
        json.dumps({"code": "print(1)", "language": "rust"}).encode(),
        json.dumps({"code": "print(input()[::-1])", "language": "python", "stdin": "abc\n"}).encode(),
    ]
    for body in cases:
        (http_status, http_body), (frame_status, frame_body) = _http(http_path, body), _frame(frame_path, body)
        assert http_status == frame_status
        for answer in (http_body, frame_body):
            for timing in ("execution_time", "cpu_time"):
                (answer.get("run_result") or {}).pop(timing, None)
        assert http_body == frame_body
    assert [http_status, http_body["run_result"]["stdout"]] == [200, "cba\n"]
