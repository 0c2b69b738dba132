"""Deadlines are CPU time (the whole tree's), with a wall-clock backstop; results report both times.

No test here asserts how long anything took on the clock: verdicts are checked against the CPU time
the sandbox reports, so a loaded machine cannot make them flaky.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

from m2rl_slime.sandbox.base import wall_backstop

from .conftest import run

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end:\n    pass\n"


def test_a_program_that_waits_is_not_timed_out_by_the_clock(embedded):
    """Sleeping (as a program does on a loaded host, waiting for a CPU) uses no CPU time."""
    result, _ = run(embedded, "import time\ntime.sleep(1.5)\nprint('done')\n", cpu_timeout=1.0, run_timeout=4.0)
    assert result.status == "Success" and result.run_result.stdout == "done\n"
    assert result.run_result.cpu_time < 1.0 and result.run_result.execution_time >= 1.5


def test_cpu_limit_is_enforced_and_reported(embedded):
    result, _ = run(embedded, "while True:\n    pass\n", cpu_timeout=0.5, run_timeout=wall_backstop(0.5))
    assert result.run_result.status == "TimeLimitExceeded"
    assert result.run_result.cpu_time >= 0.5


def test_the_wall_clock_backstop_stops_a_blocked_program(embedded):
    result, _ = run(embedded, "import time\ntime.sleep(60)\n", cpu_timeout=5.0, run_timeout=1.0)
    assert result.run_result.status == "TimeLimitExceeded"
    assert result.run_result.cpu_time < 0.5 and result.run_result.execution_time >= 1.0


def test_cpu_time_of_children_counts(embedded):
    if embedded.health().get("cgroups") is None:
        pytest.skip("no writable cgroup hierarchy on this machine: CPU time is counted per process only")
    code = (
        "import os\nfor _ in range(3):\n    if os.fork() == 0:\n"
        + "".join("        " + line + "\n" for line in BURN.format(seconds=0.4).splitlines())
        + "        os._exit(0)\nfor _ in range(3):\n    os.wait()\nprint('done')\n"
    )
    result, _ = run(embedded, code, cpu_timeout=0.8, run_timeout=10.0)
    assert result.run_result.status == "TimeLimitExceeded", result  # 1.2 s of CPU in three children
    assert result.run_result.cpu_time > 0.8


def _hog() -> None:
    while True:
        pass


def test_a_correct_program_passes_while_every_core_is_busy(embedded):
    """0.5 s of CPU under a 1 s CPU limit, with a CPU hog on every core: wall time stretches, the verdict does not."""
    hogs = [multiprocessing.get_context("fork").Process(target=_hog, daemon=True) for _ in range(os.cpu_count() or 2)]
    for hog in hogs:
        hog.start()
    try:
        result, _ = run(embedded, BURN.format(seconds=0.5) + "print('ok')\n", cpu_timeout=1.0,
                        run_timeout=wall_backstop(1.0))  # fmt: skip
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()
    assert result.status == "Success" and result.run_result.stdout == "ok\n", result
    assert 0.5 <= result.run_result.cpu_time < 1.0
