"""LiveCodeBench's judging rules (``compare: lcb``), as its official runner grades code generation.

Not a slime hook: the code verifier (`verifier.py`) uses these when a row's metadata (or the
``m2rl_reward.code`` settings) say ``compare: lcb``. Behaviour reproduced from ``lcb_runner``'s
``evaluation/testing_util.py`` (read, not copied; docs/eval_sets.md lists every rule and the measured
agreement):

- stdin tests: both outputs are stripped as a whole, split at ``\\n`` and every line stripped; the line
  counts must be equal; two lines match when equal, or when every whitespace-separated token of both
  parses as a `decimal.Decimal` and the two token lists are equal (``0.50`` = ``.5`` = ``5e-1``,
  ``1 2`` = ``1  2``; ``0.3000001`` != ``0.3``; a word token never gets this fallback);
- functional tests: ``Solution().<fn_name>(*args)`` when the program's text contains ``class
  Solution``, else the module-level function, with one JSON value per input line as the arguments; a
  returned tuple becomes a list (the top level only, as in the reference) and is compared with the
  expected JSON value by Python's ``==`` (so ``True == 1 == 1.0``, floats exactly, a nested tuple or a
  set never equals a list);
- both: the reference's import prelude (`PRELUDE`: star imports of the standard modules it lists, and
  a recursion limit of 50000) runs before the program; ``SystemExit`` in a stdin program ends it
  normally (its output is judged); tests stop at the first failure; the score is pass@1 (all pass).

The returned value of a functional test crosses the sandbox boundary in a typed JSON encoding
(`encode_source`), so the comparison runs here, never in the program's process: an object whose
``__eq__`` always answers True is not a way to pass.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

# The modules lcb_runner star-imports before a program, then imports by name (in this order), and its
# recursion limit. Generated as text so the program runs in the same namespace it would there.
_STAR_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                 "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")  # fmt: skip
_PLAIN_MODULES = _STAR_MODULES[:-2]  # every one but builtins and typing
RECURSION_LIMIT = 50000
PRELUDE = (
    "".join(f"from {name} import *\n" for name in _STAR_MODULES)
    + "".join(f"import {name}\n" for name in _PLAIN_MODULES)
    + f"sys.setrecursionlimit({RECURSION_LIMIT})\n"
)
TAG = "\u0000"  # the one key of an encoded non-JSON value: {TAG: [kind, ...]}

# ---- the sandbox side ---------------------------------------------------------------------------------

# Source of `_encode(value) -> str` for the call harness: JSON for None/bool/int/float/str/list, a tagged
# object for everything else (dict as its key/value pairs, tuple, other types by name), the top-level
# tuple turned into a list first. Ints too long for a JSON reader are tagged (they equal no readable gold).
ENCODE_SOURCE = """
_TAG = "\\u0000"
_HUGE = 10 ** 4300


def _typed(value):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        value = int(value)
        return value if -_HUGE < value < _HUGE else {_TAG: ["other", "int", "an int of %d bits" % value.bit_length()]}
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, tuple):
        return {_TAG: ["tuple", [_typed(v) for v in value]]}
    if isinstance(value, dict):
        return {_TAG: ["dict", [[_typed(k), _typed(v)] for k, v in value.items()]]}
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return _typed(value.item())
    return {_TAG: ["other", type(value).__name__, repr(value)[:200]]}


def _encode(value):
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(_typed(value))
"""

# Source of `_find(namespace, source, name)`: the reference's lookup (Solution() when the text holds
# "class Solution", else the module attribute).
FIND_SOURCE = """
def _find(namespace, source, name):
    if "class Solution" in source:
        target = namespace.get("Solution")
        return getattr(target(), name, None) if isinstance(target, type) else None
    return namespace.get(name)
"""

# A stdin program under LiveCodeBench's rules: the prelude, then the program as __main__, SystemExit
# ending it normally.
STDIO_DRIVER = """\
import sys
namespace = {"__name__": "__main__", "__file__": "solution.py", "__builtins__": __builtins__}
exec(compile(__PRELUDE__, "<prelude>", "exec"), namespace)
with open("solution.py", encoding="utf-8") as _source:
    _code = compile(_source.read(), "solution.py", "exec")
try:
    exec(_code, namespace)
except SystemExit:
    pass
"""


def stdio_driver() -> str:
    """The driver program that runs ``solution.py`` (a stdin program) under LiveCodeBench's rules."""
    return STDIO_DRIVER.replace("__PRELUDE__", repr(PRELUDE))


# ---- the judge side -----------------------------------------------------------------------------------


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def _decimal_lines_equal(got: str, want: str) -> bool:
    got_numbers, want_numbers = _decimals(got), _decimals(want)
    if got_numbers is None or want_numbers is None or len(got_numbers) != len(want_numbers):
        return False
    try:
        return all(g == w for g, w in zip(got_numbers, want_numbers))
    except InvalidOperation:  # a signalling NaN refuses comparison: the reference fails such a test too
        return False


def stdout_mismatch(got: str, expected: str) -> tuple[int, str, str] | None:
    """None when a stdin test passes under LiveCodeBench's rules; else (line from 0, expected, got).

    A line-count mismatch reports line -1 with both counts.
    """
    got_lines, want_lines = _stripped_lines(got), _stripped_lines(expected)
    if len(got_lines) != len(want_lines):
        return -1, f"{len(want_lines)} lines", f"{len(got_lines)} lines"
    for i, (g, w) in enumerate(zip(got_lines, want_lines)):
        if g != w and not _decimal_lines_equal(g, w):
            return i, w, g
    return None


def decode_value(value: Any) -> tuple[Any, bool]:
    """(value, is_tagged) of one node of the harness's typed encoding."""
    if isinstance(value, dict) and len(value) == 1 and TAG in value and isinstance(value[TAG], list):
        return value[TAG], True
    return value, False


def values_equal(got: Any, expected: Any) -> bool:
    """Python's ``got == expected`` for a returned value (typed encoding) and a JSON-decoded gold value."""
    try:
        return _equal(got, expected)
    except RecursionError:
        return False


def _equal(got: Any, expected: Any) -> bool:
    node, tagged = decode_value(got)
    if tagged:
        kind = node[0] if node else None
        if kind == "dict" and isinstance(expected, dict) and len(node) == 2 and isinstance(node[1], list):
            pairs = node[1]
            keys = [k for k, _ in pairs]
            if len(pairs) != len(expected) or not all(isinstance(k, str) for k in keys):
                return False  # JSON keys are strings: a non-str key never equals one
            values = dict(pairs)
            return len(values) == len(pairs) and all(k in expected and _equal(values[k], expected[k]) for k in values)
        return False  # a tuple, set or other object never equals a JSON value (its own __eq__ is not trusted)
    if isinstance(got, (bool, int, float)):
        return isinstance(expected, (bool, int, float)) and got == expected
    if isinstance(got, list):
        return isinstance(expected, list) and len(got) == len(expected) and all(map(_equal, got, expected))
    if isinstance(got, str):
        return isinstance(expected, str) and got == expected
    return got is None and expected is None


def parse_returned(payload: str) -> Any:
    """The harness's result line -> its typed encoding (a line that is not JSON matches nothing)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        return {TAG: ["other", "unreadable", payload[:200]]}
