"""Fixtures of the data tests: the example rows (each set, tests/conftest.py) as blend inputs, a tiny tokenizer, a row
checker."""

from __future__ import annotations

from pathlib import Path

import pytest

# The example files carry no `dataset` column (except code_gen: "taco", workplace rows: environment_name),
# so the tests force the blend's source names with PATH::SOURCE.
EXAMPLES = {
    "nemo_gym_examples/math_with_judge.jsonl": "nano_v3_sft_profiled_dapo17k",
    "nemo_gym_examples/mcqa.jsonl": "nano_v3_sft_profiled_stem_mcqa",
    "nemo_gym_examples/instruction_following.jsonl": "nano_v3_sft_profiled_instruction_following",
    "nemo_gym_examples/code_gen.jsonl": None,  # dataset: taco
    "workplace_assistant/example.jsonl": None,  # environment_name: workplace_assistant
}


@pytest.fixture(scope="session")
def blend_inputs(example_data: Path) -> list[str]:
    return [str(example_data / rel) + (f"::{src}" if src else "") for rel, src in EXAMPLES.items()]


def check_prepared_row(row: dict) -> None:
    """Assert the prepared-row contract of the preamble (the verifiers and the reward router rely on it)."""
    assert set(row) == {"prompt", "label", "metadata", "tools"}
    assert isinstance(row["prompt"], list) and row["prompt"]
    for message in row["prompt"]:
        assert set(message) == {"role", "content"} and isinstance(message["content"], str)
    assert isinstance(row["metadata"], dict) and isinstance(row["tools"], list)
    meta, domain = row["metadata"], row["metadata"]["domain"]
    if domain == "math":
        assert isinstance(row["label"], str) and row["label"]
    elif domain == "science":
        assert row["label"] in meta["valid_letters"] and len(row["label"]) == 1
    elif domain == "if":
        ids, kwargs = meta["instruction_id_list"], meta["kwargs"]
        assert ids and len(ids) == len(kwargs) and all(isinstance(k, dict) for k in kwargs)
        assert isinstance(meta["prompt_text"], str)
    elif domain == "code":
        tests = meta["unit_tests"]
        assert len(tests["inputs"]) == len(tests["outputs"]) > 0 and "fn_name" in tests
    elif domain == "agent":
        assert all(set(c) == {"name", "arguments"} for c in meta["ground_truth"])
        assert row["tools"] and all(t["type"] == "function" and "name" in t["function"] for t in row["tools"])
    else:
        raise AssertionError(f"unexpected domain {domain}")
    if domain != "agent":
        assert row["tools"] == []
