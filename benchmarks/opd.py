"""Teacher scoring throughput: our TeacherRouter vs M2RL's per-sample scoring, side by side in one run.

    python benchmarks/opd.py [--samples 256] [--prompt-len 1024] [--response-len 4096] [--repeats 3]

A loopback SGLang `/generate` stand-in runs in a separate process and answers in SGLang's JSON shape
(`meta_info.input_token_logprobs`, one `[logprob, token_id, null]` per position from `logprob_start_len`).
The anchor reproduces M2RL's `on_policy_distillation.reward_func` behaviour: a new aiohttp session per
sample, `logprob_start_len: 0` (log-probs of the whole prompt + response come back and the whole reply is
kept as the sample's reward), all samples in flight at once. Ours: one shared session, at most
`max_concurrency` in flight, `logprob_start_len = prompt_len - 1`, only the response's log-probs kept.
Both must return identical teacher log-probs. Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import time
import tracemalloc


def _reply(ids: list[int], start: int) -> dict:
    """The stand-in's deterministic SGLang-shaped reply for `ids` scored from `start`."""
    entries = [[None, ids[start], None]]
    entries += [[-0.001 * ((ids[p] * 31 + p) % 997) - 1e-4, ids[p], None] for p in range(start + 1, len(ids))]
    return {"text": "", "meta_info": {"input_token_logprobs": entries}}


def _serve(port_queue) -> None:
    from aiohttp import web

    async def generate(request):
        payload = await request.json()
        return web.json_response(_reply(payload["input_ids"], payload["logprob_start_len"]))

    async def main() -> None:
        app = web.Application(client_max_size=1 << 28)
        app.router.add_post("/generate", generate)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def _m2rl_style(url: str, tokens: list[int], response_length: int) -> tuple[list[float], int]:
    """M2RL's reward_func + post_process_rewards: fresh session, whole-sequence log-probs, reply kept."""
    import aiohttp

    payload = {
        "input_ids": tokens,
        "sampling_params": {"temperature": 0, "max_new_tokens": 0, "skip_special_tokens": False},
        "return_logprob": True,
        "logprob_start_len": 0,
    }
    async with aiohttp.ClientSession() as session, session.post(url + "/generate", json=payload) as resp:
        resp.raise_for_status()
        body = await resp.read()
    reply = json.loads(body)  # M2RL stores this whole object as sample.reward
    values = [item[0] for item in reply["meta_info"]["input_token_logprobs"][1:]]
    return values[-response_length:], len(body)


async def _run_anchor(url, workload):
    return await asyncio.gather(*(_m2rl_style(url, t, r) for t, r in workload))


async def _run_ours(url, workload, concurrency):
    from m2rl_slime.config import parse_dataclass
    from m2rl_slime.opd.config import OPDConfig
    from m2rl_slime.opd.teachers import TeacherRouter

    config = parse_dataclass(
        OPDConfig, {"teachers": {"math": {"urls": [url]}}, "max_concurrency": concurrency}, "bench"
    )
    router = TeacherRouter(config, temperature=1.0)
    try:
        scores = await asyncio.gather(*(router.score("math", t, r) for t, r in workload))
    finally:
        await router.aclose()
    return [(s.log_probs, None) for s in scores]


def _retained_bytes(tokens: list[int], response_length: int, *, whole_reply: bool) -> int:
    """Heap bytes still held per sample after scoring: the decoded reply (M2RL) or the response log-probs."""
    start = 0 if whole_reply else len(tokens) - response_length - 1
    body = json.dumps(_reply(tokens, start)).encode()
    tracemalloc.start()
    reply = json.loads(body)
    kept = reply if whole_reply else [float(e[0]) for e in reply["meta_info"]["input_token_logprobs"][1:]]
    del reply
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return current


def _workload(n: int, prompt_len: int, response_len: int, seed: int) -> list[tuple[list[int], int]]:
    rng = random.Random(seed)
    prompts = [[rng.randrange(151_000) for _ in range(prompt_len)] for _ in range(max(1, n // 4))]
    out = []
    for i in range(n):  # 4 samples per prompt, response lengths spread over [0.25, 1] x response_len
        length = rng.randint(response_len // 4, response_len)
        out.append((prompts[i // 4 % len(prompts)] + [rng.randrange(151_000) for _ in range(length)], length))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=1024)
    parser.add_argument("--response-len", type=int, default=4096)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    ns = parser.parse_args()
    hardware = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{queue.get(timeout=30)}"
    workload = _workload(ns.samples, ns.prompt_len, ns.response_len, seed=0)
    runners = {
        "m2rl_per_sample_session": lambda: _run_anchor(url, workload),
        "ours_router": lambda: _run_ours(url, workload, ns.concurrency),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    results = {}
    try:
        for _ in range(ns.repeats):
            for name, run in runners.items():  # interleaved, so drift affects both equally
                started = time.perf_counter()
                results[name] = asyncio.run(run())
                times[name].append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.join(10)
    anchor, ours = results["m2rl_per_sample_session"], results["ours_router"]
    assert [a for a, _ in anchor] == [o for o, _ in ours], "the two paths disagree on teacher log-probs"
    reply_bytes = statistics.mean(size for _, size in anchor)
    response_tokens = sum(r for _, r in workload)
    kept = {
        flag: statistics.mean(_retained_bytes(t, r, whole_reply=flag) for t, r in workload[:16])
        for flag in (True, False)
    }
    ours_reply = statistics.mean(len(json.dumps(_reply(t, len(t) - r - 1))) for t, r in workload)
    for name, values in times.items():
        wall = statistics.median(values)
        print(
            json.dumps(
                {
                    "bench": "opd_teacher_scoring",
                    "variant": name,
                    "samples": ns.samples,
                    "prompt_len": ns.prompt_len,
                    "mean_response_len": response_tokens / ns.samples,
                    "wall_s_median": round(wall, 3),
                    "samples_per_s": round(ns.samples / wall, 1),
                    "repeats": ns.repeats,
                    **hardware,
                }
            )
        )
    anchor_s, ours_s = (statistics.median(times[k]) for k in times)
    print(
        json.dumps(
            {
                "bench": "opd_teacher_scoring",
                "variant": "ratio",
                "speedup_ours_vs_m2rl": round(anchor_s / ours_s, 2),
                "reply_bytes_per_sample_m2rl": round(reply_bytes),
                "reply_bytes_per_sample_ours": round(ours_reply),
                "retained_bytes_per_sample_m2rl": round(kept[True]),
                "retained_bytes_per_sample_ours": round(kept[False]),
                "kept_per_sample_m2rl": "whole reply (as sample.reward)",
                "kept_per_sample_ours": "response log-probs",
            }
        )
    )


if __name__ == "__main__":
    main()
