"""Benchmark the SFT data path: `prepare-sft` throughput and `SFTDataSource` memory, each against its anchor.

    python benchmarks/sft_data.py prepare [--scale 0.001]         # needs only this package (+ pyarrow)
    PYTHONPATH=<slime>:<Megatron-LM>:. <slime-python> benchmarks/sft_data.py memory [--rows 1000000]

``prepare``: six synthetic jsonl sources shaped like Table 1 (sizes times ``--scale``, conversations of
~2-30 KB with unicode, 10% of the agentic rows with JSON-string ``tool_calls`` to fix, 0.5% broken
lines), the Table 1 rules. Anchor: one plain ``json.loads`` pass over the same files (page cache warm for
both). Figures: input rows per second (wall clock) and CPU seconds (all threads), best of ``--repeats``
interleaved runs each, and the ratios (target >= 0.7).

``memory``: a blend of ``--rows`` short conversations (jsonl and parquet shards). Each implementation
runs in a fresh process that imports slime first; resident memory (VmRSS, VmHWM) is read after the
imports, after the source is built, and after ``--calls`` draws of ``get_samples(512)`` with
``--rollout-shuffle``. Anchor: slime's own `RolloutDataSource` (its `Dataset`) on the same rows as one
jsonl file. Target: the SFT source's growth < 200 MB. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLE1 = REPO / "recipes" / "data" / "sft_table1.yaml"
# valid rows of each source at the paper's time (Table 1 counts, "repeat 10x" divided by 10)
SOURCE_ROWS = {
    "math_proofs": 670_244,  # not published; twice the drawn 335,122 for a "random sample"
    "math": 7_000_000,  # about 7M trajectories (its dataset card)
    "science": 226_334,
    "code": 3_927_984,
    "chat": 430_978,
    "agentic": 335_122,
}
WORDS = ["the", "proof", "x^2", "\\frac{a}{b}", "λ", "数学", "return", "def", '"q"', "\n", "step", "therefore"]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _row(rng: random.Random, name: str, i: int) -> str:
    if rng.random() < 0.005:
        return '{"broken": '
    reasoning = _text(rng, rng.randint(300, 4000))
    messages = [
        {"role": "user", "content": _text(rng, rng.randint(30, 400))},
        {"role": "assistant", "content": _text(rng, rng.randint(50, 800)), "reasoning_content": reasoning},
    ]
    row = {"uuid": f"{name}-{i}", "license": "cc-by-4.0", "messages": messages}
    if name == "agentic":
        call = [{"type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}]
        messages[1:1] = [
            {"role": "assistant", "content": "", "tool_calls": json.dumps(call) if rng.random() < 0.1 else call},
            {"role": "tool", "content": _text(rng, 100)},
        ]
        row["tools"] = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    return json.dumps(row, ensure_ascii=False)


def build_sources(root: Path, scale: float) -> int:
    rng = random.Random(0)
    total = 0
    for name, rows in SOURCE_ROWS.items():
        n = max(1, round(rows * scale))
        (root / name).mkdir(parents=True)
        with open(root / name / "part0.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(_row(rng, name, i) + "\n")
        total += n
    return total


def scaled_blend(root: Path, scale: float) -> list:
    from m2rl_slime.data.sft_rules import Rule, load_blend

    sources, _ = load_blend(TABLE1)
    out = []
    for spec in sources:
        rule = spec.rule
        if rule.kind == "sample":
            rule = Rule("sample", max(1, round(rule.value * scale)))
        out.append(type(spec)(spec.name, (str(root / spec.name),), rule))
    return out


def plain_pass(root: Path) -> int:
    rows = 0
    for path in sorted(root.rglob("*.jsonl")):
        with open(path, "rb") as f:
            for line in f:
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    pass
                rows += 1
    return rows


def _cpu() -> float:
    """CPU seconds of this process (all threads, the writer thread included) and of its finished children
    (prepare-sft's worker processes, reaped when its pool shuts down)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def bench_prepare(opts: argparse.Namespace) -> list[dict]:
    from m2rl_slime.data.sft_blend import SFTOptions, prepare_sft

    results = []
    with tempfile.TemporaryDirectory(prefix="sft_bench_") as tmp:
        root = Path(tmp) / "raw"
        rows = build_sources(root, opts.scale)
        size = sum(p.stat().st_size for p in root.rglob("*.jsonl"))
        plain_pass(root)  # warm the page cache
        sources = scaled_blend(root, opts.scale)
        names = ("json.loads pass",) + tuple(
            f"prepare-sft {fmt} workers={w}" for w in opts.workers for fmt in ("parquet", "jsonl")
        )
        wall: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(opts.repeats):  # interleaved, so load changes hit every implementation alike
            for name in names:
                start, start_cpu = time.perf_counter(), _cpu()
                if name == names[0]:
                    plain_pass(root)
                else:
                    fmt, workers = name.split()[1], int(name.split("=")[1])
                    run = SFTOptions(fmt=fmt, progress=False, workers=workers)
                    summary = prepare_sft(sources, Path(tmp) / f"out_{fmt}", run)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(_cpu() - start_cpu)
        anchor = rows / min(wall[names[0]])
        out_rows = summary.manifest["total_rows"]
        for name in names:
            rate = rows / min(wall[name])
            results.append(
                {
                    "bench": "prepare",
                    "impl": name,
                    "input_rows": rows,
                    "input_mb": round(size / 2**20, 1),
                    "output_rows": out_rows if name != names[0] else None,
                    "best_wall_s": round(min(wall[name]), 3),
                    "best_cpu_s": round(min(cpu[name]), 3),
                    "rows_per_s": round(rate),
                    "ratio_vs_json_loads": round(rate / anchor, 3),
                    "cpu_ratio_vs_json_loads": round(min(cpu[names[0]]) / min(cpu[name]), 3),
                }
            )
        for fmt in ("parquet", "jsonl"):
            disk = sum(p.stat().st_size for p in (Path(tmp) / f"out_{fmt}").rglob("part-*"))
            results.append({"bench": "prepare", "impl": f"output {fmt}", "output_mb": round(disk / 2**20, 1)})
    return results


# -- memory ------------------------------------------------------------------------------------------


def _status() -> dict:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024
    return values


def build_memory_blend(root: Path, rows: int) -> None:
    from m2rl_slime.data.sft_blend import SFTOptions, prepare_sft
    from m2rl_slime.data.sft_rules import SourceSpec

    rng = random.Random(1)
    (root / "raw").mkdir(parents=True)
    with open(root / "raw" / "chat.jsonl", "w", encoding="utf-8") as f:
        for i in range(rows):
            messages = [
                {"role": "user", "content": f"question {i}: " + _text(rng, 20)},
                {"role": "assistant", "content": _text(rng, 40), "reasoning_content": _text(rng, 40)},
            ]
            f.write(json.dumps({"uuid": str(i), "messages": messages, "tools": []}, ensure_ascii=False) + "\n")
    spec = [SourceSpec.parse(f"{root / 'raw' / 'chat.jsonl'}::chat")]
    for fmt in ("jsonl", "parquet"):
        prepare_sft(spec, root / fmt, SFTOptions(fmt=fmt, shard_rows=rows, progress=False))


def _tokenizer(root: Path) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "[PAD]": 1}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")
    tok.save_pretrained(root / "tok")
    return str(root / "tok")


def measure_memory(impl: str, root: Path, calls: int) -> dict:
    """Run in a fresh process: build one data source and draw from it."""
    import slime.rollout.data_source  # noqa: F401  (the imports every implementation pays)
    import slime.utils.data  # noqa: F401

    import m2rl_slime.data.sft_source  # noqa: F401

    prompt = {"sft-jsonl": root / "jsonl", "sft-parquet": root / "parquet"}.get(
        impl, root / "jsonl/chat/part-00000.jsonl"
    )
    args = Namespace(
        rollout_global_dataset=True,
        prompt_data=str(prompt),
        hf_checkpoint=_tokenizer(root),
        input_key="messages",
        label_key=None,
        metadata_key="metadata",
        tool_key="tools",
        multimodal_keys=None,
        apply_chat_template=False,
        apply_chat_template_kwargs={},
        rollout_max_prompt_len=None,
        rollout_shuffle=True,
        rollout_seed=42,
        n_samples_per_prompt=1,
        buffer_filter_path=None,
        dump_details=None,
        save=None,
        load=None,
    )
    base = _status()
    start = time.perf_counter()
    if impl.startswith("sft"):
        from m2rl_slime.data.sft_source import SFTDataSource

        source = SFTDataSource(args)
    else:
        from slime.rollout.data_source import RolloutDataSource

        source = RolloutDataSource(args)
    build_s = time.perf_counter() - start
    built = _status()
    draws = []
    for _ in range(calls):
        start = time.perf_counter()
        groups = source.get_samples(512)
        draws.append(time.perf_counter() - start)
        assert len(groups) == 512
    end = _status()
    draws.sort()
    return {
        "bench": "memory",
        "impl": impl,
        "rows": len(source),
        "rss_after_imports_mb": round(base["VmRSS"], 1),
        "rss_growth_built_mb": round(built["VmRSS"] - base["VmRSS"], 1),
        "rss_growth_after_draws_mb": round(end["VmRSS"] - base["VmRSS"], 1),
        "peak_rss_growth_mb": round(end["VmHWM"] - base["VmRSS"], 1),
        "build_s": round(build_s, 2),
        "get_samples_512_median_ms": round(1000 * draws[len(draws) // 2], 1),
        "get_samples_512_max_ms": round(1000 * draws[-1], 1),
    }


def bench_memory(opts: argparse.Namespace) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="sft_mem_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        build_memory_blend(root, opts.rows)
        size = (root / "jsonl" / "chat" / "part-00000.jsonl").stat().st_size
        results.append(
            {
                "bench": "memory",
                "impl": "blend",
                "rows": opts.rows,
                "jsonl_mb": round(size / 2**20, 1),
                "build_s": round(time.perf_counter() - start, 1),
            }
        )
        for impl in ("sft-jsonl", "sft-parquet", "slime-RolloutDataSource"):
            cmd = [sys.executable, __file__, "_measure", impl, str(root), str(opts.calls)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                results.append({"bench": "memory", "impl": impl, "error": done.stderr.strip().splitlines()[-1:]})
                continue
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    prep = sub.add_parser("prepare", help="prepare-sft rows/s vs a plain json.loads pass")
    prep.add_argument("--scale", type=float, default=0.001, help="source sizes as a fraction of Table 1's")
    prep.add_argument("--repeats", type=int, default=3)
    prep.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="prepare-sft --workers values")
    mem = sub.add_parser("memory", help="SFTDataSource resident memory vs slime's RolloutDataSource")
    mem.add_argument("--rows", type=int, default=1_000_000)
    mem.add_argument("--calls", type=int, default=20)
    inner = sub.add_parser("_measure")
    inner.add_argument("impl")
    inner.add_argument("root", type=Path)
    inner.add_argument("calls", type=int)
    opts = parser.parse_args()
    if opts.what == "_measure":
        print(json.dumps(measure_memory(opts.impl, opts.root, opts.calls)))
        return 0
    hw = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": sys.version.split()[0]}
    print(json.dumps({"bench": opts.what, "hardware": hw, "load_avg": os.getloadavg()}))
    for result in bench_prepare(opts) if opts.what == "prepare" else bench_memory(opts):
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
