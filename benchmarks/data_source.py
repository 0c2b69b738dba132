"""Benchmark `MultiDomainDataSource.get_samples` against slime's own data source, side by side.

    PYTHONPATH=<slime>:<Megatron-LM>:. python benchmarks/data_source.py [--prompts 100000] [--calls 1000]

Builds 5 synthetic prompt files (100k prompts in all, with realistic metadata: unit tests for code, 27
tool schemas for agent), loads them through slime's `Dataset`, then times ``get_samples(128)`` with
``n_samples_per_prompt=16`` and measures memory growth over ``--calls`` calls (tracemalloc and RSS).
The anchor is slime's `RolloutDataSourceWithBuffer` over the natural concatenation of the same rows
(M2RL's setup): it deep-copies every sample. Prints JSON lines; needs slime importable.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from argparse import Namespace
from pathlib import Path

SHARES = {"math": 0.4, "science": 0.2, "if": 0.15, "code": 0.15, "agent": 0.1}


def _row(domain: str, i: int) -> dict:
    text = f"Problem {i} of {domain}: " + "lorem ipsum dolor sit amet " * 30
    meta: dict = {"domain": domain, "source": domain, "uid": f"{domain}-{i}"}
    tools: list = []
    label = None
    if domain == "math":
        label = str(i)
    elif domain == "science":
        label = "B"
        meta.update(valid_letters="ABCDEFGHIJ", options=[{chr(65 + k): f"option {k} " * 5} for k in range(10)])
    elif domain == "if":
        meta.update(instruction_id_list=["a:b", "c:d"], kwargs=[{"n": 3}, {"word": "x"}], prompt_text=text)
    elif domain == "code":
        meta["unit_tests"] = {
            "inputs": [f"{k}\n" + "1 2 3 " * 30 for k in range(10)],
            "outputs": ["6\n"] * 10,
            "fn_name": None,
        }
    else:
        params = {
            "type": "object",
            "properties": {f"p{k}": {"type": "string", "description": "d " * 10} for k in range(3)},
        }
        tools = [
            {"type": "function", "function": {"name": f"tool_{k}", "description": "t " * 20, "parameters": params}}
            for k in range(27)
        ]
        meta["ground_truth"] = [{"name": "tool_1", "arguments": '{"p0": "x"}'}]
    return {"prompt": [{"role": "user", "content": text}], "label": label, "metadata": meta, "tools": tools}


def build_files(root: Path, total: int) -> dict[str, str]:
    """One file per domain (shares of `SHARES`) and their concatenation (the anchor's --prompt-data)."""
    files = {}
    with open(root / "all.jsonl", "w", encoding="utf-8") as concat:
        for domain, share in SHARES.items():
            path = root / f"{domain}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for i in range(int(total * share)):
                    line = json.dumps(_row(domain, i)) + "\n"
                    f.write(line)
                    concat.write(line)
            files[domain] = str(path)
    return files


def build_tokenizer(root: Path) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    tok.save_pretrained(root / "tok")
    return str(root / "tok")


def make_args(root: Path, files: dict[str, str], tokenizer: str) -> Namespace:
    from m2rl_slime.data.slime_args import SlimeDataArgs

    data = {"prompt_files": files, "mixture": "natural", "gc_freeze": True}
    args = SlimeDataArgs(tokenizer, data, rollout_shuffle=True, n_samples_per_prompt=16, save=str(root / "ckpt"))
    return args.namespace()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_calls(source, calls: int, batch: int) -> dict:
    for _ in range(3):
        source.get_samples(batch)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        source.get_samples(batch)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "mean_ms": round(statistics.fmean(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "max_ms": round(times[-1], 2),
        "timed_calls": calls,
    }


def memory_growth(source, calls: int, batch: int) -> dict:
    """Growth over `calls` calls: RSS in one window, then traced Python allocations in a later window.

    Tracing starts one window before the measured one, so buffers that existed before tracing (e.g. a
    pool's permutation, replaced at its epoch end) do not show up as growth when they are replaced.
    """
    for _ in range(5):
        source.get_samples(batch)
    gc.collect()
    rss_before = rss_mb()
    for _ in range(calls):
        source.get_samples(batch)
    gc.collect()
    rss_after = rss_mb()
    tracemalloc.start()
    for _ in range(calls):
        source.get_samples(batch)
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    for _ in range(calls):
        source.get_samples(batch)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "calls": calls,
        "traced_growth_kb": round((current - base) / 1024, 1),
        "rss_growth_mb": round(rss_after - rss_before, 1),
        "peak_live_per_call_mb": round((peak - base) / 2**20, 2),
    }


def heap_info() -> dict:
    """The process heap that CPython's full collections walk (the cause of the max/p95 spikes)."""
    gc.collect()
    start = time.perf_counter()
    gc.collect()
    full_gc_ms = round((time.perf_counter() - start) * 1e3, 1)
    return {"gc_tracked": len(gc.get_objects()), "gc_frozen": gc.get_freeze_count(), "full_gc_ms": full_gc_ms}


def measure(impl: str, root: Path, opts: argparse.Namespace) -> dict:
    """One implementation, measured in this (fresh) process."""
    files = {domain: str(root / f"{domain}.jsonl") for domain in SHARES}
    args = make_args(root, files, str(root / "tok"))
    from slime.rollout.data_source import RolloutDataSourceWithBuffer

    from m2rl_slime.data.slime_hooks import MultiDomainDataSource

    start = time.perf_counter()
    if impl == "anchor":
        source = RolloutDataSourceWithBuffer(Namespace(**{**vars(args), "prompt_data": str(root / "all.jsonl")}))
        calls = timed = opts.anchor_calls
        row = {"impl": "slime RolloutDataSourceWithBuffer (deepcopy per sample)"}
    else:
        args.m2rl_data["gc_freeze"] = impl == "ours"
        source = MultiDomainDataSource(args)
        calls, timed = opts.calls, opts.timed_calls
        row = {"impl": f"m2rl MultiDomainDataSource (gc_freeze={impl == 'ours'})"}
    row.update(prompts=len(source), load_s=round(time.perf_counter() - start, 1))
    row.update(time_calls(source, timed, 128))
    row["memory"] = memory_growth(source, calls, 128)
    row["heap"] = heap_info()
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=1000, help="calls per memory-growth window")
    parser.add_argument("--timed-calls", type=int, default=200)
    parser.add_argument("--anchor-calls", type=int, default=20, help="timed and memory calls of the (slow) anchor")
    parser.add_argument("--impl", choices=["ours", "ours-nofreeze", "anchor"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.impl:
        print(json.dumps(measure(opts.impl, opts.root, opts)))
        return 0
    try:
        import slime.rollout.data_source  # noqa: F401
    except ImportError as exc:
        print(json.dumps({"skipped": f"slime not importable: {exc}"}))
        return 2
    hw = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": sys.version.split()[0]}
    print(
        json.dumps(
            {"bench": "get_samples(128), n_samples_per_prompt=16, 5 domains", **hw, "load_avg": os.getloadavg()}
        )
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_files(root, opts.prompts)
        build_tokenizer(root)
        for impl in ("ours", "ours-nofreeze", "anchor"):  # each in a fresh process: separate heaps and GC state
            cmd = [
                sys.executable,
                __file__,
                "--impl",
                impl,
                "--root",
                str(root),
                "--prompts",
                str(opts.prompts),
                "--calls",
                str(opts.calls),
                "--timed-calls",
                str(opts.timed_calls),
                "--anchor-calls",
                str(opts.anchor_calls),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[impl] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(results[impl]))
    ours, anchor = results["ours"], results["anchor"]
    print(
        json.dumps(
            {"anchor_over_ours": {k: round(anchor[k] / ours[k], 1) for k in ("median_ms", "mean_ms", "p95_ms")}}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
