"""Code sandbox benchmarks, each side by side with its anchor in one run.

1. overhead: one trivial program (``print(1)``) through the embedded sandbox (request over the Unix
   socket, namespaces, uid drop, rlimits, cleanup) vs a bare ``subprocess.run([python, "-c", ...])``,
   interleaved, medians; target ratio <= 1.3.
2. throughput: a batch of `--samples` correct solutions (cycling over the shipped Nemotron code rows;
   every test of every row) scored with `code_tests.verify` concurrently, through the embedded sandbox
   and through `python -m m2rl_slime.sandbox serve` on loopback TCP, with the same number of slots;
   anchor: the same (program, stdin) runs as bare subprocesses on a pool of the same size.
3. big output: a program printing 10 MB, judged end to end; target < 2 s.

    python benchmarks/sandbox.py [--python PATH] [--samples 256] [--workers N] [--skip-throughput]

Prints one JSON object per measurement (with host information). Needs root (namespaces). The code rows come
from `$M2RL_SHARED_DATA/nemo_gym_examples/code_gen.jsonl` (NeMo-Gym's layout), by default the repository's
`tests/examples/data`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from m2rl_slime.rewards.code_tests import CodeConfig, extract_code, verify
from m2rl_slime.sandbox.base import RunSpec
from m2rl_slime.sandbox.client import ClientSettings, FusionClient
from m2rl_slime.sandbox.embedded import EmbeddedSandbox
from m2rl_slime.sandbox.local import ExecutorSettings

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "tests" / "rewards" / "data" / "code_gen_solutions.jsonl"


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


def load_examples() -> list[tuple[str, dict]]:
    shared = Path(os.environ.get("M2RL_SHARED_DATA", REPO / "tests" / "examples" / "data"))
    rows = {}
    for line in (shared / "nemo_gym_examples" / "code_gen.jsonl").read_text().splitlines():
        row = json.loads(line)
        rows[row["hash_id"]] = row["verifier_metadata"]["unit_tests"]
    solutions = [json.loads(line) for line in SOLUTIONS.read_text().splitlines()]
    return [(s["response"], rows[s["hash_id"]]) for s in solutions if s["hash_id"] in rows]


def overhead(sandbox: EmbeddedSandbox, python: str, reps: int) -> None:
    code = "print(1)"

    def bare() -> float:
        started = time.perf_counter()
        done = subprocess.run([python, "-c", code], capture_output=True, check=True)
        assert done.stdout == b"1\n"
        return time.perf_counter() - started

    async def sandboxed() -> tuple[float, float]:
        started = time.perf_counter()
        result = await sandbox.run(RunSpec(code))
        assert result.status == "Success" and result.run_result.stdout == "1\n", result
        return time.perf_counter() - started, result.run_result.execution_time

    async def measure() -> tuple[list[float], list[float], list[float]]:
        await sandboxed()  # warm: server started, connection open
        bares, ends, execs = [], [], []
        for _ in range(reps):
            bares.append(bare())
            end, inside = await sandboxed()
            ends.append(end)
            execs.append(inside)
        return bares, ends, execs

    bares, ends, execs = asyncio.run(measure())
    b, e = statistics.median(bares), statistics.median(ends)
    emit({
        "bench": "per_test_overhead", "program": code, "interpreter": python, "reps": reps,
        "bare_subprocess_ms": round(b * 1e3, 2), "embedded_ms": round(e * 1e3, 2),
        "embedded_inside_executor_ms": round(statistics.median(execs) * 1e3, 2),
        "ratio": round(e / b, 3), "anchor": "bare subprocess.run([python, '-c', ...])", "target": "ratio <= 1.3",
    })  # fmt: skip


def start_server(workers: int, python: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "m2rl_slime.sandbox", "--log-level", "WARNING", "serve", "--port", str(port),
           "--workers", str(workers), "--python", python]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/v1/ping", timeout=2):
                return proc, url
        except OSError:
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
        subprocess.run([python, "-c", job[0]], input=job[1].encode(), capture_output=True, timeout=30, check=False)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - started


def throughput(embedded: EmbeddedSandbox, python: str, samples: int, workers: int) -> None:
    examples = load_examples()
    batch = [examples[i % len(examples)] for i in range(samples)]
    runs = sum(len(t["inputs"]) for _, t in batch)
    config = CodeConfig(workers=workers, python=python, test_concurrency=4)
    common = {"bench": "throughput", "samples": samples, "program_runs": runs, "slots": workers, "interpreter": python}
    bare = bare_batch(batch, python, workers)
    emit({**common, "backend": "bare subprocess pool (anchor, no isolation)", "wall_s": round(bare, 2),
          "runs_per_s": round(runs / bare, 1)})  # fmt: skip
    wall, results = score_batch(batch, embedded, config)
    ok = sum(r.reason.value == "ok" for r in results)
    emit({**common, "backend": "embedded", "wall_s": round(wall, 2), "runs_per_s": round(runs / wall, 1),
          "samples_per_s": round(samples / wall, 2), "all_correct": ok == samples, "vs_bare": round(wall / bare, 3)})  # fmt: skip
    proc, url = start_server(workers, python)
    try:
        client = FusionClient(url, ClientSettings(max_in_flight=workers))  # like the embedded backend
        wall, results = score_batch(batch, client, config)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    ok = sum(r.reason.value == "ok" for r in results)
    emit({**common, "backend": "http server (loopback TCP)", "wall_s": round(wall, 2),
          "runs_per_s": round(runs / wall, 1), "samples_per_s": round(samples / wall, 2), "all_correct": ok == samples,
          "vs_bare": round(wall / bare, 3)})  # fmt: skip


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
        "target": "< 2 s", "anchor": "SandboxFusion stalls to its timeout above ~256 KiB",
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="interpreter for programs (default: this one)")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--reps", type=int, default=200, help="repetitions of the overhead measurement")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    python = os.path.abspath(args.python)
    embedded = EmbeddedSandbox(ExecutorSettings(workers=args.workers, python=python))
    try:
        overhead(embedded, python, args.reps)
        big_output(embedded)
        if not args.skip_throughput:
            throughput(embedded, python, args.samples, args.workers)
    finally:
        embedded.shutdown()


if __name__ == "__main__":
    main()
