"""Slot keepers: programs are born in their slot's cgroups as children of the slot's keeper (never moved
between cgroups), the keeper's own CPU time and memory never reach a verdict, and a killed keeper is
replaced with the slot coming back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import RequestError

from .conftest import assert_no_leftover_processes, children_of, require_sandbox, run

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import asyncio, json, os, sys
from m2rl_slime.sandbox import local
import pytest

from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import RequestError
from m2rl_slime.sandbox.spawn import SpawnerProcess

def cgroup_of(pid):
    return {c: path for line in open(f"/proc/{pid}/cgroup").read().splitlines()
            for c in line.split(":", 2)[1].split(",") if c for path in [line.split(":", 2)[2]]}

seen, watching = {}, []
real = SpawnerProcess.spawn
async def spawn(self, slot, *args, **kwargs):
    child = await real(self, slot, *args, **kwargs)
    if not watching:  # the executor's own start-up checks
        return child
    status = dict(line.split(":\\t", 1) for line in open(f"/proc/{child.pid}/status").read().splitlines())
    keeper = self._keepers[slot.index].pid
    seen.update(ppid=int(status["PPid"]), keeper=keeper, program_cgroup=cgroup_of(child.pid),
                keeper_cgroup=cgroup_of(keeper), dirs=dict(slot.cgroup.dirs),
                members={c: open(os.path.join(d, "cgroup.procs")).read().split() for c, d in slot.cgroup.dirs.items()})
    return child
SpawnerProcess.spawn = spawn

executor = local.LocalExecutor(local.ExecutorSettings(workers=1, memory_limit_mb=256, work_root=sys.argv[1]))
executor.start()
try:
    slot = executor._slots[0]
    keeper = executor._spawner._keepers[0]
    cgroup_before, keeper_before = slot.cgroup.cpu_ns(), keeper.cpu_ns()
    watching.append(True)
    result = asyncio.run(executor.run(RunSpec("import time\\ntime.sleep(0.3)\\nprint(sum(range(10**6)))")))
    cgroup_after, keeper_after = slot.cgroup.cpu_ns(), keeper.cpu_ns()
    memory = slot.cgroup.dirs.get("memory") or slot.cgroup.dirs["unified"]
    limit_file = "memory.limit_in_bytes" if slot.cgroup.version == 1 else "memory.max"
    print(json.dumps({
        "seen": seen, "stdout": result.run_result.stdout, "cpu_time": result.run_result.cpu_time,
        "cgroup_ns": cgroup_after - cgroup_before, "keeper_ns": keeper_after - keeper_before,
        "limit": int(open(os.path.join(memory, limit_file)).read()), "anon": slot.cgroup.anon_bytes(),
        "allowance": slot.cgroup.keeper_allowance(), "version": slot.cgroup.version,
    }))
finally:
    executor.close()
"""


def _probe(tmp_path) -> dict:
    require_sandbox()
    done = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_programs_are_born_in_the_slot_cgroups_as_children_of_its_keeper(tmp_path):
    found = _probe(tmp_path)
    seen = found["seen"]
    assert found["stdout"] == f"{sum(range(10**6))}\n"
    assert seen["ppid"] == seen["keeper"]  # forked by the keeper, which lives in the slot's cgroups ...
    for controller, directory in seen["dirs"].items():
        assert str(seen["keeper"]) in seen["members"][controller]
        name = "" if controller == "unified" else controller
        program, keeper = seen["program_cgroup"][name], seen["keeper_cgroup"][name]
        assert program == keeper and directory.endswith(program)  # ... so the program starts there, unmoved


def test_the_keepers_cpu_time_and_memory_do_not_reach_the_verdict(tmp_path):
    found = _probe(tmp_path)
    assert found["keeper_ns"] > 0  # forking and reaping the program cost the keeper CPU time in the slot's cgroup
    program_ns = found["cgroup_ns"] - found["keeper_ns"]
    assert abs(found["cpu_time"] - program_ns / 1e9) <= 2e-6  # the verdict's CPU time is the cgroup's less that
    # The cgroup's limit is the program's 256 MiB plus the keeper's anonymous memory (rounded up) and a MiB.
    assert found["allowance"] >= found["anon"] + (1 << 20) and found["allowance"] - found["anon"] <= 2 << 20
    assert found["limit"] == (256 << 20) + found["allowance"]


def _keepers(sandbox) -> list[int]:
    server = sandbox.stats()["server_pid"]
    spawners = [p for p in children_of(server) if "_spawner.py" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(spawners) == 1
    return sorted(children_of(spawners[0]))


def test_killed_keepers_are_replaced_and_their_slots_come_back(embedded):
    async def batch():  # more runs than slots: both slots are used
        return await asyncio.gather(*[embedded.run(RunSpec(f"print({i})")) for i in range(6)])

    asyncio.run(batch())  # (a replaced spawner gives slots new keepers only as they are used)
    before = _keepers(embedded)
    assert len(before) == 2  # one per slot
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    results = asyncio.run(batch())
    assert [r.run_result.stdout for r in results] == [f"{i}\n" for i in range(6)], results
    after = _keepers(embedded)
    assert len(after) == 2 and not set(after) & set(before)
    assert embedded.health()["in_service"] == 2


def test_a_keeper_killed_mid_run_takes_its_program_along(embedded):
    async def killed_mid_run():
        task = asyncio.ensure_future(embedded.run(RunSpec("import time\nprint('up')\ntime.sleep(60)", run_timeout=90)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until one keeper has a running program
            busy = [k for k in _keepers(embedded) if children_of(k)]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the program never started")
        return await task

    with pytest.raises(RequestError, match="keeper of slot . is gone"):  # sandbox_error, never a verdict
        asyncio.run(killed_mid_run())
    assert_no_leftover_processes(embedded)  # the program died with its keeper
    for i in range(4):  # and both slots serve again
        again, _ = run(embedded, f"print({i})")
        assert again.status == "Success" and again.run_result.stdout == f"{i}\n"
    assert embedded.health()["in_service"] == 2
