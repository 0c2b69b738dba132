"""Code sandbox benchmarks, each side by side with its anchor in one run (self-contained: no data files).

1. overhead: one trivial program (``print(1)``) through the embedded sandbox (request over the Unix
   socket, minimal root, namespaces, cgroups, seccomp, uid drop, rlimits, cleanup) vs a bare
   ``subprocess.run([python, "-c", ...])`` of the same program, interleaved, medians; target <= 1.2x.
2. throughput: `--samples` correct solutions to generated problems (`--tests` tests each) scored with
   `m2rl_slime.rewards.code.verify` through the embedded sandbox and through
   `python -m m2rl_slime.sandbox serve` on loopback TCP (default client settings), with the same slots;
   anchor: the same (program, stdin) runs as bare subprocesses on a pool of that size. The batch runs
   in `--rounds` chunks and each chunk visits the three backends in a rotating order, so load that
   drifts during the run hits all of them alike.
3. busy host: a correct program using 1 s of CPU under a 2 s limit while every core runs a CPU hog;
   target: scored ``ok`` (its wall time is reported: a wall-clock limit would have failed it).
4. big output: a program printing 10 MB, judged end to end; target < 2 s.

``--executor-only`` measures (1) against the executor called in this process instead (what the
embedded server does per request, without the client and the hop to it). ``--compare`` adds to (1),
interleaved in the same run, the same embedded server reached over HTTP (its main socket; the
embedded backend speaks `frames`), a server whose keepers fork (``spawn: fork``), and that one over
HTTP: the layout before the clone start and the frames.

    python benchmarks/sandbox.py [--python PATH] [--samples 256] [--tests 8] [--workers N] [--skip-throughput]

Prints one JSON object per measurement (with host information). Needs root (namespaces, cgroups).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from m2rl_slime.rewards.code import CodeConfig, extract_code, verify
from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import FusionClient
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.local import ExecutorSettings, LocalExecutor

REPO = Path(__file__).resolve().parents[1]


def host() -> dict:
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def emit(record: dict) -> None:
    print(json.dumps({**record, "host": host()}), flush=True)


# ---- generated problems (seeded) with correct solutions -------------------------------------------------------

SOLUTIONS = {
    "sum": "n = int(input())\nprint(sum(map(int, input().split())))\n",
    "sort": "input()\nprint(*sorted(map(int, input().split())))\n",
    "primes": "n = int(input())\ns = bytearray([1]) * (n + 1)\ns[0:2] = b'\\x00\\x00'\ni = 2\nwhile i * i <= n:\n"
    "    if s[i]:\n        s[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))\n    i += 1\nprint(sum(s))\n",
    "mean": "xs = list(map(int, input().split()))\nprint(sum(xs) / len(xs))\n",
}


def _case(kind: str, rng: random.Random) -> tuple[str, str]:
    if kind in ("sum", "sort"):
        xs = [rng.randint(-(10**9), 10**9) for _ in range(rng.randint(1, 200))]
        out = str(sum(xs)) if kind == "sum" else " ".join(map(str, sorted(xs)))
        return f"{len(xs)}\n{' '.join(map(str, xs))}\n", out + "\n"
    if kind == "primes":
        n = rng.randint(2, 50_000)
        sieve = bytearray([1]) * (n + 1)
        sieve[0:2] = b"\x00\x00"
        for i in range(2, int(n**0.5) + 1):
            if sieve[i]:
                sieve[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))
        return f"{n}\n", f"{sum(sieve)}\n"
    xs = [rng.randint(1, 1000) for _ in range(rng.randint(1, 50))]
    return " ".join(map(str, xs)) + "\n", f"{sum(xs) / len(xs):.6f}\n"


def problems(samples: int, tests: int, seed: int = 0) -> list[tuple[str, dict]]:
    """`samples` (response, unit tests) pairs cycling over the problem kinds."""
    rng = random.Random(seed)
    kinds = sorted(SOLUTIONS)
    out = []
    for i in range(samples):
        kind = kinds[i % len(kinds)]
        cases = [_case(kind, rng) for _ in range(tests)]
        tests_ = {"inputs": [c[0] for c in cases], "outputs": [c[1] for c in cases], "fn_name": None}
        out.append((f"Solution:\n```python\n{SOLUTIONS[kind]}```\n", tests_))
    return out


# ---- 1. per-test overhead ---------------------------------------------------------------------------------


def overhead(backends: dict, python: str, reps: int) -> None:
    """Per-test overhead of each backend in `backends` (label -> sandbox) against a bare subprocess.run.

    One bare run and one run on every backend per repetition, the backends' order rotating, so that
    drifting load hits all of them alike; medians.
    """
    code = "print(1)"

    def bare() -> float:
        started = time.perf_counter()
        done = subprocess.run([python, "-c", code], capture_output=True, check=True)
        assert done.stdout == b"1\n"
        return time.perf_counter() - started

    async def sandboxed(sandbox) -> tuple[float, float]:
        started = time.perf_counter()
        result = await sandbox.run(RunSpec(code))
        assert result.status == "Success" and result.run_result.stdout == "1\n", result
        return time.perf_counter() - started, result.run_result.execution_time

    async def measure() -> tuple[list[float], dict[str, list[float]], dict[str, list[float]]]:
        for sandbox in backends.values():
            await sandboxed(sandbox)  # warm: server started, connection open
        labels = list(backends)
        bares, ends, execs = [], {label: [] for label in labels}, {label: [] for label in labels}
        for rep in range(reps):
            bares.append(bare())
            shift = rep % len(labels)
            for label in labels[shift:] + labels[:shift]:
                end, inside = await sandboxed(backends[label])
                ends[label].append(end)
                execs[label].append(inside)
        return bares, ends, execs

    bares, ends, execs = asyncio.run(measure())
    b = statistics.median(bares)
    for label in backends:
        e = statistics.median(ends[label])
        emit({
            "bench": "per_test_overhead", "backend": label, "program": code, "interpreter": python, "reps": reps,
            "bare_subprocess_ms": round(b * 1e3, 2), "embedded_ms": round(e * 1e3, 2),
            "embedded_inside_executor_ms": round(statistics.median(execs[label]) * 1e3, 2),
            "ratio": round(e / b, 3), "anchor": "bare subprocess.run([python, '-c', ...])", "target": "ratio <= 1.2",
        })  # fmt: skip


# ---- 2. throughput ----------------------------------------------------------------------------------------


def start_server(workers: int, python: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "--log-level", "WARNING", "serve", "--port", str(port),
           "--workers", str(workers), "--python", python]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            with urllib.request.urlopen(url + "/v1/ping", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError("sandbox server did not start")


def score_batch(batch: list[tuple[str, dict]], sandbox, config: CodeConfig) -> tuple[float, list]:
    async def run() -> list:
        return await asyncio.gather(
            *[verify(r, None, {"unit_tests": t}, config=config, sandbox=sandbox) for r, t in batch]
        )

    started = time.perf_counter()
    results = asyncio.run(run())
    return time.perf_counter() - started, results


def bare_batch(batch: list[tuple[str, dict]], python: str, workers: int) -> float:
    jobs = []
    for response, tests in batch:
        code = extract_code(response).code
        jobs += [(code, stdin) for stdin in tests["inputs"]]

    def one(job: tuple[str, str]) -> None:
        subprocess.run([python, "-c", job[0]], input=job[1].encode(), capture_output=True, timeout=60, check=False)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - started


def throughput(embedded: EmbeddedSandbox, python: str, samples: int, tests: int, workers: int, rounds: int) -> None:
    batch = problems(samples, tests)
    runs = samples * tests
    config = CodeConfig(workers=workers, python=python, test_concurrency=4)
    proc, url = start_server(workers, python)
    client = FusionClient(url)  # default settings: sized to the server's slots from its /health
    walls = {"bare": 0.0, "embedded": 0.0, "http": 0.0}
    ok = {"embedded": 0, "http": 0}
    backends = list(walls)
    try:
        for index in range(rounds):
            chunk = batch[index::rounds]
            for name in backends[index % 3 :] + backends[: index % 3]:  # rotate the order every round
                if name == "bare":
                    walls[name] += bare_batch(chunk, python, workers)
                    continue
                wall, results = score_batch(chunk, embedded if name == "embedded" else client, config)
                walls[name] += wall
                ok[name] += sum(r.reason.value == "ok" for r in results)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    common = {"bench": "throughput", "samples": samples, "tests_per_sample": tests, "program_runs": runs,
              "slots": workers, "rounds": rounds, "interpreter": python}  # fmt: skip
    emit({**common, "backend": "bare subprocess pool (anchor, no isolation)", "wall_s": round(walls["bare"], 2),
          "runs_per_s": round(runs / walls["bare"], 1)})  # fmt: skip
    for name, label in (("embedded", "embedded"), ("http", "http server (loopback TCP, default client)")):
        emit({**common, "backend": label, "wall_s": round(walls[name], 2), "runs_per_s": round(runs / walls[name], 1),
              "samples_per_s": round(samples / walls[name], 2), "all_correct": ok[name] == samples,
              "vs_bare": round(walls[name] / walls["bare"], 3)})  # fmt: skip


# ---- 3. a busy host ---------------------------------------------------------------------------------------


def _hog() -> None:
    while True:
        pass


def busy_host(sandbox: EmbeddedSandbox) -> None:
    code = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end:\n    pass\nprint('ok')\n"
    tests = {"inputs": [""], "outputs": ["ok\n"]}
    hogs = [multiprocessing.get_context("fork").Process(target=_hog, daemon=True) for _ in range(os.cpu_count() or 1)]
    for hog in hogs:
        hog.start()
    try:
        config = CodeConfig(run_timeout_s=2.0)
        result = asyncio.run(
            verify(f"```python\n{code}```", None, {"unit_tests": tests}, config=config, sandbox=sandbox)
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()
    emit({
        "bench": "busy_host", "program": "1 s of CPU", "cpu_limit_s": 2.0, "hogs": len(hogs),
        "reason": result.reason.value, "test_cpu_s": result.details.get("test_cpu_max_s"),
        "test_wall_s": result.details.get("test_time_max_s"), "target": "reason ok",
    })  # fmt: skip


# ---- 4. big output ----------------------------------------------------------------------------------------


def big_output(sandbox: EmbeddedSandbox) -> None:
    code = "import sys\nsys.stdout.write('7' * 10_000_000 + '\\n')\n"
    response = f"```python\n{code}```"
    tests = {"inputs": [""], "outputs": ["7" * 10_000_000 + "\n"]}

    async def run():
        started = time.perf_counter()
        result = await verify(response, None, {"unit_tests": tests}, sandbox=sandbox)
        return time.perf_counter() - started, result

    wall, result = asyncio.run(run())
    emit({
        "bench": "ten_mb_output", "bytes": 10_000_001, "wall_s": round(wall, 3), "reason": result.reason.value,
        "target": "< 2 s", "anchor": "SandboxFusion stalls to its timeout on outputs above ~256 KiB",
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="interpreter for programs (default: this one)")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--tests", type=int, default=8, help="tests per sample (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved chunks of the batch (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--reps", type=int, default=200, help="repetitions of the overhead measurement")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--overhead-only", action="store_true", help="only measure the per-test overhead (1.)")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="add to (1.) the same server over HTTP, a server whose keepers fork, and that one over HTTP",
    )
    parser.add_argument(
        "--executor-only",
        action="store_true",
        help="only the overhead, of the executor called in this process (no client, no HTTP hop), then exit",
    )
    args = parser.parse_args()
    python = os.path.abspath(args.python)
    if args.executor_only:  # the embedded server's own work, without the hop from the client to it
        executor = LocalExecutor(ExecutorSettings(workers=args.workers, python=python))
        executor.start()
        try:
            overhead({"executor in-process (no client, no hop to a server)": executor}, python, args.reps)
        finally:
            executor.close()
        return
    embedded = EmbeddedSandbox(ExecutorSettings(workers=args.workers, python=python))
    others: list[EmbeddedSandbox] = []
    try:
        backends: dict = {"embedded": embedded}
        if args.compare:
            forking = EmbeddedSandbox(ExecutorSettings(workers=args.workers, python=python, spawn="fork"))
            others.append(forking)
            backends.update({
                "embedded over HTTP (its main socket)": _http_client(embedded),
                "embedded, spawn fork": forking,
                "spawn fork over HTTP (the layout before clone and frames)": _http_client(forking),
            })  # fmt: skip
        overhead(backends, python, args.reps)
        if args.overhead_only:
            return
        big_output(embedded)
        busy_host(embedded)
        if not args.skip_throughput:
            throughput(embedded, python, args.samples, args.tests, args.workers, args.rounds)
    finally:
        for sandbox in (embedded, *others):
            sandbox.shutdown()


def _http_client(embedded: EmbeddedSandbox) -> FusionClient:
    """A client of an embedded server's HTTP socket (started first), as the embedded backend used to talk to it."""
    asyncio.run(embedded.run(RunSpec("print(1)")))
    assert embedded._dir is not None
    return FusionClient(f"unix://{os.path.join(embedded._dir, 'sandbox.sock')}")


if __name__ == "__main__":
    main()
