"""Decoding Qwen3 `<tool_call>` text the way BFCL's Qwen FC handler does, and the history messages built from it."""

from __future__ import annotations

import json

import pytest

from m2rl_slime.eval.bfcl.calls import (
    DecodeError,
    answer_text,
    call_string,
    decode_ast,
    decode_execute,
    message_text,
    reasoning_text,
    step_message,
    tool_call_blocks,
    tool_messages,
)


def block(payload) -> str:
    return f"<tool_call>\n{json.dumps(payload)}\n</tool_call>"


def test_answer_text_keeps_what_follows_the_last_think_close():
    assert answer_text("<think>a</think>b</think>\n\nc") == "c"
    assert answer_text("<think>unclosed <tool_call>") == "<think>unclosed <tool_call>"


def test_blocks_need_the_newlines_and_do_not_overlap():
    text = "<tool_call>\nA\n</tool_call><tool_call>B</tool_call>\n<tool_call>\n\n</tool_call><tool_call>\nC"
    assert tool_call_blocks(text) == ["A", ""]


def test_decode_ast_skips_undecodable_blocks_and_rejects_non_objects():
    good = block({"name": "f", "arguments": {"x": 1}})
    assert decode_ast(good + "\n<tool_call>\n{oops\n</tool_call>") == [("f", {"x": 1})]
    for bad in ('<tool_call>\n[1]\n</tool_call>', block({"name": "f"}), block({"arguments": {}}),
                block({"name": "f", "arguments": "{}"}), block({"name": ["f"], "arguments": {}})):  # fmt: skip
        with pytest.raises(DecodeError):
            decode_ast(good + "\n" + bad)


def test_decode_execute_renders_bfcl_call_strings():
    text = block({"name": "cd", "arguments": {"folder": "docs", "deep": True}}) + block(
        {"name": "ls", "arguments": json.dumps({"a": [1, "x"]})}
    )
    assert decode_execute(text) == ["cd(folder='docs',deep=True)", "ls(a=[1, 'x'])"]
    assert decode_execute("no calls") == []
    with pytest.raises(DecodeError):
        decode_execute(block({"name": "ls", "arguments": "not json"}))
    assert call_string("f", {}) == "f()"


def test_message_text_turns_server_parsed_calls_back_into_blocks():
    message = {"content": "<think>hm</think>\n\nSure.", "tool_calls": [
        {"type": "function", "function": {"name": "cd", "arguments": '{"folder": "a"}'}},
        {"function": {"name": "pwd", "arguments": {}}}]}  # fmt: skip
    text = message_text(message)
    assert text.startswith("Sure.\n<tool_call>\n")
    assert decode_execute(text) == ["cd(folder='a')", "pwd()"]
    assert message_text({"content": None}) == ""


def test_step_message_keeps_calls_structured_and_text_as_content():
    text = "Let me look.\n" + block({"name": "cd", "arguments": {"folder": "é"}}) + "\n<tool_call>\n{bad\n</tool_call>"
    message, calls = step_message(text, reasoning="thinking", id_prefix="call_0_0")
    assert calls == ["cd(folder='é')"]
    assert message["tool_calls"] == [
        {"id": "call_0_0_0", "type": "function", "function": {"name": "cd", "arguments": '{"folder": "é"}'}}
    ]
    assert message["content"] == "Let me look.\n\n<tool_call>\n{bad\n</tool_call>"
    assert message["reasoning_content"] == "thinking"
    assert step_message("just text") == ({"role": "assistant", "content": "just text"}, [])
    undecodable = "<tool_call>\n[1]\n</tool_call>"
    assert step_message(undecodable) == ({"role": "assistant", "content": undecodable}, None)


def test_reasoning_and_tool_messages():
    assert reasoning_text("<think>\nplan\n</think>\n\nx") == "plan"
    assert reasoning_text("no think") is None
    assert tool_messages(["cd(folder='a')"], ["ok"], "call_1_0") == [
        {"role": "tool", "tool_call_id": "call_1_0_0", "name": "cd", "content": "ok"}
    ]
