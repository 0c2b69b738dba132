"""Teacher servers: SGLang commands with GPU assignment, health waiting, and child supervision.

Pins: one `python -m sglang.launch_server` per served teacher with explicit GPUs respected and the
rest assigned in order; waiting succeeds once every URL is healthy and otherwise names each teacher,
domain and URL still down; `serve` stops its own children when one of them exits or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

import pytest

from m2rl_slime.config import parse_dataclass
from m2rl_slime.errors import ConfigError, TeacherError
from m2rl_slime.opd.config import OPDConfig
from m2rl_slime.opd.servers import ServerCommand, serve, server_commands, wait_for_teachers


def config(teachers) -> OPDConfig:
    return parse_dataclass(OPDConfig, {"teachers": teachers}, "test")


def test_commands_assign_gpus_in_order_around_explicit_ones():
    cfg = config(
        {
            "math": {"urls": ["http://h:30001"], "serve": {"model_path": "/ckpt/math", "port": 30001}},
            "code": {"urls": ["http://h:30002"], "serve": {"model_path": "/ckpt/code", "port": 30002, "gpus": [1]}},
            "science": {
                "urls": ["http://h:30003"],
                "serve": {
                    "model_path": "/ckpt/sci",
                    "port": 30003,
                    "tp": 2,
                    "extra_args": ["--context-length", "20480"],
                },
            },
            "if": {"urls": ["http://other:1"]},  # served elsewhere: no command
        }
    )
    commands = server_commands(cfg, python="/opt/py")
    assert [(c.domain, c.gpus) for c in commands] == [("math", (0,)), ("code", (1,)), ("science", (2, 3))]
    sci = commands[2]
    assert sci.argv[:3] == ("/opt/py", "-m", "sglang.launch_server")
    assert sci.argv[sci.argv.index("--tp-size") + 1] == "2" and sci.argv[-2:] == ("--context-length", "20480")
    assert sci.shell().startswith("CUDA_VISIBLE_DEVICES=2,3 /opt/py -m sglang.launch_server --model-path /ckpt/sci")
    with pytest.raises(ConfigError, match="needs GPU\\(s\\) \\[2, 3\\] but this node has 3"):
        server_commands(cfg, num_gpus=3)
    with pytest.raises(ConfigError, match="no teacher has a `serve` block"):
        server_commands(config({"math": {"urls": ["http://h:1"]}}))


def test_wait_for_teachers_until_healthy(kit):
    server = kit.TeacherServer(healthy_after=2)
    ready = []

    async def body():
        url = await server.start()
        try:
            cfg = config({"math": {"urls": [url]}})
            await wait_for_teachers(cfg, timeout_s=10, interval_s=0.01, on_ready=lambda d, u: ready.append((d, u)))
        finally:
            await server.stop()

    asyncio.run(body())
    assert server.health_checks == 3 and ready == [("math", server.url)]


def test_wait_for_teachers_names_the_ones_down(kit, unused_port):
    server = kit.TeacherServer()

    async def body():
        url = await server.start()
        try:
            cfg = config(
                {"math": {"urls": [url]}, "code": {"urls": [f"http://127.0.0.1:{unused_port}"], "name": "coder"}}
            )
            await wait_for_teachers(cfg, timeout_s=0.3, interval_s=0.05)
        finally:
            await server.stop()

    with pytest.raises(TeacherError) as info:
        asyncio.run(body())
    message = str(info.value)
    assert message.startswith("1 teacher URL(s) not healthy after 0.3 s")
    assert f"teacher 'coder' (domain 'code') at http://127.0.0.1:{unused_port}/health_generate" in message
    assert "'math'" not in message


def _sleeper(domain: str, seconds: float) -> ServerCommand:
    argv = (sys.executable, "-c", f"import time; time.sleep({seconds})")
    return ServerCommand(domain, domain, argv, (0,), 1)


def test_serve_stops_siblings_when_one_exits(tmp_path):
    commands = [_sleeper("math", 0.2), _sleeper("code", 60)]
    assert serve(commands, log_dir=tmp_path, poll_s=0.05) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code.log", "math.log"]


def test_serve_stops_children_on_sigterm(tmp_path):
    original = signal.getsignal(signal.SIGTERM)

    def send_once_handled() -> None:  # only signal ourselves once serve() has installed its handler
        while signal.getsignal(signal.SIGTERM) is original:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=send_once_handled, daemon=True)
    thread.start()
    assert serve([_sleeper("math", 60)], log_dir=tmp_path, poll_s=0.05) == 0
    thread.join(5)
    assert signal.getsignal(signal.SIGTERM) is original
