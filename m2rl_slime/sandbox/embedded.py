"""The default backend: a private sandbox server this process starts on first use and stops at exit.

Why a child process rather than running the executor in-process: the executor must own a
single-threaded process (it changes its mount namespace and forks with a `preexec` step, which is
unsafe in a multi-threaded process such as a Ray actor), and forking a small server is much cheaper
than forking a trainer with gigabytes mapped. The child is `python -m m2rl_slime.sandbox serve` on a
Unix socket in a private 0700 directory; requests go through the same HTTP client as a remote
sandbox. If the child dies it is restarted (at most 3 times in 5 minutes); it exits by itself when
this process is gone.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..errors import SandboxError
from .base import RunResult, RunSpec, SandboxUnavailableError
from .client import ClientSettings, FusionClient
from .local import ExecutorSettings

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
_MAX_RESTARTS = 3
_RESTART_WINDOW_S = 300.0


def _ping_unix(path: str, timeout: float = 2.0) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /v1/ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and status_line[9:12] == b"200"
    except OSError:
        return False


def _server_argv(settings: ExecutorSettings, sock: str, own_dir: str) -> list[str]:
    argv = [
        sys.executable, "-m", "m2rl_slime.sandbox", "--log-level", "WARNING", "serve",
        "--unix", sock, "--parent-pid", str(os.getpid()),
        "--isolation", settings.isolation, "--memory-mb", str(settings.memory_limit_mb),
        "--output-mb", str(settings.output_limit_mb), "--disk-mb", str(settings.disk_limit_mb),
        "--max-processes", str(settings.max_processes), "--work-root", os.path.join(own_dir, "work"),
        "--owned-dir", own_dir, "--max-timeout", str(settings.max_timeout_s),
    ]  # fmt: skip
    if settings.workers:
        argv += ["--workers", str(settings.workers)]
    if settings.python:
        argv += ["--python", settings.python]
    return argv


class EmbeddedSandbox:
    """`Sandbox` backend running programs in a private, automatically managed sandbox server.

    Args:
        settings: Executor settings for the child server.
        client_settings: HTTP client settings (concurrency, retries, breaker).
    """

    def __init__(self, settings: ExecutorSettings | None = None, client_settings: ClientSettings | None = None):
        self.settings = settings or ExecutorSettings()
        client_settings = client_settings or ClientSettings()
        # Never send more requests than the server has slots: queued requests would wait server-side
        # while their HTTP deadline (meant for the run itself) ticks, and time out under load.
        slots = self.settings.workers or len(os.sched_getaffinity(0))
        self.client_settings = dataclasses.replace(
            client_settings, max_in_flight=min(client_settings.max_in_flight, slots)
        )
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None
        self._client: FusionClient | None = None
        self._restarts: list[float] = []
        self._owner = os.getpid()
        self._atexit = False

    def describe(self) -> str:
        return "embedded"

    def stats(self) -> Mapping[str, Any]:
        base = dict(self._client.stats()) if self._client else {}
        return {**base, "url": "embedded", "server_pid": self._proc.pid if self._proc else None}

    @property
    def log_path(self) -> str | None:
        return os.path.join(self._dir, "server.log") if self._dir else None

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            with open(self.log_path or "", "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - limit))
                return handle.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def _start(self) -> FusionClient:
        """Start (or restart) the child server; blocking. Called with the lock held.

        A restart reuses the directory and socket path, so the client (its sessions and circuit
        breaker) carries over.
        """
        self._stop_child(remove_dir=False)
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="m2rl-sandbox-embedded-")
            os.chmod(self._dir, 0o711)  # slot uids traverse it in rlimits_only mode; the socket itself is 0600
            os.mkdir(os.path.join(self._dir, "work"), 0o711)
        sock = os.path.join(self._dir, "sandbox.sock")
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        with open(os.path.join(self._dir, "server.log"), "ab") as log:
            self._proc = subprocess.Popen(
                _server_argv(self.settings, sock, self._dir),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
            )  # fmt: skip
        if not self._atexit:
            atexit.register(self.shutdown)
            self._atexit = True
        started = time.monotonic()
        while not _ping_unix(sock):
            if self._proc.poll() is not None:
                raise SandboxError(
                    f"embedded code sandbox exited with status {self._proc.returncode} while starting: {self._log_tail()}"
                )
            if time.monotonic() - started > STARTUP_TIMEOUT_S:
                self._stop_child(remove_dir=False)
                raise SandboxError(f"embedded code sandbox did not start within {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        for line in self._log_tail(20000).splitlines():  # surface startup warnings (e.g. best_effort) here
            if " WARNING " in line or " ERROR " in line:
                logger.warning("embedded sandbox: %s", line)
        logger.info("embedded code sandbox started (pid %d, log %s)", self._proc.pid, self.log_path)
        if self._client is None:
            self._client = FusionClient(f"unix://{sock}", self.client_settings, label="embedded", alive=self._alive)
        return self._client

    def _alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def _ensure(self) -> FusionClient:
        with self._lock:
            if self._client is not None and self._alive():
                return self._client
            if self._proc is not None:
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW_S] + [now]
                if len(self._restarts) > _MAX_RESTARTS:
                    raise SandboxUnavailableError(
                        f"embedded code sandbox died {len(self._restarts)} times in {_RESTART_WINDOW_S:.0f} s; not "
                        f"restarting it. Last log: {self._log_tail(500)}"
                    )
                logger.error(
                    "embedded code sandbox (pid %d) exited with status %s; restarting it. Log tail: %s",
                    self._proc.pid,
                    self._proc.returncode,
                    self._log_tail(500),
                )
            return self._start()

    async def run(self, spec: RunSpec) -> RunResult:
        """Run one program in the embedded server (started on first use, off the event loop).

        If the request fails because the server died, the server is restarted and the run retried once.
        """
        client = self._client
        if client is None or not self._alive():
            client = await asyncio.to_thread(self._ensure)
        try:
            return await client.run(spec)
        except SandboxUnavailableError:
            raise
        except SandboxError:
            if self._alive():
                raise  # the server is alive: a real failure
            client = await asyncio.to_thread(self._ensure)
            return await client.run(spec)

    def _stop_child(self, *, remove_dir: bool = True) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if remove_dir and self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def shutdown(self) -> None:
        """Stop the child server and remove its directory (registered with atexit; safe to call twice)."""
        if os.getpid() != self._owner:  # a forked child must not stop its parent's server
            return
        with self._lock:
            self._stop_child()
            self._client = None
            self._restarts = []
