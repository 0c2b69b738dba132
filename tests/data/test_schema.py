"""Pins raw blend row -> prepared row conversion per domain, and the field named by every rejection."""

from __future__ import annotations

import json

import pytest

from m2rl_slime.data.config import PromptTemplate
from m2rl_slime.data.schema import RowError, convert_row, to_chat_tools

IDENT = PromptTemplate()


def rcp(content, **extra):
    return {"responses_create_params": {"input": [{"role": "user", "content": content}], **extra}}


def test_math_row():
    row = convert_row(
        {**rcp("1+1?"), "expected_answer": 2, "uuid": "u1"}, "math", "dapo17k", PromptTemplate("Q: {prompt}")
    )
    assert row.to_json() == {
        "prompt": [{"role": "user", "content": "Q: 1+1?"}],
        "label": "2",
        "metadata": {"domain": "math", "source": "dapo17k", "uid": "u1"},
        "tools": [],
    }


def test_math_label_shapes():
    assert convert_row({**rcp("q"), "expected_answer": ["7"]}, "math", "skywork", IDENT).label == "7"
    with pytest.raises(RowError, match="list of 2"):
        convert_row({**rcp("q"), "expected_answer": ["7", "8"]}, "math", "skywork", IDENT)
    with pytest.raises(RowError, match="no gold answer"):
        convert_row({**rcp("q"), "expected_answer": "  "}, "math", "skywork", IDENT)


def test_science_row_letters_from_options_or_prompt():
    raw = {**rcp("Q?\nA: x\nB: y\nC: z"), "options": [{"A": "x"}, {"B": "y"}, {"C": "z"}], "expected_answer": " b "}
    row = convert_row(raw, "science", "stem_mcqa", IDENT)
    assert row.label == "B"
    assert row.metadata["valid_letters"] == "ABC" and row.metadata["options"][2] == {"C": "z"}
    no_options = convert_row({**rcp("Q?\nA) x\nB) y\nC) z\nD) w"), "expected_answer": "D"}, "science", "s", IDENT)
    assert no_options.metadata["valid_letters"] == "ABCD" and "options" not in no_options.metadata


@pytest.mark.parametrize(
    "raw, reason, field",
    [
        ({**rcp("Q?"), "options": [{"A": "x"}, {"B": "y"}], "expected_answer": "C"}, "bad_label", "expected_answer"),
        ({**rcp("Q?"), "options": [{"A": "x"}, {"B": "y"}]}, "missing_label", "expected_answer"),
        ({**rcp("Q? no options"), "expected_answer": "A"}, "missing_options", "options"),
        ({**rcp("Q?"), "options": [{"A": "x", "B": "y"}], "expected_answer": "A"}, "bad_options", "options"),
    ],
)
def test_science_rejections(raw, reason, field):
    with pytest.raises(RowError) as err:
        convert_row(raw, "science", "s", IDENT)
    assert err.value.reason == reason and err.value.field == field


def test_if_row_drops_none_kwargs_and_keeps_prompt_text():
    raw = {
        **rcp("Write."),
        "prompt": "Write.",
        "instruction_id_list": ["a:b", "c:d"],
        "kwargs": [{"n": 3, "m": None}, None],
    }
    row = convert_row(raw, "if", "instruction_following", IDENT)
    assert row.label is None
    assert row.metadata["kwargs"] == [{"n": 3}, {}]
    assert row.metadata["prompt_text"] == "Write."
    bare = convert_row({"prompt": "Do it.", "instruction_id_list": ["x:y"]}, "if", "ifeval", IDENT)
    assert bare.prompt == [{"role": "user", "content": "Do it."}] and bare.metadata["kwargs"] == [{}]
    with pytest.raises(RowError, match="kwargs"):
        convert_row({**raw, "kwargs": [{}]}, "if", "s", IDENT)
    with pytest.raises(RowError, match="instruction_id_list"):
        convert_row({**rcp("x"), "instruction_id_list": []}, "if", "s", IDENT)


def test_code_row():
    tests = {"inputs": ["1\n"], "outputs": ["2\n"]}
    row = convert_row({**rcp("Code."), "verifier_metadata": {"unit_tests": tests}}, "code", "taco", IDENT)
    assert row.metadata["unit_tests"] == {"inputs": ["1\n"], "outputs": ["2\n"], "fn_name": None}
    as_string = {**rcp("Code."), "verifier_metadata": json.dumps({"unit_tests": {**tests, "fn_name": "f"}})}
    assert convert_row(as_string, "code", "taco", IDENT).metadata["unit_tests"]["fn_name"] == "f"
    with pytest.raises(RowError) as err:
        convert_row(rcp("Code."), "code", "taco", IDENT)
    assert err.value.reason == "missing_tests" and "verifier_metadata.unit_tests" in str(err.value)
    with pytest.raises(RowError, match="equal-length"):
        convert_row(
            {**rcp("C"), "verifier_metadata": {"unit_tests": {"inputs": ["1"], "outputs": []}}}, "code", "t", IDENT
        )


def test_agent_row_converts_tools_to_chat_completions_form():
    tool = {
        "type": "function",
        "name": "send",
        "description": "Send.",
        "parameters": {"type": "object"},
        "strict": False,
    }
    raw = {
        "responses_create_params": {
            "input": [{"role": "system", "content": "Date."}, {"role": "user", "content": "Do."}],
            "tools": [tool],
        },
        "ground_truth": [{"name": "send", "arguments": '{"to": "x"}'}],
    }
    row = convert_row(raw, "agent", "workbench", IDENT)
    assert row.tools == [
        {"type": "function", "function": {"name": "send", "description": "Send.", "parameters": {"type": "object"}}}
    ]
    assert row.metadata["ground_truth"] == [{"name": "send", "arguments": '{"to": "x"}'}]
    assert "category" not in row.metadata
    assert (
        convert_row({**raw, "category": "workplace_assistant_email"}, "agent", "w", IDENT).metadata["category"]
        == "workplace_assistant_email"
    )  # the agent verifier's no-op rule needs the task's toolkit
    assert [m["role"] for m in row.prompt] == ["system", "user"]
    assert to_chat_tools(row.tools) == row.tools  # already-converted tools pass through
    with pytest.raises(RowError, match="ground_truth\\[0\\].arguments"):
        convert_row({**raw, "ground_truth": [{"name": "send", "arguments": "[1]"}]}, "agent", "w", IDENT)
    with pytest.raises(RowError, match="missing_tools|tool schemas"):
        convert_row(
            {**raw, "responses_create_params": {"input": raw["responses_create_params"]["input"]}}, "agent", "w", IDENT
        )


def test_prompt_rejections_and_role_mapping():
    with pytest.raises(RowError, match="no chat messages"):
        convert_row({"expected_answer": "1"}, "math", "m", IDENT)
    with pytest.raises(RowError, match="no user message"):
        convert_row(
            {"responses_create_params": {"input": [{"role": "system", "content": "s"}]}, "expected_answer": "1"},
            "math",
            "m",
            IDENT,
        )
    dev = {
        "responses_create_params": {
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "d"}]},
                {"role": "user", "content": "u"},
            ]
        },
        "expected_answer": "1",
    }
    assert convert_row(dev, "math", "m", IDENT).prompt[0] == {"role": "system", "content": "d"}


def test_uid_is_stable_without_an_id():
    a = convert_row({**rcp("1+1?"), "expected_answer": "2"}, "math", "m", IDENT)
    b = convert_row({**rcp("1+1?"), "expected_answer": "2"}, "math", "m", IDENT)
    assert a.metadata["uid"] == b.metadata["uid"] and len(a.metadata["uid"]) == 16
