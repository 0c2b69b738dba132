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

from .conftest import require_sandbox

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


def start_server(*flags: str) -> tuple[str, subprocess.Popen]:
    """`python -m m2rl_slime.sandbox serve` on a free loopback port; waits until it answers."""
    require_sandbox()
    port = _free_port()
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "serve", "--port", str(port), "--memory-mb", "512", *flags]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if _get(url + "/v1/ping") == (200, "pong"):
                return url, proc
        except OSError:
            pass
        assert proc.poll() is None, f"the sandbox server exited: {proc.stdout.read()[-2000:]}"
        assert time.monotonic() < deadline, "the sandbox server did not start"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server():
    """2 slots in 2 processes."""
    url, proc = start_server("--workers", "2", "--processes", "2")
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
    assert health["slots_total"] == 2 and "cpu_timeout" in health["features"]  # what clients size themselves to


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
    url, proc = start_server("--workers", "1", "--processes", "1", "--max-queue", "1")
    try:
        body = {"code": "import time\ntime.sleep(1)", "language": "python"}
        with ThreadPoolExecutor(4) as pool:
            statuses = sorted(status for status, _ in pool.map(lambda _: _post(url + "/run_code", body), range(4)))
        assert statuses == [200, 200, 429, 429]  # one running, one waiting, the rest told to back off
        assert _get(url + "/health")[1]["waiting"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_removes_the_directories_of_a_killed_predecessor(tmp_path):
    url, first = start_server("--workers", "1", "--work-root", str(tmp_path))
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith("m2rl-sandbox-")
    first.kill()  # SIGKILL: no cleanup of its own
    first.wait(timeout=30)
    assert os.listdir(tmp_path) == left
    url, second = start_server("--workers", "1", "--work-root", str(tmp_path))
    try:
        now = os.listdir(tmp_path)
        assert left[0] not in now and len(now) == 1
    finally:
        second.terminate()
        assert second.wait(timeout=30) == 0
    assert os.listdir(tmp_path) == []


def test_a_multi_process_server_serves_frames_and_finishes_them_on_sigterm(tmp_path):
    path = str(tmp_path / "sandbox.frames")
    _, proc = start_server("--workers", "2", "--processes", "2", "--frames", path)
    client = FusionClient(f"unix://{path}", frames=True)

    async def go():
        spec = RunSpec("import os, time\ntime.sleep(1.5)\nprint('finished')")
        tasks = [asyncio.ensure_future(client.run(spec)) for _ in range(2)]
        await asyncio.sleep(0.7)
        proc.send_signal(signal.SIGTERM)
        return await asyncio.gather(*tasks)

    try:
        results = asyncio.run(go())
        assert [r.run_result.stdout for r in results] == ["finished\n"] * 2
        assert proc.wait(timeout=30) == 0
        assert not os.path.exists(path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
