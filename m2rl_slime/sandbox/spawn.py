"""The executor's side of the spawner and the slot keepers (`_spawner.py`): start-up, keepers, spawns, exits.

The server talks to the spawner only to get a slot's keeper (at start, after a rebuild, or when the
keeper died), and to each keeper directly to start programs. Since a keeper lives in its slot's
cgroups, its own usage there is taken out of every verdict here: `program_cpu_ns` subtracts the
keeper's CPU time (``/proc/<keeper>/schedstat``, the same scheduler clock the cgroup's CPU accounting
adds up) from the cgroup's, and the memory limit of the cgroup is the program's plus the keeper's
anonymous memory (`SlotCgroup.keeper_allowance`), so the program gets exactly its limit.
"""

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
STOP_TIMEOUT_S = 15.0  # the spawner waits up to 10 s for its keepers, which wait for their programs


def _startup_reply(sock: socket.socket) -> bytes:
    """The spawner's next reply while it starts or builds the slots; b"" when it exited or timed out."""
    try:
        return sock.recv(MAX_REPLY)
    except OSError as exc:
        logger.error("code sandbox: no answer from the spawner: %s", exc)
        return b""


def clone_built() -> bool:
    """Whether the C extension `m2rl_slime.sandbox._native` (program start with clone) was built."""
    try:
        from . import _native  # noqa: F401
    except ImportError:
        return False
    return True


class SpawnerGone(SandboxError):
    """The spawner or the slot's keeper died (or could not be reached); a new one starts on the next call."""


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


@dataclass(slots=True)
class _Keeper:
    """The server's end of one slot's keeper: its socket, pid, the request ids it owes an answer, its CPU clock."""

    slot: int
    sock: socket.socket
    pid: int
    ids: set[int] = field(default_factory=set)
    _stat_fd: int = -1
    _schedstat: bool = True

    def open_clock(self) -> None:
        for name, exact in (("schedstat", True), ("stat", False)):
            try:
                self._stat_fd = os.open(f"/proc/{self.pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
                self._schedstat = exact
                return
            except OSError:
                continue

    def cpu_ns(self) -> int:
        """CPU time the keeper has used, in ns (0 when it cannot be read)."""
        if self._stat_fd < 0:
            return 0
        try:
            text = os.pread(self._stat_fd, 4096, 0).decode()
        except OSError:
            return 0
        if self._schedstat:
            return int(text.split()[0])
        fields = text.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.sock.close()
        if self._stat_fd >= 0:
            os.close(self._stat_fd)
            self._stat_fd = -1


class SpawnerProcess:
    """Starts the spawner helper (and again if it dies), gets each slot a keeper, and talks to them from one event loop.

    Args:
        slots: The executor's slots.
        plan: The minimal root (`_rootfs.plan_root`) to build in each slot, or None without namespaces.
        drop_privileges: Switch to each slot's uid in the child.
        pid_namespaces: Give every program a fresh PID namespace.
        seccomp: Install the seccomp filter in every program.
        clone: Keepers start programs with the C extension (`clone_built`) instead of forking.
    """

    def __init__(self, slots: list[Slot], *, plan: dict | None, drop_privileges: bool, pid_namespaces: bool,
                 seccomp: bool, clone: bool = False):  # fmt: skip
        self.slots = slots
        self.clone = clone
        self.plan = plan
        self.drop = drop_privileges
        self.pidns = pid_namespaces
        self.seccomp = seccomp
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keepers: dict[int, _Keeper] = {}  # slot index -> its keeper
        self._next = 0
        self._pending: dict[int, asyncio.Future] = {}  # id -> spawn reply, or keeper reply (from the spawner)
        self._exits: dict[int, asyncio.Future] = {}  # id -> (exit status, CPU seconds)
        self.slot_errors: dict[int, str] = {}  # slots whose keepers could not be built at start

    # ---- the spawner -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the spawner and a keeper for every slot (blocking); raises SandboxError."""
        self._start_spawner()
        assert self._sock is not None
        self._sock.setblocking(True)
        self._sock.settimeout(STARTUP_TIMEOUT_S)
        self.slot_errors = {}
        try:
            for slot in self.slots:
                ident, ours = self._request_keeper(slot)
                data = _startup_reply(self._sock)
                if not data:
                    ours.close()
                    self._stop()
                    raise SandboxError(
                        f"the sandbox spawner exited while building the slots (status {self._status()})"
                    )
                reply = json.loads(data)
                if "error" in reply:
                    ours.close()
                    self.slot_errors[slot.index] = reply["error"]
                else:
                    self._add_keeper(slot.index, ours, reply["pid"])
        finally:
            if self._sock is not None:
                self._sock.setblocking(False)

    def _start_spawner(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {
            "parent": os.getpid(),
            "sock": theirs.fileno(),
            "pidns": self.pidns,
            "seccomp": self.seccomp,
            "clone": self.clone,
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
        data = _startup_reply(ours)
        if not data:
            ours.close()
            self._stop()
            raise SandboxError(f"the sandbox spawner exited at start (status {self._status()})")
        ours.setblocking(False)
        self._sock = ours

    def _request_keeper(self, slot: Slot) -> tuple[int, socket.socket]:
        """Ask the spawner for a new keeper of `slot`; returns (request id, our end of the keeper's socket)."""
        assert self._sock is not None
        self._next += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            message = json.dumps({"op": "keeper", "id": self._next, "slot": slot.index}).encode()
            socket.send_fds(self._sock, [message], [theirs.fileno()])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        return self._next, ours

    def _add_keeper(self, index: int, sock: socket.socket, pid: int) -> _Keeper:
        sock.setblocking(False)
        keeper = _Keeper(index, sock, pid)
        keeper.open_clock()
        self._keepers[index] = keeper
        if self._loop is not None:
            self._loop.add_reader(sock.fileno(), self._on_keeper_readable, keeper)
        return keeper

    def _status(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._proc is None or self._proc.poll() is not None or self._sock is None:
            self._fail_all("the sandbox spawner is gone")
            self._start_spawner()  # keepers come back one by one, when their slot is next used
        if self._loop is not loop:
            self._detach()
            assert self._sock is not None
            loop.add_reader(self._sock.fileno(), self._on_spawner_readable)
            for keeper in self._keepers.values():
                loop.add_reader(keeper.sock.fileno(), self._on_keeper_readable, keeper)
            self._loop = loop
        return loop

    def _detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
        for keeper in self._keepers.values():
            loop.remove_reader(keeper.sock.fileno())

    def _on_spawner_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(MAX_REPLY)
            except BlockingIOError:
                return
            except OSError as exc:
                self._fail_all(f"spawner connection failed: {exc}")
                return
            if not data:
                self._fail_all(f"spawner process exited (status {self._proc.poll() if self._proc else None})")
                return
            message = json.loads(data)
            future = self._pending.pop(message.get("id"), None)
            if future is None or future.done():
                continue  # nobody waits for this keeper any more; it goes when the slot asks for another
            if "error" in message:
                future.set_exception(SandboxError(message["error"]))
            else:
                future.set_result(message["pid"])

    # ---- keepers ---------------------------------------------------------------------------------------

    async def _keeper(self, slot: Slot, *, replace: bool = False) -> _Keeper:
        """The slot's live keeper; a new one (fresh namespaces) when it has none or `replace` is set."""
        loop = self._attach()
        keeper = self._keepers.get(slot.index)
        if keeper is not None and not replace:
            return keeper
        if keeper is not None:
            self._keeper_gone(keeper, "replaced")
        try:
            ident, ours = self._request_keeper(slot)
        except OSError as exc:
            self._fail_all(f"could not reach the spawner: {exc}")
            raise SpawnerGone(f"could not reach the spawner: {exc}") from None
        future = loop.create_future()
        self._pending[ident] = future
        try:
            pid = await asyncio.wait_for(asyncio.shield(future), STARTUP_TIMEOUT_S)
        except BaseException:
            ours.close()
            self._pending.pop(ident, None)
            raise
        return self._add_keeper(slot.index, ours, pid)

    def _on_keeper_readable(self, keeper: _Keeper) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(keeper.sock, MAX_REPLY, 1)
            except BlockingIOError:
                return
            except OSError as exc:
                self._keeper_gone(keeper, f"connection failed: {exc}")
                return
            if not data:
                self._keeper_gone(keeper, "it exited")
                return
            message = json.loads(data)
            ident = message["id"]
            if "exit" in message:
                keeper.ids.discard(ident)
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
                keeper.ids.discard(ident)
                self._exits.pop(ident, None)
                future.set_exception(SandboxError(message["error"]))
            else:
                future.set_result((message["pid"], fds[0]))

    def _keeper_gone(self, keeper: _Keeper, reason: str) -> None:
        """Forget a keeper (dead, or being replaced): whatever waited on it fails with SpawnerGone."""
        if self._keepers.get(keeper.slot) is keeper:
            del self._keepers[keeper.slot]
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(keeper.sock.fileno())
        keeper.close()
        if reason != "replaced":
            logger.error("code sandbox: the keeper of slot %d is gone (%s)", keeper.slot, reason)
        for ident in keeper.ids:
            for future in (self._pending.pop(ident, None), self._exits.pop(ident, None)):
                if future is not None and not future.done():
                    future.set_exception(SpawnerGone(f"the keeper of slot {keeper.slot} is gone ({reason})"))
        keeper.ids.clear()

    def _fail_all(self, reason: str) -> None:
        if self._proc is not None:
            logger.error("code sandbox: %s", reason)
        self._detach()
        for keeper in list(self._keepers.values()):
            self._keeper_gone(keeper, reason)
        for future in [*self._pending.values(), *self._exits.values()]:
            if not future.done():
                future.set_exception(SpawnerGone(reason))
        self._pending.clear()
        self._exits.clear()
        self._stop()

    # ---- what the executor calls -----------------------------------------------------------------------

    async def ready(self, slot: Slot) -> None:
        """Make sure the slot has a live keeper (so its cgroup counters can be read around a program)."""
        await self._keeper(slot)

    def program_cpu_ns(self, slot: Slot) -> int | None:
        """CPU ns used in the slot's cgroup by everything but its keeper (None without CPU accounting)."""
        used = slot.cgroup.cpu_ns() if slot.cgroup is not None else None
        if used is None:
            return None
        keeper = self._keepers.get(slot.index)
        return used - (keeper.cpu_ns() if keeper is not None else 0)

    async def spawn(self, slot: Slot, argv: list[str], env: dict[str, str], cwd: str, limits: Limits, fds) -> Child:
        """Start `argv` in `slot` with stdin/stdout/stderr = `fds`; raises SandboxError if it cannot start."""
        keeper = await self._keeper(slot)
        self._next += 1
        ident = self._next
        request = {
            "op": "spawn", "id": ident, "argv": argv, "env": env, "cwd": cwd,
            "limits": [limits.cpu_seconds, limits.address_space, limits.processes, limits.file_size,
                       limits.open_files, limits.stack],
        }  # fmt: skip
        assert self._loop is not None
        reply, exited = self._loop.create_future(), self._loop.create_future()
        self._pending[ident], self._exits[ident] = reply, exited
        keeper.ids.add(ident)
        try:
            socket.send_fds(keeper.sock, [json.dumps(request).encode()], list(fds))
        except OSError as exc:
            self._keeper_gone(keeper, f"could not reach it: {exc}")  # the next call starts a new one
            raise SpawnerGone(f"could not reach the keeper of slot {slot.index}: {exc}") from None
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
            except Exception:  # noqa: BLE001 - it never started (or the keeper died): nothing to kill
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
        """Give a slot a new keeper with new namespaces (after its directories were replaced); raises SandboxError."""
        await self._keeper(slot, replace=True)

    def _stop(self) -> None:
        """Close every socket (keepers kill their programs and exit, the spawner waits for them) and end the spawner."""
        for keeper in list(self._keepers.values()):
            keeper.close()
        self._keepers.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        self._detach()
        self._stop()
