"""The process and network side effects of a launch, behind a small interface so the orchestration can be
tested without Ray, GPUs or a network (tests pass a scripted fake).

`SystemRunner` is the real one. Processes it spawns get their own session (process group), and
`ProcessHandle.stop` signals only that group: the launcher never signals a process it did not start.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class ProcessHandle(Protocol):
    """A background process the launcher started."""

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""

    def stop(self) -> None:
        """Terminate the process group this handle started (SIGTERM, then SIGKILL after a grace period)."""


class Runner(Protocol):
    """Everything the orchestration does to the outside world."""

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        """Run in the foreground with inherited stdio; return the exit code."""

    def capture(self, argv: Sequence[str]) -> tuple[int, str]:
        """Run and return (exit code, stdout + stderr)."""

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log_path: str) -> ProcessHandle:
        """Start a background process (its own process group) writing to `log_path`."""

    def http_ok(self, url: str) -> bool:
        """Whether GET `url` answers 200 within a few seconds."""

    def port_open(self, host: str, port: int) -> bool:
        """Whether a TCP connection to host:port succeeds."""

    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...


class _Spawned:
    def __init__(self, process: subprocess.Popen[bytes], log: object, grace_s: float):
        self._process = process
        self._log = log
        self._grace_s = grace_s

    def poll(self) -> int | None:
        return self._process.poll()

    def stop(self) -> None:
        if self._process.poll() is None:
            pgid = self._process.pid  # start_new_session=True: the child leads its own group
            os.killpg(pgid, signal.SIGTERM)
            try:
                self._process.wait(timeout=self._grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self._process.wait()
        self._log.close()  # type: ignore[attr-defined]


class SystemRunner:
    """The real `Runner`: subprocesses, urllib and sockets."""

    def __init__(self, stop_grace_s: float = 30.0):
        self._stop_grace_s = stop_grace_s

    def call(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        merged = {**os.environ, **env} if env else None
        try:
            return subprocess.call(list(argv), env=merged)
        except FileNotFoundError:
            logger.error("command not found: %s", argv[0])
            return 127

    def capture(self, argv: Sequence[str]) -> tuple[int, str]:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
        except FileNotFoundError:
            return 127, f"command not found: {argv[0]}"
        return done.returncode, done.stdout + done.stderr

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log_path: str) -> ProcessHandle:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")  # noqa: SIM115 (closed by the handle's stop())
        process = subprocess.Popen(
            list(argv), env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return _Spawned(process, log, self._stop_grace_s)

    def http_ok(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def port_open(self, host: str, port: int) -> bool:
        try:
            with socket.create_connection((host, port), timeout=3):
                return True
        except OSError:
            return False

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()
