"""Qwen3 `<tool_call>` parsing (per turn and over a transcript) and call-list parsing of labels."""

from __future__ import annotations

import pytest

from m2rl_slime.agent.env import ToolCall
from m2rl_slime.agent.parsing import Malformed, call_list, calls_from_responses_output, parse_transcript, parse_turn
from m2rl_slime.errors import LabelError


def block(body: str) -> str:
    return f"<tool_call>\n{body}\n</tool_call>"


def test_turn_calls_in_order_with_malformed_blocks_kept_in_place():
    text = (
        '<think>\nmaybe <tool_call>{"name": "draft"}</tool_call>\n</think>\n\n'
        + block('{"name": "a", "arguments": {"x": 1}}')
        + block("{not json")
        + block('{"name": "b", "arguments": "{\\"y\\": 2}"}')
        + block('{"arguments": {}}')
        + '<tool_call>\n{"name": "c"'
    )
    items = parse_turn(text)
    assert items[0] == ToolCall("a", {"x": 1}) and items[2] == ToolCall("b", {"y": 2})
    assert [type(i) for i in items] == [ToolCall, Malformed, ToolCall, Malformed, Malformed]
    assert "not valid JSON" in items[1].reason and "no 'name'" in items[3].reason and "not closed" in items[4].reason


def test_unclosed_thinking_and_plain_answers_have_no_calls():
    assert parse_turn('<think>\nstill thinking <tool_call>{"name": "a"}</tool_call>') == []
    assert parse_turn("All done, nothing to call.<|im_end|>") == []
    assert parse_turn(block('{"name": "a"}')) == [ToolCall("a", {})]
    assert isinstance(parse_turn(block('{"name": "a", "arguments": [1]}'))[0], Malformed)


def test_transcript_skips_reasoning_and_tool_responses_per_turn():
    text = (
        "<think>\nr1\n</think>\n\n" + block('{"name": "a", "arguments": {}}') + "<|im_end|>\n<|im_start|>user\n"
        "<tool_response>\n" + block('{"name": "echoed", "arguments": {}}') + "\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<think>\nr2 "
        + block('{"name": "draft", "arguments": {}}')
        + "\n</think>\n\n"
        + block('{"name": "b", "arguments": {"k": "v"}}')
        + block("oops")
    )
    calls, malformed = parse_transcript(text)
    assert calls == [ToolCall("a", {}), ToolCall("b", {"k": "v"})] and malformed == 1


def test_call_list_accepts_json_strings_and_objects_and_names_bad_entries():
    calls = call_list(
        [{"name": "a", "arguments": '{"x": "1"}'}, {"name": "b", "arguments": {"y": 2}}, {"name": "c"}],
        "metadata.ground_truth",
    )
    assert calls == [ToolCall("a", {"x": "1"}), ToolCall("b", {"y": 2}), ToolCall("c", {})]
    assert call_list('[{"name": "a", "arguments": "{}"}]', "gt") == [ToolCall("a", {})]
    with pytest.raises(LabelError, match=r"metadata.ground_truth\[1\].arguments: not valid JSON"):
        call_list([{"name": "a"}, {"name": "b", "arguments": "{bad"}], "metadata.ground_truth")
    with pytest.raises(LabelError, match=r"gt\[0\]: expected an object with a string 'name'"):
        call_list([{"arguments": {}}], "gt")
    with pytest.raises(LabelError, match="expected a list"):
        call_list({"name": "a"}, "gt")


def test_responses_output_keeps_only_function_calls():
    output = [
        {"type": "function_call", "name": "a", "arguments": '{"x": 1}', "call_id": "c1"},
        {"type": "function_call_output", "call_id": "c1", "output": "{}"},
        {"type": "message", "content": [{"type": "output_text", "text": "done"}]},
    ]
    assert calls_from_responses_output(output) == [ToolCall("a", {"x": 1})]
