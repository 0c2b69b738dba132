"""Java source literals (the strings a model passes for Java parameters) -> Python values, as BFCL converts them.

BFCL's Java category asks for every argument as a Java source string (``"true"``, ``"5L"``, ``"3.5f"``,
``"new ArrayList<>(Arrays.asList(1, 2))"``, ``"new HashMap<String, String>() {{ put(\\"k\\", \\"v\\"); }}"``). The
checker converts the string by the declared Java type and compares the result with the possible answers; a
string that does not have the type's shape stays a string (and then fails the type check). The behaviour
reproduced here, rule by rule, is bfcl-eval's ``java_type_converter`` (same accepted shapes, same quirks:
``char`` never converts, ``String`` elements keep their quotes inside arrays, a value's own ``$`` anchor accepts
one trailing newline), computed in linear time.
"""

from __future__ import annotations

import re
from typing import Any

from ._scan import Finder, lazy_line_group, ws_end, ws_start

JAVA_TYPES: dict[str, type] = {
    "byte": int, "short": int, "integer": int, "float": float, "double": float, "long": int,
    "boolean": bool, "char": str, "Array": list, "ArrayList": list, "Set": set, "HashMap": dict,
    "Hashtable": dict, "Queue": list, "Stack": list, "String": str, "any": str,
}  # fmt: skip
_NOT_CONVERTED = ("Set", "Hashtable", "Queue", "Stack")  # the reference raises NotImplementedError for these

_INT = re.compile(r"-?\d+$")
_FLOAT_F = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?[fF]$")
_DOUBLE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_LONG = re.compile(r"-?\d+[lL]$")
_F_SUFFIX = re.compile(r"[fF]$")
_L_SUFFIX = re.compile(r"[lL]$")
_ASLIST = re.compile(r"new\s+ArrayList<\w*>\(Arrays\.asList\(")
_ADD_BLOCK = re.compile(r"new\s+ArrayList<\w*>\(\)\s*\{\{")
_EMPTY_LIST = re.compile(r"new\s+ArrayList<\w*>\(\)")
_ARRAY = re.compile(r"new\s+\w+\[\]\s*\{")
_HASHMAP = re.compile(r"new\s+HashMap<")
_CALL_BRACE = re.compile(r"\s*\(\)\s*\{")
_CALL = re.compile(r"\s*\(\)")


class UnsupportedJavaType(ValueError):
    """A declared type the reference converter cannot handle (it raises; a data problem, never the model's)."""


def convert(value: str, java_type: str, nested_type: str | None = None) -> Any:
    """Convert one Java source string by its declared type (BFCL's rules; see the module docstring).

    Raises:
        UnsupportedJavaType: `java_type` is not a Java type BFCL converts.
        ValueError: an integer literal longer than Python's int-string limit (the reference raises too).
    """
    if java_type not in JAVA_TYPES or java_type in _NOT_CONVERTED:
        raise UnsupportedJavaType(f"Java type {java_type!r} is not converted by the reference checker")
    if java_type in ("byte", "short", "integer"):
        return int(value) if _INT.match(value) else str(value)
    if java_type == "float":
        return float(_F_SUFFIX.sub("", value)) if _FLOAT_F.match(value) else str(value)
    if java_type == "double":
        return float(value) if _DOUBLE.match(value) else str(value)
    if java_type == "long":
        return int(_L_SUFFIX.sub("", value)) if _LONG.match(value) else str(value)
    if java_type == "boolean":
        return value == "true" if value in ("true", "false") else str(value)
    if java_type == "ArrayList":
        return _arraylist(value, nested_type)
    if java_type == "Array":
        return _array(value, nested_type)
    if java_type == "HashMap":
        return _hashmap(value)
    return str(value)  # String, any, and char (the reference's char pattern can never match)


def parse_value(text: str) -> Any:
    """A Java literal without a declared type: boolean, quoted string, long, float, int, double, or the text."""
    if text == "true":
        return True
    if text == "false":
        return False
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if _LONG.match(text):
        return int(text[:-1])
    if _FLOAT_F.match(text):
        return float(_F_SUFFIX.sub("", text))
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _element(text: str, nested_type: str | None) -> Any:
    if nested_type in ("char", "String"):
        return text[1:-1]  # drops the quotes (or any first and last character)
    return convert(text, nested_type) if nested_type else parse_value(text)


def _candidates(pattern: re.Pattern, text: str):
    """Every match of a prefix pattern, by start position (overlapping starts included)."""
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        yield m
        pos = m.start() + 1


def _aslist_group(text: str) -> str | None:
    # new\s+ArrayList<\w*>\(Arrays\.asList\((.+?)\)\)  (search; "." excludes newlines)
    finder = Finder(text)
    for m in _candidates(_ASLIST, text):
        end = lazy_line_group(finder, m.end(), "))", 1)
        if end >= 0:
            return text[m.end() : end]
        if finder.find("))", m.end() + 1) < 0:
            return None
    return None


def _add_block_group(text: str) -> str | None:
    # new\s+ArrayList<\w*>\(\)\s*\{\{\s*(.+?)\s*\}\}  (search, DOTALL)
    finder = Finder(text)
    for m in _candidates(_ADD_BLOCK, text):
        p = m.end()
        q = ws_end(text, p)
        close = finder.find("}}", q + 1)
        if close >= 0:
            return text[q : max(ws_start(text, close, q + 1), q + 1)]
        if q > p and text.startswith("}}", q):  # the backtracked \s* leaves one blank as the group
            return text[q - 1 : q]
    return None


def _add_arguments(block: str) -> list[str]:
    # re.findall(r"add\((.+?)\)", block)
    finder, out, pos = Finder(block), [], 0
    while (i := block.find("add(", pos)) >= 0:
        end = lazy_line_group(finder, i + 4, ")", 1)
        if end >= 0:
            out.append(block[i + 4 : end])
            pos = end + 1
        elif finder.find(")", i + 5) < 0:
            break
        else:
            pos = i + 1
    return out


def _arraylist(text: str, nested_type: str | None) -> Any:
    group = _aslist_group(text)
    if group is not None:
        return [_element(part.strip(), nested_type) for part in group.split(",")]
    block = _add_block_group(text)
    if block is not None:
        return [_element(arg.strip(), nested_type) for arg in _add_arguments(block)]
    if _EMPTY_LIST.search(text):
        return []
    return text


def _array(text: str, nested_type: str | None) -> Any:
    # new\s+\w+\[\]\s*\{(.*?)\}  (search)
    finder = Finder(text)
    for m in _candidates(_ARRAY, text):
        end = lazy_line_group(finder, m.end(), "}", 0)
        if end >= 0:
            parts = [p.strip() for p in text[m.end() : end].split(",") if p.strip()]
            return [convert(p, nested_type) if nested_type else parse_value(p) for p in parts]
        if finder.find("}", m.end()) < 0:
            break
    return text


def _hashmap_body(text: str) -> str | None:
    # new\s+HashMap<.*?>\s*\(\)\s*\{\s*\{?\s*(.*?)\s*\}?\s*\}  (search, DOTALL)
    first = _HASHMAP.search(text)
    if first is None:
        return None
    last_close = text.rfind("}")
    pos = first.end()
    while (gt := text.find(">", pos)) >= 0:
        m = _CALL_BRACE.match(text, gt + 1)
        if m is not None and last_close >= m.end():
            g = ws_end(text, m.end())
            if g < len(text) and text[g] == "{":
                g = ws_end(text, g + 1)
            close = text.find("}", g)
            return text[g : ws_start(text, close, g)]
        pos = gt + 1
    return None  # later candidates see a subset of the same ">" positions


def _empty_hashmap(text: str) -> bool:
    # re.search(r"new\s+HashMap<.*?>\s*\(\)", text)  ("." excludes newlines)
    finder = Finder(text)
    good = [gt for gt in _positions(text, ">") if _CALL.match(text, gt + 1)]
    k = 0
    for m in _candidates(_HASHMAP, text):
        while k < len(good) and good[k] < m.end():
            k += 1
        if k < len(good) and finder.span_free("\n", m.end(), good[k]):
            return True
    return False


def _positions(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + 1)
    return out


def _puts(body: str) -> list[tuple[str, str]]:
    # re.findall(r"put\(\"(.*?)\",\s*(.*?)\)", body)  ("." excludes newlines)
    finder = Finder(body)
    good: list[tuple[int, int, int]] = []  # (quote-comma index, value start, value end)
    for k in _positions(body, '",'):
        start = ws_end(body, k + 2)
        end = lazy_line_group(finder, start, ")", 0)
        if end >= 0:
            good.append((k, start, end))
    out, pos, j = [], 0, 0
    newline = Finder(body)
    while (i := body.find('put("', pos)) >= 0:
        key_start = i + 5
        while j < len(good) and good[j][0] < key_start:
            j += 1
        if j < len(good) and newline.span_free("\n", key_start, good[j][0]):
            k, start, end = good[j]
            out.append((body[key_start:k], body[start:end]))
            pos = end + 1
        else:
            pos = i + 1
    return out


def _hashmap(text: str) -> Any:
    body = _hashmap_body(text)
    if body is not None:
        return {key: parse_value(value.strip()) for key, value in _puts(body)} if body.strip() else {}
    return {} if _empty_hashmap(text) else text
