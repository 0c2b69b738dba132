"""The eval-only path as slime runs it: `recipes/eval.yaml` with a suite, rendered by our launcher, parsed
by slime's parser, run through slime's RolloutManager.eval (its eval_rollout, our reward hook and the
deferred hook, --save-debug-rollout-data) against the fake SGLang server; then `eval collect` turns the
saved rollout into samples whose rewards, keys and pending state are checked.

Skipped (with the reason) when slime is not importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.contract

try:
    from slime.observability import logging_utils
except Exception as exc:  # noqa: BLE001 - ImportError, or a slime dependency failing at import
    pytest.skip(f"slime is not importable ({type(exc).__name__}: {exc})", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).parent))

from rollout_harness import FakeSGLang, Manager, World, connect, parse_recipe, row, write_jsonl

from m2rl_slime.eval.collect import collect
from m2rl_slime.eval.samples import read_samples
from m2rl_slime.eval.summary import summarize

SUITE = {
    "name": "contract", "seed": 0, "reward": {"require_thinking": True},
    "defaults": {"temperature": 0.8, "top_p": 0.9, "max_tokens": 512, "scorer": "reward"},
    "benchmarks": [
        {"name": "aime24", "file": "aime24.jsonl", "domain": "math", "k": 2},
        {"name": "gpqa_diamond", "file": "gpqa_diamond.jsonl", "domain": "science", "k": 2, "limit": 2},
        {"name": "ifeval", "file": "ifeval.jsonl", "domain": "if", "k": 1},
        {"name": "hle", "file": "hle.jsonl", "domain": "hle", "k": 1, "scorer": "hle_judge"},
        {"name": "tools", "file": "tools.jsonl", "domain": "bfcl", "k": 1, "driver": "bfcl_multi_turn"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World.build(tmp_path_factory.mktemp("work"))


def eval_files(world: World, root: Path) -> Path:
    data = root / "eval"
    data.mkdir(parents=True)
    write_jsonl(data / "aime24.jsonl", [row(f"[math] #{i} What is {3 + i}+{4 + i}?", str(7 + 2 * i),
                                            {"domain": "math", "uid": f"a{i}"}) for i in range(3)])  # fmt: skip
    write_jsonl(data / "gpqa_diamond.jsonl", [row(f"[science] #{i} Which letter? A) x B) y C) z D) w", "B",
                                                  {"domain": "science", "uid": f"g{i}", "valid_letters": "ABCD"})
                                              for i in range(4)])  # fmt: skip
    write_jsonl(data / "ifeval.jsonl", [row(f"[if] #{i} Describe a cat without commas.", None,
                                            {"domain": "if", "uid": f"i{i}", "instruction_id_list": ["punctuation:no_comma"],
                                             "kwargs": [{}]}) for i in range(2)])  # fmt: skip
    write_jsonl(data / "hle.jsonl", [row("[hle] Name it.", "thing", {"domain": "hle", "uid": "h0"})])
    (root / "contract.yaml").write_text(yaml.safe_dump(SUITE))
    return data


def test_slime_eval_rollout_with_the_rendered_suite_then_collect(world, tmp_path, monkeypatch):
    logged: list[dict] = []
    monkeypatch.setattr(logging_utils, "log", lambda args, metrics, step_key: logged.append(dict(metrics)))
    data = eval_files(world, tmp_path)
    out = tmp_path / "out"
    sets = [f"SUITE={tmp_path / 'contract.yaml'}", f"EVAL_DATA_DIR={data}", f"OUT={out}", "MODEL_ID=sft",
            "plugin.m2rl_reward.workers=1"]  # fmt: skip
    args = parse_recipe("eval", world, sets, "eval_contract")
    assert args.debug_rollout_only and args.num_rollout == 0 and not args.log_passrate
    assert [d.name for d in args.eval_datasets] == ["aime24", "gpqa_diamond", "ifeval", "hle"]  # no driver rows
    by_name = {d.name: d for d in args.eval_datasets}
    assert (by_name["aime24"].temperature, by_name["aime24"].top_p, by_name["aime24"].max_response_len) == (
        0.8,
        0.9,
        512,
    )
    assert by_name["hle"].custom_rm_path == "m2rl_slime.hooks.deferred_reward"
    with FakeSGLang(world.tokenizer) as server:
        connect(args, server)
        Manager(args, monkeypatch).eval(0)
    sent = {r["domain"] for r in server.requests}
    assert sent == {"math", "science", "if", "unknown"}  # hle's prompt has no domain tag in the fake server
    saved = out / "raw" / "eval_0.pt"
    assert saved.is_file()
    evals = next(m for m in logged if "eval/aime24" in m)
    assert evals["eval/aime24"] == 0.5  # the fake answers right, then wrong, per prompt
    report = collect([out], out)
    assert report.benchmarks == {"aime24": 6, "gpqa_diamond": 4, "ifeval": 2, "hle": 1}
    records = list(read_samples(out / "samples.jsonl"))
    keys = {(r["benchmark"], r["uid"], r["sample_idx"]) for r in records}
    assert len(keys) == len(records) == 13
    # the fake answers each prompt's first request right and its second wrong; which of the two samples
    # slime sends first is up to its concurrency, so each item holds one of each, in either order
    aime = sorted((r["uid"], r["sample_idx"]) for r in records if r["benchmark"] == "aime24")
    assert aime == [("a0", 0), ("a0", 1), ("a1", 0), ("a1", 1), ("a2", 0), ("a2", 1)]
    per_item: dict[str, list[float]] = {}
    for r in records:
        if r["benchmark"] == "aime24":
            per_item.setdefault(r["uid"], []).append(r["reward"])
    assert {uid: sorted(v) for uid, v in per_item.items()} == {u: [0.0, 1.0] for u in ("a0", "a1", "a2")}
    first = next(r for r in records if r["benchmark"] == "aime24")
    assert (first["model_id"], first["suite"], first["temperature"], first["max_tokens"]) == (
        "sft",
        "contract",
        0.8,
        512,
    )
    assert first["scorer_version"].startswith("m2rl_slime.rewards") and first["prompt_sha"] is not None
    hle = next(r for r in records if r["benchmark"] == "hle")
    assert hle["reward"] is None and hle["scorer"] == "hle_judge"  # deferred: pending, not 0
    summary = summarize(out)["benchmarks"]
    assert summary["aime24"]["avg"] == 0.5 and summary["aime24"]["n_items"] == 3 and summary["aime24"]["k"] == 2
    assert summary["hle"]["pending"] == 1 and summary["tools"]["missing"] is True
