"""Evaluation runner figures: the client's overhead over the server's own time, and scoring throughput.

    python benchmarks/eval.py [--samples 512] [--concurrency 64] [--latency 2.0] [--scale 0.1] [--workers 2]

1. Client overhead. A loopback OpenAI-compatible server in a separate process answers every chat
   completion after 0.5-1.5 x `--latency` seconds (seeded; generation lengths vary), its own time measured
   by the server and summed over requests. `eval run --no-score` generates `--samples` samples at
   `--concurrency` in flight. The per-sample overhead is the client-side time of a sample (request sent to
   record built) over the server's own time for it, minus 1 (target <= 5%); the client's CPU time per
   sample is reported next to the server's time. `wall_vs_ideal` compares the whole run (startup,
   shutdown, and the tail of a fixed-concurrency schedule included) with the server's summed time /
   concurrency; one-time imports are excluded.
2. Scoring throughput. A saved run of the nine paper benchmarks (synthetic responses, `--scale` x the
   paper9 item counts and K) is re-scored with `eval score --force` semantics on `--workers` verifier
   processes: samples/s per benchmark and overall. HLE is judged by the loopback server; BFCL has no
   scorer in this installation and stays pending (counted, not scored).

Prints one JSON object per measurement (with the machine's CPU count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAPER9 = {  # name: (domain, items, K)
    "aime24": ("math", 30, 64), "aime25": ("math", 30, 64), "lcb_v5": ("code", 175, 2), "lcb_v6": ("code", 175, 2),
    "hle": ("hle", 2158, 1), "gpqa_diamond": ("science", 198, 4), "ifeval": ("if", 541, 1),
    "ifbench": ("if", 294, 1), "bfcl_v3": ("bfcl", 1000, 1),
}  # fmt: skip


def _serve(port_queue, latency: float) -> None:
    from aiohttp import web

    rng = random.Random(0)
    busy = {"s": 0.0, "n": 0, "first": None, "last": None}

    async def chat(request):
        started = time.perf_counter()
        busy["first"] = busy["first"] or time.time()
        payload = await request.json()
        prompt = payload["messages"][-1]["content"]
        if prompt.startswith("You are grading"):
            content = "extracted_final_answer: x\nreasoning: r\ncorrect: yes\nconfidence: 100"
        else:
            await asyncio.sleep(latency * (0.5 + rng.random()))  # generation lengths vary
            content = "<think>\n" + "reasoning " * 200 + "\n</think>\n\nThe answer is \\boxed{7}."
        busy["s"] += time.perf_counter() - started
        busy["n"] += 1
        busy["last"] = time.time()
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                               "finish_reason": "stop"}], "usage": {"prompt_tokens": 20,
                                                                                    "completion_tokens": 210}})  # fmt: skip

    async def stats(request):
        return web.json_response(busy)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def _stats(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return json.loads(response.read())


def _row(text: str, label, metadata: dict) -> str:
    return json.dumps(
        {"prompt": [{"role": "user", "content": text}], "label": label, "metadata": metadata, "tools": []}
    )


def client_overhead(url: str, root: Path, samples: int, concurrency: int, latency: float) -> dict:
    from m2rl_slime.eval.client import ClientConfig
    from m2rl_slime.eval.runner import RunOptions, run_suite
    from m2rl_slime.eval.suite import parse_suite

    k = 4
    items = math.ceil(samples / k)
    data = root / "client_data"
    data.mkdir()
    (data / "m.jsonl").write_text("".join(_row(f"[math] What is {i}+3?", str(i + 3), {"uid": f"m{i}"}) + "\n"
                                          for i in range(items)))  # fmt: skip
    suite = parse_suite({"name": "bench", "defaults": {"temperature": 1.0, "top_p": 1.0, "max_tokens": 4096},
                         "benchmarks": [{"name": "m", "file": "m.jsonl", "domain": "math", "k": k}]}, "bench")  # fmt: skip
    import aiohttp  # noqa: F401  (one-time imports, paid once per process, not per sample)
    import tqdm  # noqa: F401

    from m2rl_slime.eval import runner

    durations: list[float] = []
    original = runner._one

    async def timed(*args, **kwargs):  # the client-side time of each sample, request to finished record
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - started)

    runner._one = timed
    before = _stats(url)
    options = RunOptions(urls=(url,), out=root / "client_out", data_dir=data, model_id="m", score=False,
                         client=ClientConfig(concurrency=concurrency), progress=False)  # fmt: skip
    wall, cpu, began = time.perf_counter(), time.process_time(), time.time()
    report = run_suite(suite, options)
    wall, cpu, ended = time.perf_counter() - wall, time.process_time() - cpu, time.time()
    runner._one = original
    after = _stats(url)
    served = after["n"] - before["n"]
    server_s = after["s"] - before["s"]
    ideal = server_s / concurrency
    return {
        "measure": "client_overhead", "samples": report.written, "requests": served, "concurrency": concurrency,
        "server_latency_s": latency, "wall_s": round(wall, 3), "ideal_wall_s": round(ideal, 3),
        "per_sample_overhead": round((sum(durations) / len(durations)) / (server_s / served) - 1, 4),
        "target": "<= 0.05", "wall_vs_ideal": round(wall / ideal - 1, 4),
        "client_cpu_ms_per_sample": round(1000 * cpu / max(1, report.written), 3),
        "server_ms_per_sample": round(1000 * server_s / max(1, served), 3),
        "startup_s": round(after["first"] - began, 3), "requests_window_s": round(after["last"] - after["first"], 3),
        "shutdown_s": round(ended - after["last"], 3),
    }  # fmt: skip


def _saved_run(root: Path, scale: float, seed: int) -> tuple[Path, object]:
    """A saved paper9-shaped run: prepared files, suite, samples.jsonl with synthetic responses."""
    from m2rl_slime.eval.suite import parse_suite

    rng = random.Random(seed)
    data, out = root / "score_data", root / "score_out"
    data.mkdir()
    out.mkdir()
    benchmarks, samples, files = [], [], {}
    for name, (domain, n, k) in PAPER9.items():
        n = max(2, round(n * scale))
        rows = []
        for i in range(n):
            meta = {"uid": f"{name}-{i}", "domain": domain}
            label = None
            if domain == "math":
                label = str(i)
            elif domain == "science":
                label, meta["valid_letters"] = "B", "ABCD"
            elif domain == "if":
                meta.update(
                    instruction_id_list=["punctuation:no_comma", "change_case:english_lowercase"], kwargs=[{}, {}]
                )
            elif domain == "code":
                meta["unit_tests"] = {"inputs": [f"{i}\n", f"{i + 1}\n"], "outputs": [f"{2 * i}\n", f"{2 * i + 2}\n"]}
            elif domain == "hle":
                label = f"thing{i}"
            rows.append(_row(f"[{name}] item {i}", label, meta))
            for j in range(k):
                right = rng.random() < 0.5
                body = {
                    "math": f"The answer is \\boxed{{{i if right else i + 1}}}.",
                    "science": f"Answer: {'B' if right else 'C'}",
                    "if": "a lowercase text without commas." if right else "A text, With commas.",
                    "code": f"```python\nprint(int(input()) * {2 if right else 3})\n```",
                    "hle": f"Final answer: thing{i}",
                    "bfcl": '[lookup(x=1)]',
                }[domain]  # fmt: skip
                samples.append({"suite": "bench9", "benchmark": name, "uid": f"{name}-{i}", "sample_idx": j,
                                "model_id": "m", "response": "<think>\n" + "hmm " * 300 + "\n</think>\n\n" + body,
                                "reward": None, "status": "completed", "scorer": "reward"})  # fmt: skip
        (data / f"{name}.jsonl").write_text("".join(r + "\n" for r in rows))
        files[name] = str(data / f"{name}.jsonl")
        scorer = {"hle": "hle_judge"}.get(domain, "reward")
        benchmarks.append({"name": name, "file": f"{name}.jsonl", "domain": domain, "k": k, "scorer": scorer})
    raw = {"name": "bench9", "defaults": {"temperature": 1.0, "top_p": 0.7, "max_tokens": 32768},
           "benchmarks": benchmarks}  # fmt: skip
    suite = parse_suite(raw, "bench9")
    (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (out / "run.json").write_text(json.dumps({"suite": "bench9", "suite_sha": suite.sha, "files": files}))
    return out, suite


def scoring_throughput(url: str, root: Path, scale: float, workers: int, seed: int) -> list[dict]:
    from m2rl_slime.eval.rescore import score_directory
    from m2rl_slime.eval.samples import SAMPLES, read_samples
    from m2rl_slime.eval.scorers import ScorerSettings

    out, suite = _saved_run(root, scale, seed)
    settings = ScorerSettings(reward={"require_thinking": True}, workers=workers, judge_url=url, judge_model="judge")
    score_directory(out, suite, settings, force=True, only=["aime24"], progress=False)  # start the pool first
    rows, total_n, total_s = [], 0, 0.0
    for bench in suite.benchmarks:
        count = sum(1 for s in read_samples(out / SAMPLES) if s["benchmark"] == bench.name)
        started = time.perf_counter()
        report = score_directory(out, suite, settings, force=True, only=[bench.name], progress=False)
        seconds = time.perf_counter() - started
        total_n, total_s = total_n + report.scored, total_s + seconds
        rows.append({"measure": "scoring", "benchmark": bench.name, "domain": bench.domain, "samples": count,
                     "scored": report.scored, "seconds": round(seconds, 3),
                     "samples_per_s": round(report.scored / seconds, 1) if report.scored else None,
                     "pending": dict(report.unavailable)})  # fmt: skip
    rows.append({"measure": "scoring_total", "scored": total_n, "seconds": round(total_s, 3), "workers": workers,
                 "samples_per_s": round(total_n / total_s, 1)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=2.0, help="the server's own time per request (s)")
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the paper9 item counts")
    parser.add_argument("--workers", type=int, default=2, help="verifier processes")
    parser.add_argument("--only", choices=("client", "scoring"))
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}))
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, opts.latency), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=60)}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if opts.only in (None, "client"):
                print(json.dumps(client_overhead(url, Path(tmp), opts.samples, opts.concurrency, opts.latency)))
            if opts.only in (None, "scoring"):
                for row in scoring_throughput(url, Path(tmp), opts.scale, opts.workers, opts.seed):
                    print(json.dumps(row))
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    main()
