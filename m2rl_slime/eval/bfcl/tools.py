"""BFCL function docs -> the OpenAI tool schemas put in the prompt (what bfcl-eval's FC handlers do).

Two steps, as in bfcl-eval when it prepares a function-calling prompt:

1. the language hint: every description gains `` Note that the provided function is in Python 3 syntax.``
   (Java 8 SDK / JavaScript for those categories); Java and JavaScript parameters become ``string`` with
   their declared type (and element type / object schema) spelled out in the description, because the
   model must answer with source literals;
2. the type mapping to JSON schema: ``dict`` -> ``object``, ``float`` -> ``number`` (with ``format: float``
   and `` This is a float type value.`` in the description), ``tuple`` -> ``array``, ``any`` -> ``string``,
   Java/JS type names to their JSON kinds, nested ``properties``/``items`` likewise; unknown types become
   ``string``.

Function names keep their dots by default: bfcl-eval's Qwen3 FC models do not rename (``underscore_to_dot``
is False for them). With ``underscore_names=True`` dots become underscores, as for the OpenAI-style models,
and the checker then compares against the renamed names.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

TO_JSON_SCHEMA: dict[str, str] = {
    "integer": "integer", "number": "number", "float": "number", "string": "string", "boolean": "boolean",
    "bool": "boolean", "array": "array", "list": "array", "dict": "object", "object": "object", "tuple": "array",
    "any": "string", "byte": "integer", "short": "integer", "long": "integer", "double": "number",
    "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object", "Hashtable": "object",
    "Queue": "array", "Stack": "array", "Any": "string", "String": "string", "Bigint": "integer",
}  # fmt: skip

HINTS = {
    "python": " Note that the provided function is in Python 3 syntax.",
    "java": " Note that the provided function is in Java 8 SDK syntax.",
    "javascript": " Note that the provided function is in JavaScript syntax.",
}


def _java_param(spec: dict[str, Any]) -> None:
    if spec.get("type") == "any":
        spec["description"] = spec.get("description", "") + (
            " This parameter can be of any type of Java object in string representation."
        )
    else:
        spec["description"] = spec.get("description", "") + (
            f" This is Java {spec.get('type')} type parameter in string representation."
        )
    if spec.get("type") in ("ArrayList", "Array"):
        items = spec.pop("items", {}) or {}
        spec["description"] += (
            f" The list elements are of type {items.get('type')}; they are not in string representation."
        )
    spec["type"] = "string"


def _js_param(spec: dict[str, Any]) -> None:
    kind = spec.get("type")
    if kind == "any":
        spec["description"] = spec.get("description", "") + (
            " This parameter can be of any type of JavaScript object in string representation."
        )
    else:
        spec["description"] = spec.get("description", "") + (
            f" This is JavaScript {kind} type parameter in string representation."
        )
    if kind == "array":
        items = spec.pop("items", {}) or {}
        spec["description"] += (
            f" The list elements are of type {items.get('type')}; they are not in string representation."
        )
    if kind == "dict" and "properties" in spec:
        spec["description"] += (
            " The dictionary entries have the following schema; they are not in string representation. "
            + json.dumps(spec.pop("properties"))
        )
    spec["type"] = "string"


def with_language_hint(doc: Mapping[str, Any], language: str) -> dict[str, Any]:
    """A copy of one function doc with BFCL's language hint applied (step 1 of the module docstring)."""
    doc = copy.deepcopy(dict(doc))
    doc["description"] = doc.get("description", "") + HINTS[language]
    properties = doc.get("parameters", {}).get("properties", {})
    if language in ("java", "javascript"):
        for spec in properties.values():
            (_java_param if language == "java" else _js_param)(spec)
    return doc


def _json_type(kind: Any) -> str:
    return TO_JSON_SCHEMA.get(kind, "string") if isinstance(kind, str) else "string"


def _cast(properties: dict[str, Any]) -> dict[str, Any]:
    for spec in properties.values():
        if "type" not in spec:
            spec["type"] = "string"
        else:
            if spec["type"] == "float":
                spec["format"] = "float"
                spec["description"] = spec.get("description", "") + " This is a float type value."
            spec["type"] = _json_type(spec["type"])
        if spec["type"] not in ("array", "object"):
            continue
        if isinstance(spec.get("properties"), dict):
            spec["properties"] = _cast(spec["properties"])
        elif isinstance(spec.get("items"), dict):
            items = spec["items"]
            items["type"] = _json_type(items.get("type"))
            if items["type"] == "array" and isinstance(items.get("items"), dict):
                items["items"]["type"] = _json_type(items["items"].get("type"))
            elif items["type"] == "object" and isinstance(items.get("properties"), dict):
                items["properties"] = _cast(items["properties"])
    return properties


def to_tool(doc: Mapping[str, Any], language: str, *, underscore_names: bool = False, hint: bool = True) -> dict:
    """One BFCL function doc -> ``{"type": "function", "function": {name, description, parameters}}``."""
    function = with_language_hint(doc, language) if hint else copy.deepcopy(dict(doc))
    if underscore_names and "." in function["name"]:
        function["name"] = re.sub(r"\.", "_", function["name"])
    parameters = function.setdefault("parameters", {})
    parameters["type"] = "object"
    parameters["properties"] = _cast(parameters.get("properties") or {})
    return {"type": "function", "function": function}


def to_tools(
    docs: Sequence[Mapping[str, Any]], language: str, *, underscore_names: bool = False, hint: bool = True
) -> list[dict]:
    """`to_tool` for each doc, in order."""
    return [to_tool(doc, language, underscore_names=underscore_names, hint=hint) for doc in docs]
