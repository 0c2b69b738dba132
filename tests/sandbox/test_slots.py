"""Slots always come back: hostile trees are cleaned, a slot that cannot be cleaned is rebuilt, a pool
without slots fails fast, and a dead server's directories are removed by the next one."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from m2rl_slime.errors import SandboxError
from m2rl_slime.sandbox._slots import SlotPool
from m2rl_slime.sandbox._workdir import LOCK_NAME, clear_tree, make_owned_dir, remove_dead_dirs
from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.isolation import Slot

from .conftest import require_sandbox, run

REPO = Path(__file__).resolve().parents[2]
DEEP = "import os\nfor _ in range({depth}):\n    os.mkdir('d')\n    os.chdir('d')\nopen('f', 'w').write('x')\nprint('built')\n"


@pytest.fixture
def scratch(tmp_path):
    """A directory on tmpfs where possible (deleting thousands of directories on a busy disk is slow)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(dir=shm))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_clear_tree_removes_any_depth_without_following_symlinks(tmp_path, scratch):
    root = scratch
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    os.mkdir(root / "keepme")
    here = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        current = os.dup(here)
        for depth in range(2500):  # deeper than the recursion limit, and far past PATH_MAX as a path
            os.mkdir("d", dir_fd=current)
            if depth % 500 == 0:
                os.symlink(str(outside), "link", dir_fd=current)
                os.mkdir("locked", 0, dir_fd=current)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
            os.close(current)
            current = nxt
        os.close(current)
        clear_tree(here, keep={"keepme"})
    finally:
        os.close(here)
    assert sorted(os.listdir(root)) == ["keepme"]
    assert (outside / "precious").read_text() == "keep"


def test_a_deep_directory_chain_does_not_take_the_sandbox_down(embedded):
    async def storm():
        return await asyncio.gather(
            *[embedded.run(RunSpec(DEEP.format(depth=1500), run_timeout=60)) for _ in range(4)]
        )

    for result in asyncio.run(storm()):
        assert result.status == "Success" and result.run_result.stdout == "built\n", result
    for _ in range(2):  # both slots came back, clean
        after, _ = run(embedded, "import os\nprint('d' in os.listdir('/tmp'))\n")
        assert after.run_result.stdout == "False\n"
    assert embedded.health()["in_service"] == 2


_REBUILD = """
import asyncio, json, sys
from m2rl_slime.sandbox import _slots, local
from m2rl_slime.sandbox.base import RunSpec
real, calls = _slots.clean, []
def flaky(slot, owner):
    calls.append(slot.index)
    if len(calls) == 2:
        raise RecursionError("simulated: cleanup cannot cope")
    real(slot, owner)
_slots.clean = flaky
executor = local.LocalExecutor(local.ExecutorSettings(workers=1, memory_limit_mb=256, work_root=sys.argv[1]))
executor.start()
async def go():
    first = await executor.run(RunSpec("open('/tmp/left', 'w').write('x')\\nprint(1)"))
    second = await executor.run(RunSpec("import os\\nprint(os.listdir('/tmp'))"))
    return first, second
try:
    first, second = asyncio.run(go())
    print(json.dumps([first.run_result.stdout, second.run_result.stdout, executor.stats()["rebuilt"],
                      executor.stats()["in_service"]]))
finally:
    executor.close()
"""


def test_a_slot_whose_cleanup_fails_is_rebuilt(tmp_path):
    require_sandbox()
    done = subprocess.run([sys.executable, "-c", _REBUILD, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    first, second, rebuilt, in_service = json.loads(done.stdout.strip().splitlines()[-1])
    assert first == "1\n" and "left" not in second and rebuilt == 1 and in_service == 1
    assert os.listdir(tmp_path) == []  # and the executor removed its directory at close


def _slot(index: int) -> Slot:
    return Slot(index, 0, f"/nonexistent/s{index}", f"/nonexistent/r{index}", None)


def test_pool_hands_slots_on_and_fails_fast_without_slots():
    async def go():
        emptied = []
        pool = SlotPool([_slot(0)], on_empty=lambda: emptied.append(True))
        slot = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        cancelled = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        assert pool.waiting == 2
        cancelled.cancel()
        pool.release(slot)
        assert (await waiter) is slot
        pool.retire(slot)
        with pytest.raises(SandboxError, match="no sandbox slot is in service"):
            await pool.acquire()
        return emptied

    assert asyncio.run(go()) == [True]


def test_dead_owners_directories_are_removed_live_ones_kept(tmp_path):
    live, lock = make_owned_dir("m2rl-sandbox-", str(tmp_path))
    script = (
        "import sys; from m2rl_slime.sandbox._workdir import make_owned_dir\n"
        "path, _ = make_owned_dir('m2rl-sandbox-', sys.argv[1]); open(path + '/x', 'w').close(); print(path)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    dead = done.stdout.strip()
    assert os.path.isdir(dead)
    try:
        assert remove_dead_dirs("m2rl-sandbox-", str(tmp_path)) == [dead]
        assert not os.path.exists(dead) and os.path.isdir(live)
    finally:
        os.close(lock)
    with open(os.path.join(live, LOCK_NAME)) as handle:  # once its owner lets go, it is dead too
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
