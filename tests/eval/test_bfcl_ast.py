"""The BFCL AST verifier on hand-checked cases (data/bfcl_ast_cases.jsonl), hostile inputs, and through the router.

Every case of the table was also given to bfcl-eval's own checker (benchmarks/eval_agreement.py --only bfcl
prints the reference's verdicts on them): they agree on all but ``java_huge_int``, where the reference raises
and we report ``checker_crash``, and ``simple_underscored_name``, a setting the Qwen reference does not use.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from m2rl_slime.errors import ConfigError
from m2rl_slime.eval.bfcl.verifier import verify
from m2rl_slime.rewards import score
from m2rl_slime.rewards.config import RewardConfig
from m2rl_slime.rewards.router import Item

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "bfcl_ast_cases.jsonl").open()]


def _metadata(case: dict) -> dict:
    meta = {"category": case["category"], "functions": case["functions"], **case.get("metadata", {})}
    if case["possible_answer"] is not None:
        meta["possible_answer"] = case["possible_answer"]
    return meta


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hand_checked_case(case):
    result = verify(case["response"], None, _metadata(case))
    assert (result.score, result.reason.value) == (case["expected_score"], case["expected_reason"]), result.details
    assert result.details.get("error_type") == case["expected_error_type"]


def test_table_covers_every_single_turn_category_and_rule():
    categories = {c["category"] for c in CASES}
    assert {"simple", "multiple", "parallel", "parallel_multiple", "java", "javascript", "irrelevance",
            "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance",
            "live_relevance"} <= categories  # fmt: skip
    errors = {c["expected_error_type"] for c in CASES}
    for kind in ("type_error:simple", "type_error:nested", "type_error:java", "type_error:js", "value_error:string",
                 "value_error:list/tuple", "value_error:dict_key", "value_error:dict_value",
                 "parallel_function_checker_no_order:cannot_find_match", "ast_decoder:decoder_failed"):  # fmt: skip
        assert kind in errors


def test_multi_turn_rows_are_not_scored_from_one_response():
    with pytest.raises(ConfigError, match="episode driver"):
        verify("<tool_call>\n{}\n</tool_call>", None, {"category": "multi_turn_base"})


@pytest.mark.parametrize(
    "metadata",
    [{"category": "exec_simple"}, {"category": "simple", "functions": [], "possible_answer": "x"},
     {"category": "simple", "functions": [{"name": "f"}], "possible_answer": [{"f": {}}]},
     {"category": "java", "functions": [{"name": "f", "parameters": {"properties": {"x": {"type": "Set"}},
      "required": []}}], "possible_answer": [{"f": {"x": ["a"]}}]}],
    ids=["unknown category", "bad possible answer", "doc without parameters", "type the checker cannot convert"],
)  # fmt: skip
def test_malformed_rows_are_bad_labels(metadata):
    result = verify('<tool_call>\n{"name": "f", "arguments": {"x": "a"}}\n</tool_call>', None, metadata)
    assert (result.score, result.reason.value) == (0.0, "bad_label")


def test_scored_through_the_reward_router_pool():
    case = next(c for c in CASES if c["id"] == "java_literals")
    config = RewardConfig(workers=1, require_thinking=False)
    assert score("bfcl", case["response"], None, _metadata(case), config=config).score == 1.0
    with pytest.raises(ConfigError, match="multi-turn"):
        score("bfcl", "x", None, {"category": "multi_turn_miss_func"}, config=config)
    assert Item("bfcl", "x").domain == "bfcl"


JAVA = {"name": "J.f", "description": "d", "parameters": {"type": "dict", "properties": {
    "a": {"type": "ArrayList", "items": {"type": "String"}}, "b": {"type": "Array", "items": {"type": "integer"}},
    "m": {"type": "HashMap"}}, "required": ["a"]}}  # fmt: skip
JS = {"name": "f", "description": "d", "parameters": {"type": "dict", "properties": {
    "a": {"type": "array", "items": {"type": "String"}}, "d": {"type": "dict"}}, "required": ["a"]}}  # fmt: skip


def _call(name: str, args: dict) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"


HOSTILE = {
    "unclosed_tags": lambda n: "<tool_call>\n" * (n // 12) + "x",
    "deep_json": lambda n: "<tool_call>\n" + "[" * n + "\n</tool_call>",
    "many_blocks": lambda n: "<tool_call>\n{}\n</tool_call>" * (n // 26),
    "long_think": lambda n: "<think>" * (n // 7) + "</think>x",
    "java_aslist": lambda n: _call("J.f", {"a": "new ArrayList<>(Arrays.asList(" * (n // 30)}),
    "java_add_block": lambda n: _call("J.f", {"a": "new ArrayList<>() {{" + " " * n + "x"}),
    "java_adds": lambda n: _call("J.f", {"a": "new ArrayList<>() {{ " + "add(" * (n // 4) + "}}"}),
    "java_arrays": lambda n: _call("J.f", {"a": "x", "b": "new int[]{" * (n // 10)}),
    "java_hashmap": lambda n: _call("J.f", {"a": "x", "m": "new HashMap<" + ">() {" * (n // 6)}),
    "java_puts": lambda n: _call("J.f", {"a": "x", "m": 'new HashMap<>() {{ ' + 'put("",' * (n // 7) + "}}"}),
    "js_two_d": lambda n: _call("f", {"a": "[[1]," * (n // 5)}),
    "js_two_d_spaces": lambda n: _call("f", {"a": "[ [1] ," + " " * n}),
    "js_dict_commas": lambda n: _call("f", {"a": "[]", "d": "{a:" + "," * n + "}"}),
    "js_dict_pairs": lambda n: _call("f", {"a": "[]", "d": "{" + "a:b," * (n // 4) + "}"}),
    "js_dict_colons": lambda n: _call("f", {"a": "[]", "d": "{" + ":" * n + "}"}),
}  # fmt: skip


def _cpu(fn, response: str, metadata: dict) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        fn(response, None, metadata)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_output_is_linear(name):
    """CPU time (best of three) at 4x the length stays within 6x plus a constant; a quadratic scan gives 16x."""
    is_js = name.startswith("js_")
    metadata = {"category": "javascript" if is_js else "java", "functions": [JS if is_js else JAVA],
                "possible_answer": [{("f" if is_js else "J.f"): {"a": [["x"]], "b": [[1], ""], "m": [{}, ""],
                                                                  "d": [{}, ""]}}]}  # fmt: skip
    small, large = HOSTILE[name](20_000), HOSTILE[name](80_000)
    assert _cpu(verify, large, metadata) <= 6 * _cpu(verify, small, metadata) + 0.05
