"""Slots of the executor: their storage (a tmpfs each), the pool runs wait in, and recycling after a run.

A slot always comes back: after every run its ``tmp`` and ``shm`` are emptied (`_workdir.clear_tree`,
which no tree a program can build defeats); if that fails for any reason, or the skeleton a program
must not touch is gone, the slot's storage is replaced by a fresh tmpfs and its namespaces rebuilt;
only if that fails too is the slot retired, and a pool without slots fails runs at once instead of
letting them wait forever.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from ..errors import SandboxError
from . import _syscalls as sc
from ._workdir import empty_dir
from .isolation import Slot

logger = logging.getLogger(__name__)

INODES = 16384


class SlotPool:
    """Free slots, and the runs waiting for one (FIFO).

    Args:
        slots: The slots in service at start.
        on_empty: Called once when the last slot is retired.
    """

    def __init__(self, slots: list[Slot], on_empty: Callable[[], None] | None = None):
        self._free = list(slots)
        self.in_service = len(slots)
        self._waiters: list[asyncio.Future] = []
        self._on_empty = on_empty

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> Slot:
        """A free slot; waits for one. Raises SandboxError when no slot is in service."""
        while True:
            if self._free:
                return self._free.pop()
            if self.in_service <= 0:
                raise SandboxError("no sandbox slot is in service (every slot failed to rebuild; see the server log)")
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # we were woken but leave: pass the slot on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake(self, everyone: bool = False) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def release(self, slot: Slot) -> None:
        self._free.append(slot)
        self._wake()

    def retire(self, slot: Slot) -> None:
        """Take a slot out of service for good."""
        self.in_service -= 1
        logger.error("sandbox slot %d is out of service (%d left)", slot.index, self.in_service)
        if self.in_service <= 0:
            self._wake(everyone=True)
            if self._on_empty is not None:
                self._on_empty()


def make_storage(slot: Slot, *, tmpfs_mb: int | None, owner: int | None) -> None:
    """Create a slot's directories: `root` (a fresh tmpfs when `tmpfs_mb` is set), ``tmp`` and ``shm``."""
    os.makedirs(slot.root, mode=0o755, exist_ok=True)
    if tmpfs_mb is not None:
        options = f"size={tmpfs_mb}m,nr_inodes={INODES},mode=0755"
        sc.mount("tmpfs", slot.root, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, options)
    for path in (slot.work_dir, slot.shm_dir):
        os.mkdir(path, 0o700)
        if owner is not None:
            os.chown(path, owner, owner)
    os.makedirs(slot.staging, mode=0o755, exist_ok=True)


def drop_storage(slot: Slot, *, tmpfs: bool) -> None:
    """Detach a slot's tmpfs (its namespaces keep the old one until they are rebuilt) or move its dirs away."""
    if tmpfs:
        sc.umount(slot.root, sc.MNT_DETACH)
        return
    for path in (slot.work_dir, slot.shm_dir):
        if os.path.lexists(path):
            os.rename(path, f"{path}.broken-{os.getpid()}-{id(slot)}")


def clean(slot: Slot, owner: int | None) -> None:
    """Empty a slot after a run; raises (anything) when it cannot be trusted for the next run."""
    keep_tmp, keep_shm = slot.keep.get("/tmp", ()), slot.keep.get("/dev/shm", ())
    empty_dir(slot.work_dir, owner, 0o700, keep_tmp)
    empty_dir(slot.shm_dir, owner, 0o700, keep_shm)
    for directory, names in ((slot.work_dir, keep_tmp), (slot.shm_dir, keep_shm)):
        for name in names:  # the skeleton is a mount point inside the slot: a program cannot move it
            if not os.path.isdir(os.path.join(directory, name)):
                raise SandboxError(f"slot {slot.index}: its {name} mount point is gone")
