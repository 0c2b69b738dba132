"""The `serve` command: SandboxFusion endpoints on loopback, error codes, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import FusionClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def _post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def server():
    """`python -m m2rl_slime.sandbox serve` on a loopback port, 2 slots in 2 processes."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "serve", "--port", str(port), "--workers", "2",
           "--processes", "2", "--memory-mb", "512"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(url + "/v1/ping") == (200, "pong"):
                break
        except OSError:
            pass
        if proc.poll() is not None:
            pytest.skip(f"the sandbox server cannot start here: {proc.stdout.read()[-2000:]}")
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield url, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def test_ping_and_health(server):
    url, _ = server
    assert _get(url + "/v1/ping") == (200, "pong")
    status, health = _get(url + "/health")
    assert status == 200 and health["status"] == "ok"
    assert health["isolation"] == "namespaces" and health["network_isolated"] is True
    assert health["slots"] == 1 and "python" in health["languages"]  # 2 slots split over 2 processes


def test_run_code_speaks_fusion_json(server):
    url, _ = server
    status, body = _post(url + "/run_code", {"code": "print(input()[::-1])", "language": "python", "stdin": "abc\n"})
    assert status == 200
    assert body["status"] == "Success" and body["run_result"]["stdout"] == "cba\n"
    assert body["run_result"]["status"] == "Finished" and body["run_result"]["return_code"] == 0
    assert set(body) >= {"status", "message", "compile_result", "run_result", "files", "executor_pod_name"}
    status, body = _post(url + "/run_code", {"code": "raise SystemExit(3)", "language": "python"})
    assert body["status"] == "Failed" and body["run_result"]["return_code"] == 3


@pytest.mark.parametrize(
    "body,status,words",
    [
        (b"{not json", 422, "invalid"),
        ({"language": "python"}, 422, "code"),
        ({"code": "x", "language": "cobol"}, 400, "cobol"),
        ({"code": "x", "run_timeout": 10_000}, 400, "run_timeout"),
        ({"code": "x", "files": {"../escape": "eA=="}}, 400, "escape"),
    ],
)
def test_bad_requests(server, body, status, words):
    url, _ = server
    got, answer = _post(url + "/run_code", body)
    assert got == status and words in answer["detail"]


def test_client_against_the_server(server):
    url, _ = server
    client = FusionClient(url + "/run_code")

    async def go():
        return await asyncio.gather(*[client.run(RunSpec(f"print({i} * 2)")) for i in range(6)])

    results = asyncio.run(go())
    assert [r.run_result.stdout for r in results] == [f"{i * 2}\n" for i in range(6)]


def test_graceful_shutdown_finishes_in_flight_runs(server):
    url, proc = server
    client = FusionClient(url)

    async def go():
        task = asyncio.ensure_future(client.run(RunSpec("import time\ntime.sleep(1.5)\nprint('finished')")))
        await asyncio.sleep(0.7)
        proc.send_signal(signal.SIGTERM)
        return await task

    result = asyncio.run(go())
    assert result.status == "Success" and result.run_result.stdout == "finished\n"
    assert proc.wait(timeout=30) == 0


def test_an_overloaded_server_answers_429():
    port = _free_port()
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "serve", "--port", str(port), "--workers", "1",
           "--processes", "1", "--max-queue", "1", "--memory-mb", "512"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(url + "/v1/ping")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.skip("the sandbox server cannot start here")
                assert time.monotonic() < deadline
                time.sleep(0.1)
        body = {"code": "import time\ntime.sleep(1)", "language": "python"}
        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(status for status, _ in pool.map(lambda _: _post(url + "/run_code", body), range(4)))
        assert statuses == [200, 200, 429, 429]  # one running, one waiting, the rest told to back off
        assert _get(url + "/health")[1]["waiting"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
