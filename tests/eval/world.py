"""Prepared benchmark files for the evaluation tests, and the Avg@K the fake model must get on them.

Rows follow the prepared-row contract (prompt, label, metadata with domain/uid/benchmark, tools). The
fake model's outcome on a sample depends only on that sample's seed (`FakeModel.correct`), so the
expected per-item means, Avg@K and standard errors follow from the suite alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from fake_server import FakeModel

from m2rl_slime.eval.identity import sample_seed
from m2rl_slime.eval.suite import Suite

N_ROWS = 12  # more than any limit of the quick suite


def row(text: str, label, metadata: dict, tools: list | None = None) -> dict:
    return {"prompt": [{"role": "user", "content": text}], "label": label, "metadata": metadata, "tools": tools or []}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_data(root: Path) -> Path:
    """The quick suite's files (aime24, gpqa_diamond, ifeval) plus hle and a tool benchmark under root."""
    math_rows = [row(f"[math] #{i} What is {3 + i}+{4 + 2 * i}?", str(7 + 3 * i),
                     {"domain": "math", "uid": f"aime-{i}", "benchmark": "aime"}) for i in range(N_ROWS)]  # fmt: skip
    science = [row(f"[science] #{i} Which letter?\nA) x\nB) y\nC) z\nD) w", "B",
                   {"domain": "science", "uid": f"gpqa-{i}", "benchmark": "gpqa", "valid_letters": "ABCD"})
               for i in range(N_ROWS)]  # fmt: skip
    ifeval = [row(f"[if] #{i} Describe a cat without commas.", None,
                  {"domain": "if", "uid": f"if-{i}", "benchmark": "ifeval",
                   "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}) for i in range(N_ROWS)]  # fmt: skip
    hle = [row(f"[hle] #{i} Name the thing. gold=thing{i}", f"thing{i}",
               {"domain": "hle", "uid": f"hle-{i}", "benchmark": "hle"}) for i in range(4)]  # fmt: skip
    tool = {"type": "function", "function": {"name": "lookup", "description": "look up", "parameters": {"type": "object"}}}
    tools = [row(f"[tool] #{i} Use the tool.", None, {"domain": "bfcl", "uid": f"tool-{i}", "category":
                 "multi_turn_base" if i % 2 == 0 else "simple"}, [tool]) for i in range(4)]  # fmt: skip
    data = root / "eval"
    write_jsonl(data / "aime24.jsonl", math_rows)
    write_jsonl(data / "gpqa_diamond.jsonl", science)
    write_jsonl(data / "ifeval.jsonl", ifeval)
    write_jsonl(data / "hle.jsonl", hle)
    write_jsonl(data / "tools.jsonl", tools)
    return data


def expected(suite: Suite) -> dict[str, tuple[float, float | None, int]]:
    """benchmark -> (Avg@K, standard error, n_items) the fake model must get (rule-verified benchmarks)."""
    uids = {"aime24": "aime", "gpqa_diamond": "gpqa", "ifeval": "if", "hle": "hle"}
    model = FakeModel()
    out = {}
    for bench in suite.benchmarks:
        n = min(bench.limit or N_ROWS, 4 if bench.name == "hle" else N_ROWS)
        means = []
        for i in range(n):
            uid = f"{uids[bench.name]}-{i}"
            hits = [model.correct(sample_seed(suite.seed, bench.name, uid, j)) for j in range(bench.k)]
            means.append(sum(hits) / bench.k)
        avg = sum(means) / n
        se = math.sqrt(sum((m - avg) ** 2 for m in means) / (n - 1) / n) if n > 1 else None
        out[bench.name] = (avg, se, n)
    return out
