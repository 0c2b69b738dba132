"""The default backend: a private sandbox server this process starts on first use and stops at exit.

Why a child process rather than running the executor in-process: the executor must own a
single-threaded process (it changes its mount namespace and forks with a `preexec` step, which is
unsafe in a multi-threaded process such as a Ray actor), and forking a small server is much cheaper
than forking a trainer with gigabytes mapped. The child is `python -m m2rl_slime.sandbox serve` on a
Unix socket in a private 0700 directory. Runs go through the same client as a remote sandbox (its
retry, busy and breaker rules), over a second socket there that speaks `frames` (the HTTP bodies,
length-prefixed: about 1.2 ms of CPU less per run than aiohttp on both ends); ``/v1/ping`` and ``/health``
stay HTTP on the main socket. If the child dies it is restarted (at most 3 times in 5 minutes) and the client's circuit
breaker is closed at once; it exits by itself when this process is gone. A program is sent again
after a restart only if it never reached the dead server. A server that refuses its configuration
(exit status 2, e.g. an interpreter that does not run inside the sandbox) raises `SandboxConfigError`,
which stops the run with that one line instead of scoring every code sample 0.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from ..errors import SandboxError
from ._workdir import make_owned_dir, remove_dead_dirs, remove_tree
from .base import RunResult, RunSpec, SandboxConfigError, SandboxUnavailableError
from .client import ClientSettings, FusionClient, RequestError
from .settings import ExecutorSettings, to_argv

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 120.0
_MAX_RESTARTS = 3
_RESTART_WINDOW_S = 300.0
DIR_PREFIX = "m2rl-sandbox-embedded-"


def _get_unix(path: str, target: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """(HTTP status, body) of ``GET target`` on a Unix socket (HTTP/1.0: the server closes after answering)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    return (int(status_line[9:12]) if status_line.startswith(b"HTTP/1.") else 0), body


def _ping_unix(path: str, timeout: float = 2.0) -> bool:
    try:
        return _get_unix(path, "/v1/ping", timeout)[0] == 200
    except (OSError, ValueError):
        return False


def _server_argv(settings: ExecutorSettings, sock: str, frames: str, own_dir: str) -> list[str]:
    """The child server's command line: every executor setting, rendered by `settings.to_argv`."""
    work = dataclasses.replace(settings, work_root=os.path.join(own_dir, "work"))
    return [
        sys.executable, "-m", "m2rl_slime.sandbox", "--log-level", "WARNING", "serve", "--unix", sock,
        "--frames", frames, "--parent-pid", str(os.getpid()), "--owned-dir", own_dir, *to_argv(work),
    ]  # fmt: skip


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
            client_settings, max_in_flight=min(client_settings.max_in_flight or slots, slots)
        )
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None
        self._dir_lock = -1
        self._client: FusionClient | None = None
        self._restarts: list[float] = []
        self._owner = os.getpid()
        self._atexit = False

    def describe(self) -> str:
        return "embedded"

    def stats(self) -> Mapping[str, Any]:
        base = dict(self._client.stats()) if self._client else {}
        return {**base, "url": "embedded", "server_pid": self._proc.pid if self._proc else None}

    def health(self) -> dict[str, Any]:
        """The running server's ``GET /health`` (slots, uid range, isolation, cgroups, counters); {} when stopped."""
        if self._dir is None or not self._alive():
            return {}
        status, body = _get_unix(os.path.join(self._dir, "sandbox.sock"), "/health", timeout=10.0)
        return json.loads(body) if status == 200 else {}

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
            remove_dead_dirs(DIR_PREFIX)  # left by a trainer and its server that were both killed
            # 0711: slot uids traverse it in rlimits_only mode; the socket itself is 0600
            self._dir, self._dir_lock = make_owned_dir(DIR_PREFIX)
            os.mkdir(os.path.join(self._dir, "work"), 0o711)
        sock = os.path.join(self._dir, "sandbox.sock")
        frames = os.path.join(self._dir, "sandbox.frames")
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        with open(os.path.join(self._dir, "server.log"), "ab") as log:
            self._proc = subprocess.Popen(
                _server_argv(self.settings, sock, frames, self._dir),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True,
            )  # fmt: skip
        if not self._atexit:
            atexit.register(self.shutdown)
            self._atexit = True
        started = time.monotonic()
        while not _ping_unix(sock):
            if self._proc.poll() is not None:
                if self._proc.returncode == 2:  # the server refused its configuration: say why, in one line
                    errors = [line for line in self._log_tail().splitlines() if line.startswith("error: ")]
                    raise SandboxConfigError(errors[-1][len("error: ") :] if errors else self._log_tail(500))
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
            self._client = FusionClient(f"unix://{frames}", self.client_settings, label="embedded", alive=self._alive,
                                        frames=True)  # fmt: skip
        else:
            self._client.breaker.record_success()  # the new server answers: use it at once
        return self._client

    def _alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def _died(self, timeout: float) -> bool:
        """Has the server exited, or does it within `timeout` (a killed process takes a moment to go)?"""
        proc = self._proc
        if proc is None:
            return True
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

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

        If the request failed because the server died, the server is restarted and the program sent
        once more (a program cannot kill the server: it runs in other namespaces, uid and cgroups; the
        restart limit bounds the rest). A failure with the server alive (HTTP 500, a ``SandboxError``
        response) is never resent.
        """
        client = self._client
        if client is None or not self._alive():
            client = await asyncio.to_thread(self._ensure)
        try:
            return await client.run(spec)
        except RequestError:
            if not await asyncio.to_thread(self._died, 2.0):
                raise
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
            try:
                remove_tree(self._dir)
            except OSError:
                logger.warning("could not remove %s", self._dir, exc_info=True)
            self._dir = None
            if self._dir_lock >= 0:
                os.close(self._dir_lock)
                self._dir_lock = -1

    def shutdown(self) -> None:
        """Stop the child server and remove its directory (registered with atexit; safe to call twice)."""
        if os.getpid() != self._owner:  # a forked child must not stop its parent's server
            return
        with self._lock:
            self._stop_child()
            self._client = None
            self._restarts = []
