"""The prepared-row contract and the conversion of raw blend rows into it.

A prepared row (one jsonl line, read by slime with ``--input-key prompt --label-key label
--metadata-key metadata --tool-key tools``)::

    {"prompt": [{"role": ..., "content": ...}], "label": str | null,
     "metadata": {"domain": ..., "source": ..., "uid": ..., <what the domain's verifier needs>},
     "tools": [...]}                       # never null; [] outside the agent domain

Per-domain metadata: math: label = gold answer; science: label = letter, ``valid_letters``,
``options``; if: ``instruction_id_list``, ``kwargs`` (None-valued keys dropped), ``prompt_text``; code:
``unit_tests`` = {inputs, outputs, fn_name}; agent: ``ground_truth`` = [{name, arguments}] and
``tools`` in the OpenAI chat-completions form ``{"type": "function", "function": {name, description,
parameters}}``, which is what Qwen3's chat template renders inside ``<tools>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._dotted import load_dotted
from ..domains import SPECS
from ..errors import ConfigError, LabelError
from .config import PromptTemplate
from .templates import render

_ROLE_MAP = {"developer": "system", "system": "system", "user": "user", "assistant": "assistant"}
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[):.]\s", re.MULTILINE)
_ID_FIELDS = ("uid", "uuid", "id", "hash_id", "key", "record_id")


class RowError(LabelError):
    """A raw row cannot become a prepared row; `reason` is the summary-table bucket, `field` the culprit."""

    def __init__(self, reason: str, field: str, message: str):
        self.reason = reason
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Row:
    """One prepared prompt (see the module docstring for the JSON form)."""

    prompt: list[dict[str, str]]
    label: str | None
    domain: str
    metadata: dict[str, Any]
    tools: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "label": self.label,
            "metadata": {"domain": self.domain, **self.metadata},
            "tools": self.tools,
        }


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, Mapping)]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(texts)
    raise RowError("bad_prompt", where, f"content must be a string or text parts, got {type(content).__name__}")


def extract_messages(raw: Mapping[str, Any]) -> list[dict[str, str]]:
    """Chat messages of a raw row: ``responses_create_params.input``, else a ``prompt`` string or list."""
    params = raw.get("responses_create_params")
    where = "responses_create_params.input"
    value = params.get("input") if isinstance(params, Mapping) else None
    if value is None:
        where, value = "prompt", raw.get("prompt")
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise RowError("missing_prompt", where, "no chat messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLE_MAP:
            role = message.get("role") if isinstance(message, Mapping) else type(message).__name__
            raise RowError("bad_prompt", f"{where}[{i}]", f"not a system/developer/user/assistant message ({role})")
        text = _content_text(message.get("content"), f"{where}[{i}].content")
        messages.append({"role": _ROLE_MAP[message["role"]], "content": text})
    if not any(m["role"] == "user" for m in messages):
        raise RowError("missing_prompt", where, "no user message")
    return messages


def apply_template(messages: list[dict[str, str]], template: PromptTemplate) -> list[dict[str, str]]:
    """New message list with `template` applied to the first user message."""
    out = [dict(m) for m in messages]
    first = next(m for m in out if m["role"] == "user")
    first["content"] = render(template, first["content"])
    return out


def row_uid(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> str:
    """The row's own id when it has one, else a hash of its messages (stable across runs)."""
    for name in _ID_FIELDS:
        value = raw.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) != "":
            return str(value)
    digest = hashlib.sha1(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:16]


def _json_field(raw: Mapping[str, Any], name: str, reason: str) -> Any:
    value = raw.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise RowError(reason, name, "a string that is not valid JSON") from None
    return value


def to_chat_tools(tools: Any, where: str = "responses_create_params.tools") -> list[dict[str, Any]]:
    """Responses-API tool schemas (flat) -> chat-completions tools ``{"type": "function", "function": {...}}``."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise RowError("bad_tools", where, f"expected a list, got {type(tools).__name__}")
    out = []
    for i, tool in enumerate(tools):
        spec = tool.get("function") if isinstance(tool, Mapping) and "function" in tool else tool
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise RowError("bad_tools", f"{where}[{i}]", "a tool needs a non-empty name")
        function = {"name": spec["name"], "description": spec.get("description") or ""}
        function["parameters"] = spec.get("parameters") or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    return out


def _scalar_label(raw: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    for name in fields:
        value = raw.get(name)
        if isinstance(value, list):
            if len(value) != 1:
                raise RowError("bad_label", name, f"expected one gold answer, got a list of {len(value)}")
            value = value[0]
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise RowError("missing_label", fields[0], "no gold answer")


def math_row(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[str, dict[str, Any], list]:
    return _scalar_label(raw, ("expected_answer", "answer")), {}, []


def _options(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]] | None]:
    options = _json_field(raw, "options", "bad_options")
    if options is None:
        letters = _OPTION_LINE.findall(next(m["content"] for m in messages if m["role"] == "user"))
        expected = "".join(chr(ord("A") + i) for i in range(len(letters)))
        if len(letters) < 2 or "".join(letters) != expected:
            raise RowError("missing_options", "options", "no options field and no A/B/... option lines in the prompt")
        return expected, None
    if not isinstance(options, list) or len(options) < 2:
        raise RowError("bad_options", "options", "expected a list of at least two {letter: text} objects")
    cleaned = []
    for i, option in enumerate(options):
        if not isinstance(option, Mapping) or len(option) != 1:
            raise RowError("bad_options", f"options[{i}]", "expected one {letter: text} pair")
        ((letter, text),) = option.items()
        if not (isinstance(letter, str) and len(letter) == 1 and letter.isupper()) or not isinstance(text, str):
            raise RowError("bad_options", f"options[{i}]", f"bad option {dict(option)!r}")
        cleaned.append({letter: text})
    letters = "".join(next(iter(o)) for o in cleaned)
    if len(set(letters)) != len(letters):
        raise RowError("bad_options", "options", f"repeated letters {letters!r}")
    return letters, cleaned


def science_row(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[str, dict[str, Any], list]:
    label = _scalar_label(raw, ("expected_answer", "answer")).upper()
    valid_letters, options = _options(raw, messages)
    if label not in valid_letters or len(label) != 1:
        raise RowError("bad_label", "expected_answer", f"{label!r} is not one of the option letters {valid_letters}")
    metadata: dict[str, Any] = {"valid_letters": valid_letters}
    if options is not None:
        metadata["options"] = options
    return label, metadata, []


def if_row(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[None, dict[str, Any], list]:
    ids = _json_field(raw, "instruction_id_list", "bad_instructions")
    if not isinstance(ids, list) or not ids:
        raise RowError("missing_instructions", "instruction_id_list", "expected a non-empty list of instruction ids")
    if not all(isinstance(i, str) and i for i in ids):
        raise RowError("bad_instructions", "instruction_id_list", "every id must be a non-empty string")
    kwargs = _json_field(raw, "kwargs", "bad_kwargs")
    if kwargs is None:
        kwargs = [{} for _ in ids]
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise RowError(
            "bad_kwargs", "kwargs", f"expected a list of {len(ids)} objects aligned with instruction_id_list"
        )
    if not all(k is None or isinstance(k, Mapping) for k in kwargs):
        raise RowError("bad_kwargs", "kwargs", "every entry must be an object or null")
    clean = [{key: v for key, v in (k or {}).items() if v is not None} for k in kwargs]
    prompt_text = raw.get("prompt") if isinstance(raw.get("prompt"), str) else None
    if prompt_text is None:
        prompt_text = next(m["content"] for m in messages if m["role"] == "user")
    return None, {"instruction_id_list": list(ids), "kwargs": clean, "prompt_text": prompt_text}, []


def code_row(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[None, dict[str, Any], list]:
    meta = _json_field(raw, "verifier_metadata", "bad_tests")
    tests = meta.get("unit_tests") if isinstance(meta, Mapping) else None
    if isinstance(tests, str):
        tests = _json_field({"verifier_metadata.unit_tests": tests}, "verifier_metadata.unit_tests", "bad_tests")
    if not isinstance(tests, Mapping):
        raise RowError("missing_tests", "verifier_metadata.unit_tests", "no unit tests")
    inputs, outputs, fn_name = tests.get("inputs"), tests.get("outputs"), tests.get("fn_name")
    if not (isinstance(inputs, list) and isinstance(outputs, list) and inputs and len(inputs) == len(outputs)):
        raise RowError(
            "bad_tests", "verifier_metadata.unit_tests", "inputs/outputs must be equal-length non-empty lists"
        )
    if not all(isinstance(x, str) for x in [*inputs, *outputs]):
        raise RowError("bad_tests", "verifier_metadata.unit_tests", "inputs and outputs must be strings")
    if fn_name is not None and not (isinstance(fn_name, str) and fn_name):
        raise RowError("bad_tests", "verifier_metadata.unit_tests.fn_name", "must be a non-empty string or null")
    return None, {"unit_tests": {"inputs": inputs, "outputs": outputs, "fn_name": fn_name or None}}, []


def agent_row(raw: Mapping[str, Any], messages: list[dict[str, str]]) -> tuple[None, dict[str, Any], list]:
    calls = _json_field(raw, "ground_truth", "bad_ground_truth")
    if calls is None:
        raise RowError("missing_ground_truth", "ground_truth", "no ground-truth tool calls")
    if not isinstance(calls, list):
        raise RowError("bad_ground_truth", "ground_truth", f"expected a list, got {type(calls).__name__}")
    clean = []
    for i, call in enumerate(calls):
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str) or not call["name"]:
            raise RowError("bad_ground_truth", f"ground_truth[{i}]", "each call needs a name")
        arguments = call.get("arguments", {})
        parsed = _json_field({"arguments": arguments}, "arguments", "bad_ground_truth")
        if not isinstance(parsed, Mapping):
            raise RowError("bad_ground_truth", f"ground_truth[{i}].arguments", "must be a JSON object or its string")
        clean.append({"name": call["name"], "arguments": arguments})
    params = raw.get("responses_create_params")
    tools = to_chat_tools(params.get("tools") if isinstance(params, Mapping) else None)
    if not tools:
        raise RowError("missing_tools", "responses_create_params.tools", "an agent task needs its tool schemas")
    metadata: dict[str, Any] = {"ground_truth": clean}
    if isinstance(raw.get("category"), str) and raw["category"]:
        # The agent verifier's rule for ground truths that change nothing needs the task's toolkit.
        metadata["category"] = raw["category"]
    return None, metadata, tools


Converter = Callable[[Mapping[str, Any], list[dict[str, str]]], tuple[Any, dict[str, Any], list]]


def converter(domain: str) -> Converter:
    """The row converter of a domain (its `DomainSpec.converter`).

    Raises:
        ConfigError: the domain has no converter, so its rows cannot be prepared from the blend.
    """
    path = SPECS[domain].converter
    if path is None:
        raise ConfigError(
            f"domain {domain!r} has no row converter (DomainSpec.converter): its rows cannot be prepared"
        )
    return load_dotted(path)


def __getattr__(name: str) -> Any:
    if name == "CONVERTERS":  # a view of the registry, kept for callers of earlier versions
        return {domain: converter(domain) for domain, spec in SPECS.items() if spec.converter}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def convert_row(raw: Any, domain: str, source: str, template: PromptTemplate) -> Row:
    """Turn one raw blend row into a prepared `Row` of `domain`.

    Raises:
        RowError: the row lacks a field the domain's verifier needs or has it malformed (the message
            names the field; the caller adds file and line).
    """
    if not isinstance(raw, Mapping):
        raise RowError("bad_row", "<row>", f"expected a JSON object, got {type(raw).__name__}")
    messages = extract_messages(raw)
    label, metadata, tools = converter(domain)(raw, messages)
    if not tools:  # only the agent converter returns tools (it requires them); the others take the row's
        params = raw.get("responses_create_params")
        tools = to_chat_tools(params.get("tools") if isinstance(params, Mapping) else None)
    prompt = apply_template(messages, template)
    return Row(prompt, label, domain, {"source": source, "uid": row_uid(raw, messages), **metadata}, tools)
