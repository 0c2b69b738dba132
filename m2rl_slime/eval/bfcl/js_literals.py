"""JavaScript source literals -> Python values, as BFCL's JavaScript category converts them.

Like the Java category, every argument is a JavaScript source string (``"'abc'"``, ``"42"``, ``"12n"``,
``"[1, 'two', true]"``, ``"{key: 'value'}"``). The rules reproduced here are bfcl-eval's
``js_type_converter``: quoted strings lose their quotes, numbers and booleans convert when they have the exact
shape, arrays and objects are split on commas without any nesting awareness (a quirk kept on purpose: the
verdicts must be the reference's), and anything else stays a string. The reference's 2-D array pattern
backtracks exponentially on an unclosed list of lists; here the same first match is computed by a right-to-left
pass, so every conversion is linear in the length of the literal.
"""

from __future__ import annotations

import re
from typing import Any

from ._scan import Finder, lazy_line_group, ws_end

JS_TYPES: dict[str, type] = {
    "String": str, "integer": int, "float": float, "Bigint": int, "Boolean": bool, "dict": dict, "array": list,
    "any": str,
}  # fmt: skip

_INT = re.compile(r"-?\d+$")
_FLOAT = re.compile(r"-?\d+(\.\d+)?$")
_BIGINT = re.compile(r"-?\d+n$")
_NEW_ARRAY = re.compile(r"new\s+Array\(")
_NEW_ARRAY_LIST = re.compile(r"new\s+Array\(\s*\[")


class UnsupportedJsType(ValueError):
    """A declared type the reference converter cannot handle (it raises; a data problem, never the model's)."""


def _quoted(text: str) -> bool:
    return (text.startswith('"') and text.endswith('"')) or (text.startswith("'") and text.endswith("'"))


def convert(value: str, js_type: str, nested_type: str | None = None) -> Any:
    """Convert one JavaScript source string by its declared type (BFCL's rules; see the module docstring).

    Raises:
        UnsupportedJsType: `js_type` is not a type BFCL converts.
        ValueError: a BigInt literal with a trailing newline (the reference raises too).
    """
    if js_type not in JS_TYPES:
        raise UnsupportedJsType(f"JavaScript type {js_type!r} is not converted by the reference checker")
    if js_type == "String":
        return value[1:-1] if _quoted(value) else str(value)
    if js_type == "integer":
        return int(value) if _INT.match(value) else str(value)
    if js_type == "float":
        return float(value) if _FLOAT.match(value) else str(value)
    if js_type == "Bigint":
        return int(value[:-1]) if _BIGINT.match(value) else str(value)
    if js_type == "Boolean":
        return value == "true" if value in ("true", "false") else str(value)
    if js_type == "dict":
        return _dict(value.strip())
    if js_type == "array":
        try:
            return _array(value.strip(), nested_type)
        except Exception:  # the reference returns the literal unchanged when any element conversion raises
            return value.strip()
    return str(value)


def parse_value(text: str) -> Any:
    """A JavaScript literal without a declared type: boolean, quoted string, int, float, or the text."""
    text = text.strip()
    if text == "true":
        return True
    if text == "false":
        return False
    if _quoted(text):
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _list_of_lists_end(code: str, start: int, close: str) -> int:
    """End of the first match of ``\\[.*?\\]\\s*(,\\s*\\[.*?\\]\\s*)*<close>`` whose first ``.*?`` begins at `start`.

    The backtracking order of the reference's pattern tries, for each lazy group, its ``]`` ends from left to
    right and explores everything after one end before the next; so the result from a position depends only
    on the position and can be computed right to left: ``first[p]`` is the end of the first match of
    ``.*?\\]<rest>`` from `p`, ``after(p)`` the end of ``\\s*(,\\s*\\[ first | <close>)`` from `p`.
    """
    n = len(code)
    ws = list(range(n + 1))
    for p in range(n - 1, -1, -1):
        if code[p].isspace():
            ws[p] = ws[p + 1]
    first = [-1] * (n + 2)

    def after(p: int) -> int:
        y = ws[p] if p <= n else n
        if y < n and code[y] == close:
            return y + 1
        if y < n and code[y] == ",":
            z = ws[y + 1]
            if z < n and code[z] == "[":
                return first[z + 1]
        return -1

    for p in range(n - 1, start - 1, -1):
        c = code[p]
        if c == "\n":
            first[p] = -1
        elif c == "]" and (end := after(p + 1)) >= 0:
            first[p] = end
        else:
            first[p] = first[p + 1]
    return first[start] if start < n else -1


def _two_d_end(code: str) -> int:
    # re.match(r"\[\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\]|\bnew\s+Array\(\s*\[.*?\]\s*(,\s*\[.*?\]\s*)*\)", code)
    if code.startswith("["):
        inner = ws_end(code, 1)
        return _list_of_lists_end(code, inner + 1, "]") if inner < len(code) and code[inner] == "[" else -1
    m = _NEW_ARRAY_LIST.match(code)
    return _list_of_lists_end(code, m.end(), ")") if m else -1


def _bracket_groups(text: str) -> list[str]:
    # re.findall(r"\[(.*?)\]", text)
    finder, out, pos = Finder(text), [], 0
    while (i := text.find("[", pos)) >= 0:
        end = lazy_line_group(finder, i + 1, "]", 0)
        if end >= 0:
            out.append(text[i + 1 : end])
            pos = end + 1
        elif finder.find("]", i + 1) < 0:
            break
        else:
            pos = i + 1
    return out


def _array(code: str, nested_type: str | None) -> Any:
    end = _two_d_end(code)
    if end >= 0:
        rows = []
        for idx, inner in enumerate(_bracket_groups(code[:end])):
            inner = inner.strip()
            if idx == 0 and inner.startswith("["):
                inner = inner[1:]
            rows.append([parse_value(e.strip()) for e in inner.split(",")])
        return rows
    finder = Finder(code)
    group = None
    if code.startswith("["):
        close = lazy_line_group(finder, 1, "]", 0)
        group = code[1:close] if close >= 0 else None
    elif (m := _NEW_ARRAY.match(code)) is not None:
        close = lazy_line_group(finder, m.end(), ")", 0)
        group = code[m.end() : close] if close >= 0 else None
    if group is None:
        return code
    elements = group.strip().split(",") if group.strip() else []
    if not nested_type:
        return [parse_value(e.strip()) for e in elements]
    return [
        convert(e.strip(), nested_type, "String") if e.strip()[:1] in ("'", '"') else convert(e.strip(), nested_type)
        for e in elements
    ]


def _pairs(content: str) -> list[tuple[str, str]]:
    # re.findall(r"([^:]+):\s*(.*?)(?:,\s*(?=[^,]+:)|$)", content); `content` holds no newline and no "}"
    n = len(content)
    colon, comma = Finder(content), Finder(content)
    separators: list[tuple[int, int]] = []  # (comma index, where the match resumes) for commas ending a value
    for e in (i for i, ch in enumerate(content) if ch == ","):
        w = ws_end(content, e + 1)
        next_comma = comma.find(",", e + 1)
        limit = n if next_comma < 0 else next_comma
        next_colon = colon.find(":", w + 1) if w < n else -1
        if 0 <= next_colon < limit:
            separators.append((e, w))
        elif w > e + 1 and w < n and content[w] == ":":
            separators.append((e, w - 1))
    out, pos, j = [], 0, 0
    keys = Finder(content)
    while pos < n:
        c = keys.find(":", pos)
        if c < 0:
            break
        if c == pos:  # [^:]+ needs at least one character: the engine moves on by one
            pos += 1
            continue
        start = ws_end(content, c + 1)
        while j < len(separators) and separators[j][0] < start:
            j += 1
        if j < len(separators):
            e, resume = separators[j]
            out.append((content[pos:c], content[start:e]))
            pos = resume
        else:
            out.append((content[pos:c], content[start:]))
            pos = n
    return out


def _dict(code: str) -> Any:
    if code == "{}":
        return {}
    if not code.startswith("{"):
        return code
    close = lazy_line_group(Finder(code), 1, "}", 0)
    if close < 0:
        return code
    result: dict[str, Any] = {}
    for key, value in _pairs(code[1:close]):
        key, value = key.strip().strip("'\""), value.strip()
        if value.startswith("[") and value.endswith("]"):
            result[key] = convert(value, "array")
        elif value.startswith("{") and value.endswith("}"):
            result[key] = _dict(value)
        else:
            result[key] = parse_value(value.strip("'\""))
    return result
