"""The executor's side of the spawner (`_spawner.py`): start-up handshake, async spawn and rebuild requests, exits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

from ..errors import SandboxError
from .isolation import Limits, Slot

logger = logging.getLogger(__name__)

_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_spawner.py")
MAX_REPLY = 1 << 16


STARTUP_TIMEOUT_S = 120.0


class SpawnerGone(SandboxError):
    """The spawner died (or could not be reached) before the program started; a new one starts on the next call."""


@dataclass(slots=True)
class Child:
    """A running program: its pid (in our PID namespace), a pidfd to kill it, and its exit (status, CPU seconds)."""

    pid: int
    pidfd: int
    exited: asyncio.Future = field(repr=False)

    def kill(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


class SpawnerProcess:
    """Starts the spawner helper (and again if it dies) and talks to it from one event loop.

    Args:
        slots: The executor's slots.
        plan: The minimal root (`_rootfs.plan_root`) to build in each slot, or None without namespaces.
        drop_privileges: Switch to each slot's uid in the child.
        pid_namespaces: Give every program a fresh PID namespace.
        seccomp: Install the seccomp filter in every program.
    """

    def __init__(self, slots: list[Slot], *, plan: dict | None, drop_privileges: bool, pid_namespaces: bool,
                 seccomp: bool):  # fmt: skip
        self.slots = slots
        self.plan = plan
        self.drop = drop_privileges
        self.pidns = pid_namespaces
        self.seccomp = seccomp
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0
        self._pending: dict[int, asyncio.Future] = {}  # id -> spawn or rebuild reply
        self._exits: dict[int, asyncio.Future] = {}  # id -> (exit status, CPU seconds)
        self.slot_errors: dict[int, str] = {}  # slots whose namespaces could not be built at start

    def start(self) -> None:
        """Start the spawner and wait until it has built every slot (blocking); raises SandboxError."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "parent": os.getpid(),
            "sock": theirs.fileno(),
            "pidns": self.pidns,
            "seccomp": self.seccomp,
            "plan": self.plan,
            "slots": {
                slot.index: {"index": slot.index, "uid": slot.uid, "cpu": slot.cpu, "drop": self.drop,
                             "tmp": slot.work_dir, "shm": slot.shm_dir, "staging": slot.staging,
                             "cgroup": slot.cgroup.procs_files if slot.cgroup else []}
                for slot in self.slots
            },
        }  # fmt: skip
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", _SCRIPT, json.dumps(config)],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        theirs.close()
        ours.settimeout(STARTUP_TIMEOUT_S)
        try:
            data = ours.recv(MAX_REPLY)
        except OSError as exc:
            data = b""
            logger.error("code sandbox: no answer from the spawner: %s", exc)
        if not data:
            ours.close()
            self._stop()
            raise SandboxError(f"the sandbox spawner exited while building the slots (status {self._status()})")
        self.slot_errors = {int(k): v for k, v in json.loads(data)["errors"].items()}
        ours.setblocking(False)
        self._sock = ours

    def _status(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._proc is None or self._proc.poll() is not None or self._sock is None:
            self._stop()
            self.start()
            self._loop = None
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            loop.add_reader(self._sock.fileno(), self._on_readable)
            self._loop = loop

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 1)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail_all(f"spawner connection failed: {exc}")
                return
            if not data:
                self._fail_all(f"spawner process exited (status {self._proc.poll() if self._proc else None})")
                return
            message = json.loads(data)
            ident = message["id"]
            if "exit" in message:
                future = self._exits.pop(ident, None)
                if future is not None and not future.done():
                    future.set_result((message["exit"], message.get("cpu")))
                continue
            future = self._pending.pop(ident, None)
            if future is None or future.done():  # nobody waits for this program any more: kill it
                for fd in fds:
                    Child(message.get("pid", -1), fd, self._loop.create_future()).kill()
                    os.close(fd)
            elif "error" in message:
                self._exits.pop(ident, None)
                future.set_exception(SandboxError(message["error"]))
            elif "rebuilt" in message:
                future.set_result(True)
            else:
                future.set_result((message["pid"], fds[0]))

    def _fail_all(self, reason: str) -> None:
        logger.error("code sandbox: %s", reason)
        if self._loop is not None and self._sock is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._loop = None
        for future in [*self._pending.values(), *self._exits.values()]:
            if not future.done():
                future.set_exception(SpawnerGone(reason))
        self._pending.clear()
        self._exits.clear()
        self._stop()

    async def spawn(self, slot: Slot, argv: list[str], env: dict[str, str], cwd: str, limits: Limits, fds) -> Child:
        """Start `argv` in `slot` with stdin/stdout/stderr = `fds`; raises SandboxError if it cannot start."""
        self._attach()
        assert self._sock is not None and self._loop is not None
        self._next += 1
        ident = self._next
        request = {
            "op": "spawn", "id": ident, "slot": slot.index, "argv": argv, "env": env, "cwd": cwd,
            "limits": [limits.cpu_seconds, limits.address_space, limits.processes, limits.file_size,
                       limits.open_files, limits.stack],
        }  # fmt: skip
        reply, exited = self._loop.create_future(), self._loop.create_future()
        self._pending[ident], self._exits[ident] = reply, exited
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], list(fds))
        except OSError as exc:
            self._pending.pop(ident, None)
            self._exits.pop(ident, None)
            self._fail_all(f"could not reach the spawner: {exc}")  # the next call starts a new one
            raise SpawnerGone(f"could not reach the spawner: {exc}") from None
        try:
            pid, pidfd = await asyncio.shield(reply)
        except SpawnerGone:
            raise
        except SandboxError as exc:
            raise SandboxError(f"could not start the program: {exc}") from None
        except asyncio.CancelledError:
            # Cancelled while the program was starting: make sure it is dead before the slot is reused.
            try:
                pid, pidfd = await asyncio.wait_for(reply, 10.0)
            except Exception:  # noqa: BLE001 - it never started (or the spawner died): nothing to kill
                raise asyncio.CancelledError from None
            child = Child(pid, pidfd, exited)
            child.kill()
            try:
                await asyncio.wait_for(asyncio.shield(exited), 10.0)
            finally:
                child.close()
            raise
        return Child(pid, pidfd, exited)

    async def rebuild(self, slot: Slot) -> None:
        """Rebuild a slot's namespaces (after its directories were replaced); raises SandboxError."""
        self._attach()
        assert self._sock is not None and self._loop is not None
        self._next += 1
        ident = self._next
        reply = self._loop.create_future()
        self._pending[ident] = reply
        try:
            self._sock.send(json.dumps({"op": "rebuild", "id": ident, "slot": slot.index}).encode())
        except OSError as exc:
            self._pending.pop(ident, None)
            self._fail_all(f"could not reach the spawner: {exc}")
            raise SpawnerGone(f"could not reach the spawner: {exc}") from None
        await asyncio.wait_for(reply, STARTUP_TIMEOUT_S)

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        if self._loop is not None and self._sock is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._loop = None
        self._stop()
