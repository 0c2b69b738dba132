"""Validation of one SFT conversation row, in the shape slime's SFT path consumes (not a slime hook).

slime's SFT rollout (``slime.rollout.sft_rollout``) renders ``sample.prompt`` (the row's ``messages``)
message by message with the tokenizer's chat template and passes ``metadata["tools"]`` (the row's
``tools``) to it. Stock slime decodes neither a JSON-string ``tool_calls`` (the paper's fork patched its
loader for that) nor anything but a list of tools, so rows are brought into that shape here:

- ``messages``: a non-empty list of objects with a ``role`` in `ROLES`; ``content`` a string (``None``
  becomes ``""``; a list of text parts is joined; a ``tool`` message's object/array content is JSON-encoded,
  as the paper does); ``reasoning_content`` a string or absent/None; ``tool_calls`` (assistant only) a list
  of calls, each naming a function (a JSON string is decoded). At least one assistant message (a
  conversation without one has no trained token, and slime's SFT rollout cannot build its loss mask).
- The paper's filter: a user or assistant message with no content, no reasoning and no tool calls drops the
  row.
- ``tools``: absent, or a list of tool objects each naming a function (a JSON string is decoded, ``None``
  becomes ``[]``).

`check_row` says whether a row is already in that shape (`CLEAN`: it can be copied byte for byte) or was
changed (`FIXED`: re-serialise the returned row), or raises `SFTRowError` with a reason code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ROLES = frozenset({"system", "user", "assistant", "tool"})
MESSAGES_KEY = "messages"
TOOLS_KEY = "tools"
CLEAN, FIXED = 1, 2
PLACEHOLDER_CONTENT = "-"  # user turns of the competitive-programming set that point at an external problem


class SFTRowError(ValueError):
    """A row that cannot be trained on; `reason` is the summary's counter name."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _decode(value: str, reason: str, what: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise SFTRowError(reason, f"{what} is a string that is not JSON ({exc.msg})") from None


def _function_name(item: Any) -> Any:
    if not isinstance(item, Mapping):
        return None
    function = item.get("function")
    return function.get("name") if isinstance(function, Mapping) else item.get("name")


def _check_tool_calls(calls: Any, where: str) -> tuple[list | None, bool]:
    """(calls, changed); None when there are none."""
    changed = False
    if isinstance(calls, str):
        calls, changed = _decode(calls, "bad_tool_calls", f"{where}.tool_calls"), True
    if calls is None:
        return None, changed
    if not isinstance(calls, list):
        raise SFTRowError("bad_tool_calls", f"{where}.tool_calls must be a list, got {type(calls).__name__}")
    for i, call in enumerate(calls):
        name = _function_name(call)
        if not isinstance(name, str) or not name:
            raise SFTRowError("bad_tool_calls", f"{where}.tool_calls[{i}] names no function")
    return calls, changed


def _content(message: Mapping[str, Any], where: str) -> tuple[str, bool]:
    content = message.get("content")
    if isinstance(content, str):
        return content, False
    if content is None:
        return "", True
    if message["role"] == "tool" and isinstance(content, (dict, list)) and not _is_text_parts(content):
        return json.dumps(content, ensure_ascii=False), True
    if _is_text_parts(content):
        return "".join(part["text"] for part in content), True
    raise SFTRowError("bad_content", f"{where}.content must be a string, got {type(content).__name__}")


def _is_text_parts(content: Any) -> bool:
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content)
    )


def _check_message(message: Any, where: str) -> tuple[Any, bool]:
    if not isinstance(message, dict):
        raise SFTRowError("bad_message", f"{where} must be an object, got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
        raise SFTRowError("bad_role", f"{where}.role {role!r} is not one of {', '.join(sorted(ROLES))}")
    content, changed = _content(message, where)
    reasoning = message.get("reasoning_content")
    if reasoning is not None and not isinstance(reasoning, str):
        raise SFTRowError("bad_reasoning", f"{where}.reasoning_content must be a string")
    calls, calls_changed = _check_tool_calls(message.get("tool_calls"), where)
    if calls and role != "assistant":
        raise SFTRowError("bad_tool_calls", f"{where}: only assistant messages carry tool_calls (role {role!r})")
    if role in ("user", "assistant") and not content and not reasoning and not calls:
        raise SFTRowError("empty_message", f"{where}: {role} message has no content, reasoning or tool calls")
    if not (changed or calls_changed):
        return message, False
    fixed = dict(message)
    fixed["content"] = content
    if calls_changed:
        if calls:
            fixed["tool_calls"] = calls
        else:
            fixed.pop("tool_calls", None)
    return fixed, True


def _check_tools(row: Mapping[str, Any]) -> tuple[Any, bool]:
    if TOOLS_KEY not in row:
        return None, False
    tools, changed = row[TOOLS_KEY], False
    if isinstance(tools, str):
        tools, changed = _decode(tools, "bad_tools", "tools"), True
    if tools is None:
        return [], True
    if not isinstance(tools, list):
        raise SFTRowError("bad_tools", f"tools must be a list, got {type(tools).__name__}")
    for i, tool in enumerate(tools):
        name = _function_name(tool)
        if not isinstance(name, str) or not name:
            raise SFTRowError("bad_tools", f"tools[{i}] names no function")
    return tools, changed


def check_row(row: Any) -> tuple[int, dict]:
    """Validate one row; returns ``(CLEAN, row)`` unchanged or ``(FIXED, new_row)``.

    Other top-level fields are kept as they are.

    Raises:
        SFTRowError: with `reason` ``not_an_object``, ``no_messages``, ``bad_message``, ``bad_role``,
            ``bad_content``, ``bad_reasoning``, ``bad_tool_calls``, ``empty_message``, ``no_assistant``
            or ``bad_tools``.
    """
    if not isinstance(row, dict):
        raise SFTRowError("not_an_object", f"a row must be a JSON object, got {type(row).__name__}")
    messages = row.get(MESSAGES_KEY)
    if not isinstance(messages, list) or not messages:
        raise SFTRowError("no_messages", f"no {MESSAGES_KEY!r} list (or it is empty)")
    fixed_messages, changed = [], False
    for i, message in enumerate(messages):
        checked, message_changed = _check_message(message, f"{MESSAGES_KEY}[{i}]")
        fixed_messages.append(checked)
        changed |= message_changed
    if not any(m["role"] == "assistant" for m in fixed_messages):
        raise SFTRowError("no_assistant", "no assistant message: nothing to train on")
    tools, tools_changed = _check_tools(row)
    if not (changed or tools_changed):
        return CLEAN, row
    fixed = dict(row)
    fixed[MESSAGES_KEY] = fixed_messages
    if tools_changed:
        fixed[TOOLS_KEY] = tools
    return FIXED, fixed


def _names_functions(items: list) -> bool:
    for item in items:
        name = _function_name(item)
        if not isinstance(name, str) or not name:
            return False
    return True


def is_clean(row: Any) -> bool:
    """True when `check_row` returns ``(CLEAN, row)`` and no user turn is the ``-`` placeholder: the common
    row, checked without building anything. False decides nothing (`check_row` then says what the row is)."""
    if not isinstance(row, dict):
        return False
    messages = row.get(MESSAGES_KEY)
    if not isinstance(messages, list) or not messages:
        return False
    assistant = False
    for message in messages:
        if not isinstance(message, dict):
            return False
        role, content = message.get("role"), message.get("content")
        reasoning, calls = message.get("reasoning_content"), message.get("tool_calls")
        if not isinstance(content, str) or (reasoning is not None and not isinstance(reasoning, str)):
            return False
        if calls is not None and not (
            isinstance(calls, list) and (role == "assistant" or not calls) and _names_functions(calls)
        ):
            return False
        if role == "assistant":
            assistant = True
            if not content and not reasoning and not calls:
                return False
        elif role == "user":
            if (not content and not reasoning) or content == PLACEHOLDER_CONTENT:
                return False
        elif role != "system" and role != "tool":
            return False
    if not assistant:
        return False
    tools = row.get(TOOLS_KEY, [])
    return isinstance(tools, list) and _names_functions(tools)


def has_placeholder_turn(row: Mapping[str, Any]) -> bool:
    """True when a user turn is the bare ``-`` the competitive-programming set ships instead of the problem."""
    return any(m.get("role") == "user" and m.get("content") == PLACEHOLDER_CONTENT for m in row[MESSAGES_KEY])
