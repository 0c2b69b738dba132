"""Tool calls in and out of text and data: Qwen3 `<tool_call>` blocks, ground-truth lists, Responses output.

Qwen3 (and Qwen2.5) emit calls as

    <tool_call>
    {"name": "email_delete_email", "arguments": {"email_id": "00000259"}}
    </tool_call>

after the reasoning (`<think>...</think>`). A block that is not valid JSON, or has no tool name, is reported
as malformed: the rollout turns it into an error observation, never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LabelError
from .env import ToolCall

_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TOOL_RESPONSE = re.compile(r"<tool_response>.*?</tool_response>", re.DOTALL)
THINK_CLOSE = "</think>"


def _decode_call(raw: str) -> ToolCall | str:
    """One block's JSON -> ToolCall, or the reason it is malformed."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"the tool call is not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(data, Mapping):
        return "the tool call must be a JSON object with 'name' and 'arguments'"
    name = data.get("name")
    if not isinstance(name, str) or not name:
        return "the tool call has no 'name'"
    arguments = data.get("arguments", data.get("parameters", {}))
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return f"the arguments of {name!r} are not a JSON object"
    if not isinstance(arguments, Mapping):
        return f"the arguments of {name!r} must be a JSON object"
    return ToolCall(name, dict(arguments))


@dataclass(frozen=True, slots=True)
class Malformed:
    """A `<tool_call>` block that could not be read, and why (shown to the model as an error)."""

    reason: str


def parse_turn(text: str) -> list[ToolCall | Malformed]:
    """The calls of one assistant turn, in order, malformed blocks included as `Malformed`.

    Only the text after the turn's last `</think>` is searched (reasoning may draft calls it never makes);
    a turn that opens `<think>` without closing it has no calls.
    """
    cut = text.rfind(THINK_CLOSE)
    if cut >= 0:
        text = text[cut + len(THINK_CLOSE) :]
    elif "<think>" in text:
        return []
    items: list[ToolCall | Malformed] = []
    end = 0
    for match in _BLOCK.finditer(text):
        decoded = _decode_call(match.group(1).strip())
        items.append(decoded if isinstance(decoded, ToolCall) else Malformed(decoded))
        end = match.end()
    if "<tool_call>" in text[end:]:
        items.append(Malformed("a <tool_call> block is not closed with </tool_call>"))
    return items


def parse_transcript(text: str) -> tuple[list[ToolCall], int]:
    """All calls in a whole multi-turn response text (offline scoring without recorded calls).

    The text is split into assistant turns at the tool responses, and each turn is parsed like
    `parse_turn` (so reasoning is skipped per turn). Returns the calls and the number of malformed blocks.
    """
    calls: list[ToolCall] = []
    malformed = 0
    for turn in _TOOL_RESPONSE.split(text):
        for item in parse_turn(turn):
            if isinstance(item, ToolCall):
                calls.append(item)
            else:
                malformed += 1
    return calls, malformed


def call_list(items: Any, where: str) -> list[ToolCall]:
    """Parse `[{"name": ..., "arguments": <JSON string or object>}, ...]` (a JSON string of it is accepted).

    Raises:
        LabelError: naming `where` and the offending index.
    """
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except json.JSONDecodeError as exc:
            raise LabelError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise LabelError(f"{where}: expected a list of {{name, arguments}}, got {type(items).__name__}")
    calls = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise LabelError(f"{where}[{i}]: expected an object with a string 'name', got {item!r:.200}")
        arguments = item.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise LabelError(f"{where}[{i}].arguments: not valid JSON ({exc.msg})") from None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise LabelError(f"{where}[{i}].arguments: expected a JSON object, got {type(arguments).__name__}")
        calls.append(ToolCall(item["name"], dict(arguments)))
    return calls


def calls_from_responses_output(output: Any, where: str = "response.output") -> list[ToolCall]:
    """The `function_call` items of an OpenAI Responses / NeMo-Gym `response.output` list, in order."""
    if not isinstance(output, list):
        raise LabelError(f"{where}: expected a list, got {type(output).__name__}")
    items = [item for item in output if isinstance(item, Mapping) and item.get("type") == "function_call"]
    return call_list(items, where)
