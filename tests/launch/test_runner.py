"""Pins the real runner: spawned services get their own process group and `stop` signals only that group
(a process the launcher did not start survives); HTTP health checks and port probes on loopback."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

from m2rl_slime.launch.runner import SystemRunner


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:  # a zombie counts as gone
        return handle.read().split()[2] != "Z"


def test_stop_kills_the_spawned_group_only(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        runner = SystemRunner(stop_grace_s=5)
        pid_file = tmp_path / "child.pid"
        script = f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); open({str(pid_file)!r}, 'w').write(str(p.pid)); print('up', flush=True); time.sleep(30)"
        handle = runner.spawn([sys.executable, "-c", script], {"M2RL_TEST": "1"}, str(tmp_path / "logs" / "svc.log"))
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        grandchild = int(pid_file.read_text())
        assert handle.poll() is None
        handle.stop()
        assert handle.poll() is not None
        deadline = time.monotonic() + 5
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild)
        assert bystander.poll() is None  # not started by the runner: untouched
        assert "up" in (tmp_path / "logs" / "svc.log").read_text()
    finally:
        bystander.kill()
        bystander.wait()


def test_call_and_capture():
    runner = SystemRunner()
    assert runner.call([sys.executable, "-c", "import sys; sys.exit(3)"]) == 3
    assert runner.capture([sys.executable, "-c", "print('hi')"]) == (0, "hi\n")
    assert runner.call(["m2rl-no-such-command"]) == 127


def test_http_ok_and_port_open():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        runner = SystemRunner()
        assert runner.http_ok(f"http://127.0.0.1:{port}/health")
        assert not runner.http_ok(f"http://127.0.0.1:{port}/other")
        assert runner.port_open("127.0.0.1", port)
    finally:
        server.shutdown()
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        unused = free.getsockname()[1]
    assert not SystemRunner().port_open("127.0.0.1", unused)
    assert not SystemRunner().http_ok(f"http://127.0.0.1:{unused}/health")
