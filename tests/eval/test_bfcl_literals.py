"""Java and JavaScript source literals converted by declared type, with BFCL's rules (and its quirks).

The same conversions were compared with bfcl-eval's converters on 40,000 random literals
(benchmarks/eval_agreement.py --only bfcl); the cases here are hand-checked.
"""

from __future__ import annotations

import pytest

from m2rl_slime.eval.bfcl import java_literals, js_literals

JAVA = [
    ("5", "integer", None, 5), ("-5", "short", None, -5), ("5\n", "integer", None, 5), ("5.0", "integer", None, "5.0"),
    ("5L", "long", None, 5), ("5", "long", None, "5"), ("2.5f", "float", None, 2.5), ("3e3F", "float", None, 3000.0),
    ("2.5", "float", None, "2.5"), ("2.5", "double", None, 2.5), ("true", "boolean", None, True),
    ("True", "boolean", None, "True"), ("'c'", "char", None, "'c'"), ("x", "any", None, "x"),
    ('new ArrayList<>(Arrays.asList("a", "b"))', "ArrayList", "String", ["a", "b"]),
    ("new ArrayList<Integer>(Arrays.asList(1, 2))", "ArrayList", "integer", [1, 2]),
    ("new ArrayList<>(Arrays.asList(1, x))", "ArrayList", None, [1, "x"]),
    ('new ArrayList<String>() {{ add("a"); add("b"); }}', "ArrayList", "String", ["a", "b"]),
    ("new ArrayList<>()", "ArrayList", "String", []), ("[1, 2]", "ArrayList", "integer", "[1, 2]"),
    ("new int[]{1, 2, 3}", "Array", "integer", [1, 2, 3]), ("new int[] { }", "Array", "integer", []),
    ('new String[]{"a", "b"}', "Array", "String", ['"a"', '"b"']),  # quotes stay: String elements are not unquoted
    ("new long[]{1L, 2}", "Array", "long", [1, "2"]),
    ('new HashMap<String, String>() {{ put("k", "v"); put("n", 2); }}', "HashMap", None, {"k": "v", "n": 2}),
    ("new HashMap<>()", "HashMap", None, {}), ("new HashMap<>() {{ }}", "HashMap", None, {}),
    ("{k: v}", "HashMap", None, "{k: v}"),
]  # fmt: skip
JS = [
    ("'hi'", "String", None, "hi"), ('"hi"', "String", None, "hi"), ("hi", "String", None, "hi"),
    ("3", "integer", None, 3), ("3.0", "integer", None, "3.0"), ("3.5", "float", None, 3.5), ("3", "float", None, 3.0),
    ("1e3", "float", None, "1e3"), ("10n", "Bigint", None, 10), ("10", "Bigint", None, "10"),
    ("false", "Boolean", None, False), ("[1, 'two', true]", "array", None, [1, "two", True]),
    ("['x', 'y']", "array", "String", ["x", "y"]), ("new Array(1, 2)", "array", None, [1, 2]),
    ("[[1, 2], [3, 4]]", "array", None, [[1, 2], [3, 4]]), ("[]", "array", None, []),
    ("[[1], [2]", "array", None, ["[1"]),  # not a 2-D list: the 1-D rule takes "[" up to the first "]"
    ("[[1, [2]], [3]]", "array", None, [[1, "[2"]]),  # no nesting awareness: rows end at the first "]"
    ("{a: 1, 'b': 'two', c: [1, 2]}", "dict", None, {"a": 1, "b": "two", "c": [1, 2]}),
    ("{a: 1, b}", "dict", None, {"a": "1, b"}), ("{}", "dict", None, {}), ("{a: {b: 1}}", "dict", None, {"a": "{b: 1"}),
    ("['a', 5n]", "array", "Bigint", ["'a'", 5]),  # an element without the shape stays a string, quotes included
    ("[1, 2]", "array", "number", "[1, 2]"),  # an element conversion that raises returns the literal
]  # fmt: skip


@pytest.mark.parametrize(("value", "kind", "nested", "expected"), JAVA, ids=[f"{v!r}:{k}" for v, k, _, _ in JAVA])
def test_java(value, kind, nested, expected):
    assert java_literals.convert(value, kind, nested) == expected


@pytest.mark.parametrize(("value", "kind", "nested", "expected"), JS, ids=[f"{v!r}:{k}" for v, k, _, _ in JS])
def test_js(value, kind, nested, expected):
    assert js_literals.convert(value, kind, nested) == expected


def test_types_the_reference_cannot_convert_raise():
    for kind in ("Set", "Queue", "Object"):
        with pytest.raises(java_literals.UnsupportedJavaType):
            java_literals.convert("x", kind)
    with pytest.raises(js_literals.UnsupportedJsType):
        js_literals.convert("x", "number")
    with pytest.raises(ValueError):
        js_literals.convert("12n\n", "Bigint")  # the reference's own regex accepts it, then int() raises
