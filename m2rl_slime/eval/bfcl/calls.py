"""Qwen3 `<tool_call>` text <-> the call lists BFCL's checkers take, decoded exactly as BFCL's Qwen FC handler does.

The reference (bfcl-eval's ``QwenFCHandler``) keeps the text after the last ``</think>`` (leading newlines
dropped), finds every ``<tool_call>\\n...\\n</tool_call>`` block (the newlines are part of the pattern), JSON-decodes
each block and silently skips the ones that do not decode. Then:

- for the AST checker, every decoded block must be a JSON object with ``name`` and an object ``arguments``,
  else the whole response fails to decode (`DecodeError`);
- for multi-turn execution, ``arguments`` may also be a JSON string of an object, and each call becomes the
  Python call string ``name(k1=repr(v1),k2=repr(v2))`` that BFCL's executor and multi-turn checker take.

Everything here is linear in the length of the text (the reference's regular expression is not: it rescans
the rest of the text from every unclosed opening tag).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

THINK_CLOSE = "</think>"
OPEN = "<tool_call>\n"
CLOSE = "\n</tool_call>"


class DecodeError(ValueError):
    """The response is not in function-calling format (BFCL: the decoder raised)."""


def answer_text(response: str) -> str:
    """The part of a response BFCL's Qwen handler keeps: after the last ``</think>``, leading newlines removed."""
    cut = response.rfind(THINK_CLOSE)
    return response[cut + len(THINK_CLOSE) :].lstrip("\n") if cut >= 0 else response


def tool_call_blocks(text: str) -> list[str]:
    """The bodies of the ``<tool_call>\\n...\\n</tool_call>`` blocks of `text`, in order (non-overlapping)."""
    blocks: list[str] = []
    pos = 0
    while True:
        start = text.find(OPEN, pos)
        if start < 0:
            return blocks
        body = start + len(OPEN)
        end = text.find(CLOSE, body)
        if end < 0:  # no closing tag after this opening one, hence none after any later one either
            return blocks
        blocks.append(text[body:end])
        pos = end + len(CLOSE)


def _decoded_blocks(text: str) -> list[dict[str, Any]]:
    items = []
    for block in tool_call_blocks(text):
        try:
            items.append(json.loads(block))
        except (ValueError, RecursionError):  # the reference skips any block that does not decode
            continue
    if any(type(item) is not dict for item in items):
        raise DecodeError("a <tool_call> block is valid JSON but not an object")
    return items


def _name_and_arguments(item: Mapping[str, Any]) -> tuple[Any, Any]:
    if "name" not in item or "arguments" not in item:
        raise DecodeError(f"a tool call lacks {'name' if 'name' not in item else 'arguments'!r}")
    name = item["name"]
    try:
        hash(name)
    except TypeError:
        raise DecodeError(f"the tool name is a JSON {type(name).__name__}") from None
    return name, item["arguments"]


def decode_ast(text: str) -> list[tuple[Any, dict[str, Any]]]:
    """The calls of `text` (already cut by `answer_text`) for the AST checker: ``[(name, arguments), ...]``.

    Raises:
        DecodeError: a decoded block is not an object, lacks ``name``/``arguments``, or has non-object arguments.
    """
    calls = []
    for item in _decoded_blocks(text):
        name, arguments = _name_and_arguments(item)
        if not isinstance(arguments, dict):
            raise DecodeError(f"the arguments of {name!r} are a JSON {type(arguments).__name__}, not an object")
        calls.append((name, arguments))
    return calls


def call_string(name: Any, arguments: Mapping[str, Any]) -> str:
    """BFCL's executable form of one call: ``name(k=repr(v),...)`` (no spaces, keyword order kept)."""
    return f"{name}({','.join(f'{k}={v!r}' for k, v in arguments.items())})"


def decode_execute(text: str) -> list[str]:
    """The calls of `text` as BFCL's executable call strings (an empty list: the model made no call).

    Raises:
        DecodeError: as `decode_ast`, except that arguments given as a JSON string of an object are accepted.
    """
    pairs = []
    for item in _decoded_blocks(text):
        name, arguments = _name_and_arguments(item)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except (ValueError, RecursionError):
                raise DecodeError(f"the arguments string of {name!r} is not JSON") from None
        if not isinstance(arguments, dict):
            raise DecodeError(f"the arguments of {name!r} are a JSON {type(arguments).__name__}, not an object")
        pairs.append((name, arguments))
    return [call_string(name, arguments) for name, arguments in pairs]


def _arguments_object(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except (ValueError, RecursionError):
            return arguments
    return arguments


def message_text(message: Mapping[str, Any]) -> str:
    """The Qwen3 text of an assistant message (what the model generated): its content, then its tool calls.

    A message whose tool calls were already parsed by the server (OpenAI ``tool_calls``) is turned back into
    ``<tool_call>`` blocks, so both kinds of server are decoded by the same rules. Reasoning is not included.
    """
    content = message.get("content")
    text = answer_text(content) if isinstance(content, str) else ""
    blocks = []
    for call in message.get("tool_calls") or ():
        function = call.get("function", call) if isinstance(call, Mapping) else {}
        payload = {"name": function.get("name"), "arguments": _arguments_object(function.get("arguments", {}))}
        blocks.append(OPEN + json.dumps(payload, ensure_ascii=False) + CLOSE)
    return "\n".join(part for part in (text.strip(), *blocks) if part)


def _split(answer: str) -> tuple[str, list[Any]]:
    """(the text outside the blocks that decode as JSON, the decoded blocks)."""
    rest, items, pos = [], [], 0
    while True:
        start = answer.find(OPEN, pos)
        end = answer.find(CLOSE, start + len(OPEN)) if start >= 0 else -1
        if end < 0:
            rest.append(answer[pos:])
            return "".join(rest).strip(), items
        try:
            items.append(json.loads(answer[start + len(OPEN) : end]))
            rest.append(answer[pos:start])
        except (ValueError, RecursionError):
            rest.append(answer[pos : end + len(CLOSE)])
        pos = end + len(CLOSE)


def step_message(text: str, reasoning: str | None = None, id_prefix: str = "call") -> tuple[dict, list[str] | None]:
    """The assistant message kept in the conversation for one step, and the step's executable calls.

    Calls that decode become structured OpenAI ``tool_calls`` (ids ``<id_prefix>_<i>``, arguments as JSON
    strings), so the chat template renders them in every later prompt: a model's earlier calls are never
    dropped from its history. The text outside the blocks stays as the content. The calls are None when the
    step does not decode and ``[]`` when it makes no call (either ends the turn).
    """
    answer = answer_text(text)
    try:
        calls = decode_execute(answer)
    except DecodeError:
        calls = None
    message: dict[str, Any] = {"role": "assistant", "content": answer.strip()}
    if calls:
        content, items = _split(answer)
        message["content"] = content
        message["tool_calls"] = [
            {"id": f"{id_prefix}_{i}", "type": "function", "function": {"name": str(item["name"]),
             "arguments": json.dumps(_arguments_object(item["arguments"]), ensure_ascii=False)}}
            for i, item in enumerate(items)
        ]  # fmt: skip
    if reasoning:
        message["reasoning_content"] = reasoning
    return message, calls


def reasoning_text(response: str) -> str | None:
    """The reasoning of a response (between ``<think>`` and the last ``</think>``), or None."""
    cut = response.rfind(THINK_CLOSE)
    if cut < 0:
        return None
    head = response[:cut]
    open_at = head.find("<think>")
    return (head[open_at + len("<think>") :] if open_at >= 0 else head).strip("\n") or None


def tool_messages(calls: Sequence[str], results: Sequence[str], id_prefix: str = "call") -> list[dict[str, str]]:
    """One ``tool`` message per executed call, in call order (the results the model sees next)."""
    return [
        {"role": "tool", "tool_call_id": f"{id_prefix}_{i}", "name": call.split("(", 1)[0], "content": result}
        for i, (call, result) in enumerate(zip(calls, results, strict=True))
    ]
