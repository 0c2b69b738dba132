"""Unit-test formats of code rows, parsed into one `TestSuite`, and the call-based (fn_name) harness.

Accepted (in `metadata.unit_tests`, `metadata.verifier_metadata.unit_tests`, or the label; a JSON
string of any of them too):

- Nemotron / NeMo-Gym / APPS / TACO: ``{"inputs": [...], "outputs": [...], "fn_name": str | null}``;
- CodeContests: ``{"public_tests": {"input": [...], "output": [...]}, "private_tests": ...,
  "generated_tests": ...}`` (concatenated in that order) or a list ``[{"input": str, "output": str}]``
  (also SandboxFusion's ``{"input": {"stdin": ...}, "output": {"stdout": ...}}``).

With ``fn_name`` the tests are call-based: an input is a string holding one JSON value per line
(LiveCodeBench) or a list of arguments (APPS); an output is a JSON string or a value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import LabelError

_CODECONTESTS_SPLITS = ("public_tests", "private_tests", "generated_tests")


class TestsError(LabelError):
    """Malformed unit tests; `field` names where (e.g. ``metadata.unit_tests.outputs[3]``)."""

    __test__ = False  # not a pytest test class

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test: `stdin` for the program (call-based: the JSON arguments) and the expected output."""

    __test__ = False

    index: int
    stdin: str
    expected: Any


@dataclass(frozen=True, slots=True)
class TestSuite:
    """All tests of a row. `fn_name` set means call-based; `source` names where the tests came from."""

    __test__ = False

    cases: tuple[TestCase, ...]
    fn_name: str | None
    source: str


def _load(value: Any, where: str) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise TestsError(where, f"not valid JSON ({exc})") from None
    return value


def _stdio_output(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)  # APPS sometimes stores an output as its list of lines
    raise TestsError(where, f"expected a string, got {type(value).__name__}")


def _call_args(value: Any, where: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            return [json.loads(line) for line in value.split("\n") if line.strip()]
        except ValueError as exc:
            raise TestsError(where, f"call-based input must hold one JSON value per line ({exc})") from None
    raise TestsError(where, f"call-based input must be a string or a list of arguments, got {type(value).__name__}")


def _call_expected(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _pairs(inputs: Any, outputs: Any, where: str) -> list[tuple[Any, Any]]:
    if not isinstance(inputs, list):
        raise TestsError(f"{where}.inputs", f"expected a list, got {type(inputs).__name__}")
    if not isinstance(outputs, list):
        raise TestsError(f"{where}.outputs", f"expected a list, got {type(outputs).__name__}")
    if len(inputs) != len(outputs):
        raise TestsError(where, f"{len(inputs)} inputs but {len(outputs)} outputs")
    return list(zip(inputs, outputs))


def _from_mapping(data: Mapping[str, Any], where: str) -> tuple[list[tuple[Any, Any]], str | None]:
    if "inputs" in data or "outputs" in data:
        fn_name = data.get("fn_name") or None
        if fn_name is not None and not (isinstance(fn_name, str) and fn_name.isidentifier()):
            raise TestsError(f"{where}.fn_name", f"expected a Python identifier or null, got {fn_name!r}")
        return _pairs(data.get("inputs"), data.get("outputs"), where), fn_name
    splits = [s for s in _CODECONTESTS_SPLITS if s in data]
    if splits:
        pairs: list[tuple[Any, Any]] = []
        for split in splits:
            part = data[split] or {}
            if not isinstance(part, Mapping):
                raise TestsError(f"{where}.{split}", f"expected {{input: [...], output: [...]}}, got {part!r:.80}")
            pairs += _pairs(part.get("input"), part.get("output"), f"{where}.{split}")
        return pairs, None
    raise TestsError(where, f"expected {{inputs, outputs, fn_name?}} or CodeContests splits; keys are {sorted(data)}")


def _from_list(data: Sequence[Any], where: str) -> list[tuple[Any, Any]]:
    pairs = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping) or "input" not in item or "output" not in item:
            raise TestsError(f"{where}[{i}]", f"expected {{input, output}}, got {item!r:.80}")
        given, wanted = item["input"], item["output"]
        given = given.get("stdin") if isinstance(given, Mapping) else given
        wanted = wanted.get("stdout") if isinstance(wanted, Mapping) else wanted
        pairs.append((given, wanted))
    return pairs


def _locate(label: Any, metadata: Mapping[str, Any]) -> tuple[Any, str]:
    if "unit_tests" in metadata:
        return metadata["unit_tests"], "metadata.unit_tests"
    verifier = metadata.get("verifier_metadata")
    if isinstance(verifier, Mapping) and "unit_tests" in verifier:
        return verifier["unit_tests"], "metadata.verifier_metadata.unit_tests"
    if label not in (None, ""):
        return label, "label"
    raise TestsError(
        "metadata.unit_tests",
        "missing: a code row needs metadata.unit_tests = {inputs, outputs, fn_name?} (or the same as its label)",
    )


def parse_tests(label: Any, metadata: Mapping[str, Any]) -> TestSuite:
    """Find and validate a row's unit tests (never mutates its inputs).

    Raises:
        TestsError: the tests are missing or malformed; `field` says where.
    """
    raw, where = _locate(label, metadata)
    data = _load(raw, where)
    if isinstance(data, Mapping):
        pairs, fn_name = _from_mapping(data, where)
    elif isinstance(data, list):
        pairs, fn_name = _from_list(data, where), None
    else:
        raise TestsError(where, f"expected a mapping or a list of tests, got {type(data).__name__}")
    if not pairs:
        raise TestsError(where, "has no test cases")
    cases = []
    for i, (given, wanted) in enumerate(pairs):
        if fn_name is None:
            if not isinstance(given, str):
                raise TestsError(f"{where}.inputs[{i}]", f"expected a string, got {type(given).__name__}")
            cases.append(TestCase(i, given, _stdio_output(wanted, f"{where}.outputs[{i}]")))
        else:
            args = _call_args(given, f"{where}.inputs[{i}]")
            cases.append(TestCase(i, json.dumps({"args": args}), _call_expected(wanted)))
    return TestSuite(tuple(cases), fn_name, where)


# ---- call-based harness ------------------------------------------------------------------------------

_HEADER = """\
import bisect, collections, copy, functools, heapq, itertools, math, operator, random, re, string, sys
from bisect import *
from collections import *
from functools import *
from heapq import *
from itertools import *
from math import ceil, comb, factorial, floor, gcd, inf, isqrt, log, log2, sqrt
from typing import *
sys.setrecursionlimit(100000)
"""

_DRIVER = """\
import json, sys
_request = json.loads(sys.stdin.read())
_marker = "\\x1e" + _request["nonce"] + "\\x1e"
_namespace = {{"__name__": "solution", "__file__": "solution.py", "__builtins__": __builtins__}}
exec(compile({header!r}, "<header>", "exec"), _namespace)
with open("solution.py", encoding="utf-8") as _source:
    exec(compile(_source.read(), "solution.py", "exec"), _namespace)
_function = _namespace.get({name!r})
if not callable(_function) and isinstance(_namespace.get("Solution"), type):
    _function = getattr(_namespace["Solution"](), {name!r}, None)
if not callable(_function):
    raise SystemExit("function {name} not found (neither a top-level function nor a method of class Solution)")
_result = _function(*_request["args"])

def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(_plain(v) for v in value)
        except TypeError:
            return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {{str(k): _plain(v) for k, v in value.items()}}
    return value

sys.stdout.flush()
sys.stdout.write("\\n" + _marker + json.dumps(_plain(_result), default=repr) + "\\n")
sys.stdout.flush()
"""


def call_harness(code: str, fn_name: str) -> tuple[str, dict[str, str]]:
    """(driver program, extra files) running `code` as module ``solution`` and calling `fn_name`."""
    driver = _DRIVER.format(header=_HEADER, name=fn_name)
    return driver, {"solution.py": base64.b64encode(code.encode()).decode("ascii")}


def call_stdin(case: TestCase, nonce: str) -> str:
    """The harness's stdin for one test: its arguments plus the run's result-marker nonce."""
    return json.dumps({"nonce": nonce, "args": json.loads(case.stdin)["args"]})


def call_output(stdout: str, nonce: str) -> tuple[bool, Any]:
    """(found, value) of the harness's result line in `stdout` (the last marker wins)."""
    marker = f"\x1e{nonce}\x1e"
    at = stdout.rfind(marker)
    if at < 0:
        return False, None
    line = stdout[at + len(marker) :].split("\n", 1)[0]
    try:
        return True, json.loads(line)
    except ValueError:
        return True, line
