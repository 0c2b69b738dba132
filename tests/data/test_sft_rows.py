"""Pins the SFT row contract of `m2rl_slime.data.sft_rows`: what is kept byte for byte, what is fixed, what drops."""

from __future__ import annotations

import json

import pytest

from m2rl_slime.data.sft_rows import CLEAN, FIXED, SFTRowError, check_row, has_placeholder_turn, is_clean


def conversation(**assistant):
    return {
        "uuid": "u1",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "add", **assistant},
        ],
    }


CALL = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}}
TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}


def test_a_row_already_in_slime_shape_is_clean_and_returned_unchanged():
    row = {**conversation(tool_calls=[CALL]), "tools": [TOOL]}
    row["messages"].append({"role": "tool", "content": "4", "tool_call_id": "c1"})
    row["messages"].append({"role": "assistant", "content": "done", "tool_calls": None})
    code, out = check_row(row)
    assert code == CLEAN and out is row


def test_json_string_tool_calls_and_tools_are_decoded_to_lists():
    row = {**conversation(tool_calls=json.dumps([CALL])), "tools": json.dumps([TOOL])}
    code, out = check_row(row)
    assert code == FIXED and out["messages"][2]["tool_calls"] == [CALL] and out["tools"] == [TOOL]
    assert isinstance(row["tools"], str), "the input row is not mutated"
    assert out["uuid"] == "u1", "other fields are kept"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"content": None, "tool_calls": [CALL]}, ""),
        ({"content": [{"type": "text", "text": "fo"}, {"type": "text", "text": "ur"}]}, "four"),
    ],
)
def test_content_is_normalised_to_a_string(change, expected):
    code, out = check_row(conversation(**change))
    assert code == FIXED and out["messages"][2]["content"] == expected


def test_tool_message_with_object_content_is_json_encoded_and_null_tools_become_empty():
    row = conversation()
    row["messages"].append({"role": "tool", "content": {"sum": 4}})
    row["tools"] = None
    code, out = check_row(row)
    assert code == FIXED and out["messages"][3]["content"] == '{"sum": 4}' and out["tools"] == []


def test_empty_json_string_tool_calls_are_dropped():
    code, out = check_row(conversation(tool_calls="[]"))
    assert code == FIXED and "tool_calls" not in out["messages"][2]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ([1, 2], "not_an_object"),
        ({"text": "no messages"}, "no_messages"),
        ({"messages": []}, "no_messages"),
        ({"messages": "hi"}, "no_messages"),
        ({"messages": ["hi"]}, "bad_message"),
        ({"messages": [{"role": "developer", "content": "x"}]}, "bad_role"),
        ({"messages": [{"role": "user", "content": 3}]}, "bad_content"),
        ({"messages": [{"role": "user", "content": "q"}]}, "no_assistant"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}, "empty_message"),
        (conversation(content="", reasoning_content=None), "empty_message"),
        (conversation(reasoning_content=7), "bad_reasoning"),
        (conversation(tool_calls="{not json"), "bad_tool_calls"),
        (conversation(tool_calls={"name": "f"}), "bad_tool_calls"),
        (conversation(tool_calls=[{"function": {"arguments": "{}"}}]), "bad_tool_calls"),
        ({**conversation(), "tools": "nope"}, "bad_tools"),
        ({**conversation(), "tools": [{"description": "no name"}]}, "bad_tools"),
        ({**conversation(), "tools": {"name": "f"}}, "bad_tools"),
    ],
)
def test_bad_rows_raise_with_a_reason(row, reason):
    with pytest.raises(SFTRowError) as exc:
        check_row(row)
    assert exc.value.reason == reason


def test_tool_calls_on_a_user_message_are_rejected():
    row = conversation()
    row["messages"][1]["tool_calls"] = [CALL]
    with pytest.raises(SFTRowError, match="only assistant messages"):
        check_row(row)


def test_an_assistant_turn_with_only_tool_calls_is_valid():
    code, _ = check_row(conversation(content="", reasoning_content=None, tool_calls=[CALL]))
    assert code == CLEAN


def test_placeholder_user_turns_are_detected():
    row = conversation()
    assert not has_placeholder_turn(row)
    row["messages"][1]["content"] = "-"
    assert has_placeholder_turn(row)


def _variants() -> list:
    """Rows around every rule of `check_row`: clean, fixed, invalid and placeholder ones."""
    tool_row = {**conversation(tool_calls=[CALL]), "tools": [TOOL]}
    tool_row["messages"].append({"role": "tool", "content": "4"})
    rows = [conversation(), tool_row, conversation(tool_calls=None), conversation(tool_calls=[])]
    rows += [conversation(content="", reasoning_content=None, tool_calls=[CALL]), {**conversation(), "tools": []}]
    for change in [
        {"content": None},
        {"content": ""},
        {"content": "", "reasoning_content": ""},
        {"content": [{"type": "text", "text": "x"}]},
        {"reasoning_content": 7},
        {"tool_calls": json.dumps([CALL])},
        {"tool_calls": "[]"},
        {"tool_calls": {"name": "f"}},
        {"tool_calls": [{"function": {"arguments": "{}"}}]},
        {"tool_calls": [{"name": ""}]},
        {"role": "robot"},
        {"role": "user"},
    ]:
        rows.append(conversation(**change))
    for tools in (None, "[]", {"name": "f"}, [{"description": "no name"}], [{"name": "f"}]):
        rows.append({**conversation(), "tools": tools})
    user_tool = conversation()
    user_tool["messages"][1]["tool_calls"] = [CALL]
    empty_tool_calls_on_user = conversation()
    empty_tool_calls_on_user["messages"][1]["tool_calls"] = []
    placeholder = conversation()
    placeholder["messages"][1]["content"] = "-"
    system_empty = conversation()
    system_empty["messages"][0]["content"] = ""
    no_role = conversation()
    del no_role["messages"][0]["role"]
    rows += [user_tool, empty_tool_calls_on_user, placeholder, system_empty, no_role]
    rows += [[1], "x", {"messages": []}, {"messages": ["hi"]}, {"messages": [{"role": "user", "content": "q"}]}]
    return rows


@pytest.mark.parametrize("row", _variants())
def test_the_fast_clean_check_agrees_with_check_row(row):
    try:
        code, out = check_row(row)
    except SFTRowError:
        code, out = None, None
    plain = code == CLEAN and out is row and not has_placeholder_turn(row)
    assert is_clean(row) == plain
