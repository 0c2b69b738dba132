"""Responses for the BFCL agreement run: each possible answer rendered as a Qwen3 response, plus perturbations.

`cases(row)` yields ``(label, response)`` pairs for one prepared single-turn row: the ground truth (first
listed value of every parameter), the second listed value where there is one, optional parameters left out,
strings in another case, then the systematic perturbations (wrong value, missing required argument, extra
argument, wrong type, wrong function name, reversed parallel calls) and format perturbations (no call,
malformed JSON, no newline inside the tags, the call only inside the reasoning, string arguments).
Java/JavaScript values are rendered as source literals. `literal_cases(rng)` draws random literal strings
for the converter-level comparison. Used by `eval_agreement.py` only.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

EXTRA = "m2rl_extra_arg"


def _first(values: list, index: int = 0) -> Any:
    real = [v for v in values if v != ""]
    return real[min(index, len(real) - 1)] if real else None


def _java(value: Any, kind: str, items: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "long" and isinstance(value, int):
        return f"{value}L"
    if kind == "float" and isinstance(value, (int, float)):
        return f"{float(value)}f"
    if kind == "ArrayList" and isinstance(value, list):
        return "new ArrayList<>(Arrays.asList(" + ", ".join(_java(v, items or "", None) for v in value) + "))"
    if kind == "Array" and isinstance(value, list):
        return f"new {items or 'Object'}[]{{" + ", ".join(_java(v, items or "", None) for v in value) + "}"
    if kind == "HashMap" and isinstance(value, dict):
        puts = " ".join(
            f'put("{k}", {_java(_first(v) if isinstance(v, list) else v, "", None)});' for k, v in value.items()
        )
        return f"new HashMap<String, String>() {{{{ {puts} }}}}"
    if kind == "" and isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _js(value: Any, kind: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "Bigint" and isinstance(value, int):
        return f"{value}n"
    if isinstance(value, list):
        return "[" + ", ".join(_js(v, "String" if isinstance(v, str) else "") for v in value) + "]"
    if isinstance(value, dict):
        parts = [f"{k}: {_js(_first(v) if isinstance(v, list) else v, 'String')}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if kind == "String" and isinstance(value, str) and kind != "any":
        return f"'{value}'"
    return str(value)


def _python(value: Any, spec: dict) -> Any:
    if spec.get("type") == "dict" and isinstance(value, dict):
        return {k: _first(v) for k, v in value.items() if isinstance(v, list) and _first(v) is not None}
    if spec.get("type") == "array" and isinstance(value, list) and spec.get("items", {}).get("type") == "dict":
        return [_python(v, {"type": "dict"}) for v in value]
    return value


def render_call(doc: dict, expected: dict, language: str, pick: int = 0, drop_optional: bool = False) -> tuple:
    name, params = next(iter(expected.items()))
    properties = doc["parameters"]["properties"]
    arguments = {}
    for param, values in params.items():
        if drop_optional and "" in values:
            continue
        value = _first(values, pick)
        if value is None:
            continue
        spec = properties.get(param, {})
        kind = spec.get("type", "")
        items = (spec.get("items") or {}).get("type")
        if language == "java":
            arguments[param] = _java(value, kind, items)
        elif language == "javascript":
            arguments[param] = _js(value, kind)
        else:
            arguments[param] = _python(value, spec)
    return name, arguments


def response(calls: list[tuple[Any, Any]], *, think: str = "", newline: bool = True) -> str:
    open_, close = ("<tool_call>\n", "\n</tool_call>") if newline else ("<tool_call>", "</tool_call>")
    body = "\n".join(f"{open_}{json.dumps({'name': n, 'arguments': a})}{close}" for n, a in calls)
    return f"<think>\n{think}\n</think>\n\n{body}" if think else body


def _wrong(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    if isinstance(value, str):
        return value + " zz"
    if isinstance(value, list):
        return value + value[:1] if value else ["zz"]
    if isinstance(value, dict):
        return {**value, "m2rl_key": "zz"}
    return "zz"


def _retyped(value: Any) -> Any:
    if isinstance(value, bool):
        return "true"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 7
    return "zz"


def _per_call(calls: list, change) -> list:
    out = copy.deepcopy(calls)
    for name, arguments in out:
        if arguments:
            change(name, arguments)
            return out
    return out


def cases(row: dict) -> list[tuple[str, str]]:
    meta = row["metadata"]
    language = {"java": "java", "javascript": "javascript"}.get(meta["category"], "python")
    if "possible_answer" not in meta:
        tools = [(d["name"], {}) for d in meta["functions"][:1]]
        return [("no call", "I cannot help with that."), ("a call", response(tools)),
                ("malformed", "<tool_call>\n{not json}\n</tool_call>")]  # fmt: skip
    docs = {d["name"]: d for d in meta["functions"]}
    expected = meta["possible_answer"]
    truth = [render_call(docs.get(next(iter(e)), meta["functions"][0]), e, language) for e in expected]
    second = [render_call(docs.get(next(iter(e)), meta["functions"][0]), e, language, pick=1) for e in expected]
    lean = [
        render_call(docs.get(next(iter(e)), meta["functions"][0]), e, language, drop_optional=True) for e in expected
    ]
    first_key = lambda args: next(iter(args))  # noqa: E731
    out = [("truth", response(truth)), ("second value", response(second)), ("optional left out", response(lean))]
    out.append(("upper-cased strings", response(_per_call(truth, lambda n, a: a.update(
        {k: v.upper() for k, v in a.items() if isinstance(v, str)})))))  # fmt: skip
    out.append(
        ("wrong value", response(_per_call(truth, lambda n, a: a.update({first_key(a): _wrong(a[first_key(a)])}))))
    )
    out.append(
        ("wrong type", response(_per_call(truth, lambda n, a: a.update({first_key(a): _retyped(a[first_key(a)])}))))
    )
    out.append(("missing argument", response(_per_call(truth, lambda n, a: a.pop(first_key(a))))))
    out.append(("extra argument", response([(n, {**a, EXTRA: 1}) for n, a in truth[:1]] + truth[1:])))
    out.append(("wrong name", response([(f"{truth[0][0]}_x", truth[0][1])] + truth[1:])))
    out.append(("int for float", response(_per_call(truth, lambda n, a: a.update(
        {k: int(v) for k, v in a.items() if isinstance(v, float) and v.is_integer()})))))  # fmt: skip
    if len(truth) > 1:
        out.append(("reversed calls", response(truth[::-1])))
        out.append(("one call missing", response(truth[:-1])))
    out.append(("duplicated call", response(truth + truth[:1])))
    out.append(("in reasoning only", response([], think=response(truth))))
    out.append(("after reasoning", response(truth, think="Let me call the tool.")))
    out.append(("no newlines", response(truth, newline=False)))
    out.append(("string arguments", "\n".join(f"<tool_call>\n{json.dumps({'name': n, 'arguments': json.dumps(a)})}"
                                              "\n</tool_call>" for n, a in truth)))  # fmt: skip
    out.append(("no call", "The answer is 42."))
    return out


_ATOMS = ["1", "-2", "3.5", "true", "false", '"s"', "'t'", "x", "", " ", "\n", ",", ":", "]", "[", "}", "{", ")", "(",
          "1e3", "2L", "4f", "5n", "a:b", '", ', "))", "}}", "{{", "add(", 'put("', "Arrays.asList("]  # fmt: skip
_SHAPES = {
    "integer": ["{n}", "-{n}", "{n}\n", "+{n}", "{n}.0"], "byte": ["{n}"], "short": ["{n}", "{a}"],
    "long": ["{n}L", "{n}l", "{n}", "{n}L\n"], "float": ["{n}.5f", "{n}f", "{n}.5", "{n}e3F", "{n}"],
    "double": ["{n}.25", "{n}e-2", "{n}f"], "boolean": ["true", "false", "True", "{a}"], "Boolean": ["true", "false"],
    "char": ["'c'", "c"], "String": ['"{a}"', "'{a}'", "{a}", '"'], "any": ["{a}", "new Foo({a})"],
    "Bigint": ["{n}n", "{n}", "{n}n\n"],
    "ArrayList": ["new ArrayList<>(Arrays.asList({l}))", "new ArrayList<Integer>() {{{{ add({e}); add({e}); }}}}",
                  "new ArrayList<>()", "new ArrayList<String>() {{{{ {a} }}}}", "new ArrayList<>(Arrays.asList({l})",
                  "new  ArrayList<T>(Arrays.asList({e}))) + new ArrayList<>(Arrays.asList({e}))"],
    "Array": ["new int[]{{{l}}}", "new String[] {{ {l} }}", "new long[]{{{l}", "new int[]{{}}"],
    "HashMap": ['new HashMap<String, String>() {{{{ put("k", {e}); put("j", {e}); }}}}', "new HashMap<>()",
                'new HashMap<String, Integer>(){{{{put("a",{e});}}}}', "new HashMap<>() {{{{ }}}}",
                'new HashMap<A<B>, C>() {{ put("x",\n {e}); }}', "new HashMap<{a}>() {{{{ {a} }}"],
    "array": ["[{l}]", "[[{l}], [{l}]]", "new Array({l})", "new Array([{l}], [{l}])", "[[{e}], [{e}]",
              "[ [{e}] , [{l}] ]x", "[{e}]\n", "[[{e}],\n[{e}]]"],
    "dict": ["{{a: {e}, b: {e}}}", "{{'a': [{l}], b:{e}}}", "{{}}", "{{a: {e},, b: {e}}}", "{{ a :{e} , 'b':'c' }}",
             "{{a: {e}, b: c: d}}", "{{{a}}}"],
}  # fmt: skip
JAVA_TYPES = ["byte", "short", "integer", "float", "double", "long", "boolean", "char", "Array", "ArrayList", "HashMap",
              "String", "any"]  # fmt: skip
JS_TYPES = ["String", "integer", "float", "Bigint", "Boolean", "dict", "array", "any"]


def _fill(rng: random.Random, shape: str) -> str:
    def atom() -> str:
        return "".join(rng.choice(_ATOMS) for _ in range(rng.randint(1, 3)))

    element = rng.choice(['"a"', "'b'", str(rng.randint(-9, 99)), "2.5", "true", "3L", "4f", atom()])
    items = ", ".join(
        rng.choice(['"a"', "'b'", str(rng.randint(0, 9)), "x", "1.5", atom()]) for _ in range(rng.randint(0, 4))
    )
    return shape.format(n=rng.randint(0, 10 ** rng.randint(1, 6)), a=atom(), e=element, l=items)


def literal_cases(rng: random.Random, n: int) -> list[dict]:
    """`n` random (literal, declared type) requests per language: shapes of the declared type, other types' shapes
    and junk (unclosed brackets, newlines, repeated openers)."""
    out = []
    for _ in range(n):
        for op, types, nested_types in (
            ("java", JAVA_TYPES, ["String", "integer", "long", "any", "char", "boolean", "float", "double", None]),
            ("js", JS_TYPES, ["String", "integer", "float", "Boolean", None]),
        ):
            kind = rng.choice(types)
            roll = rng.random()
            own = _SHAPES.get(kind) or _SHAPES["any"]
            if roll < 0.6:
                value = _fill(rng, rng.choice(own))
            elif roll < 0.85:
                value = _fill(rng, rng.choice(_SHAPES[rng.choice(list(_SHAPES))]))
            else:
                value = _fill(rng, "{a}") * rng.randint(1, 4)
            out.append({"op": op, "value": value, "type": kind, "nested": rng.choice(nested_types)})
    return out
