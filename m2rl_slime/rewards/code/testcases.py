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

# The default judging's view of a returned value: plain JSON (tuples and sets as lists, keys as strings),
# and its function lookup (a module-level function, else a method of class Solution).
_PLAIN_ENCODER = """
def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(_plain(v) for v in value)
        except TypeError:
            return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _encode(value):
    return json.dumps(_plain(value), default=repr)
"""
_PLAIN_FINDER = """
def _find(namespace, source, name):
    function = namespace.get(name)
    if not callable(function) and isinstance(namespace.get("Solution"), type):
        function = getattr(namespace["Solution"](), name, None)
    return function
"""

_DRIVER = """\
import json, os, select, sys
try:  # not dumpable: the solution (same uid) can read neither this process's memory nor its files in /proc
    import ctypes
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
except Exception:
    pass

__ENCODER__
__FINDER__


def _solve(args_fd, result_fd):
    with os.fdopen(args_fd, "rb") as pipe:
        args = json.loads(pipe.read())
    namespace = {"__name__": "solution", "__file__": "solution.py", "__builtins__": __builtins__}
    exec(compile(__HEADER__, "<header>", "exec"), namespace)
    with open("solution.py", encoding="utf-8") as source:
        text = source.read()
    exec(compile(text, "solution.py", "exec"), namespace)
    function = _find(namespace, text, __NAME__)
    if not callable(function):
        raise SystemExit("function " + __NAME__ + " not found (neither a top-level function nor a method of class Solution)")
    view = memoryview(_encode(function(*args)).encode())
    sys.stdout.flush()
    while view:
        view = view[os.write(result_fd, view):]


def _child(args_fd, result_fd):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the request (with the nonce) stays out of the solution's reach
    os.close(null)
    code = 0
    try:
        _solve(args_fd, result_fd)
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _collect(result_fd, child):
    chunks, status = [], None
    while True:
        if select.select([result_fd], [], [], 0.05)[0]:
            chunk = os.read(result_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        elif status is None:
            pid, wait_status = os.waitpid(child, os.WNOHANG)
            status = wait_status if pid else None
        else:
            break  # the solution exited and something it started still holds the pipe
    if status is None:
        status = os.waitpid(child, 0)[1]
    return b"".join(chunks), os.waitstatus_to_exitcode(status)


def _main():
    args_r, args_w = os.pipe()
    result_r, result_w = os.pipe()
    sys.stdout.flush()
    child = os.fork()
    if child == 0:
        os.close(args_w)
        os.close(result_r)
        _child(args_r, result_w)
    os.close(args_r)
    os.close(result_w)
    request = json.loads(sys.stdin.read())
    try:
        os.ftruncate(0, 0)
    except OSError:
        pass
    marker = "\\x1e" + request.pop("nonce") + "\\x1e"
    try:
        with os.fdopen(args_w, "wb") as pipe:
            pipe.write(json.dumps(request["args"]).encode())
    except BrokenPipeError:
        pass
    payload, code = _collect(result_r, child)
    if os.getpid() == 1:  # PID 1 of the run's namespace: stop everything the solution started
        try:
            os.kill(-1, 9)
        except OSError:
            pass
    if code != 0:
        sys.exit(code if code > 0 else 128 - code)
    if not payload:
        sys.exit("the function did not return (its process ended without a result)")
    sys.stdout.write("\\n" + marker + payload.decode("utf-8", "replace") + "\\n")
    sys.stdout.flush()


_main()
"""


def call_harness(code: str, fn_name: str, *, lcb: bool = False) -> tuple[str, dict[str, str]]:
    """(driver program, extra files) running `code` as module ``solution`` and calling `fn_name`.

    With `lcb`, LiveCodeBench's rules apply (`lcb.py`): its import prelude and function lookup, and the
    returned value is sent in a typed encoding that keeps what Python's ``==`` distinguishes.

    The solution runs in a child of the driver that never sees the request's nonce: the driver forks
    before reading its stdin (the child's stdin is /dev/null), truncates that stdin once read, is not
    dumpable (so the child cannot read its memory or its /proc entries) and, as PID 1 of the run, kills
    whatever the solution started before it prints the marked result line. So no line the solution
    writes can pass for the driver's.
    """
    from . import lcb as rules

    header, encoder, finder = (rules.PRELUDE, rules.ENCODE_SOURCE, rules.FIND_SOURCE) if lcb else (
        _HEADER, _PLAIN_ENCODER, _PLAIN_FINDER)  # fmt: skip
    driver = _DRIVER.replace("__ENCODER__", encoder).replace("__FINDER__", finder)
    driver = driver.replace("__HEADER__", repr(header)).replace("__NAME__", repr(fn_name))
    return driver, {"solution.py": base64.b64encode(code.encode()).decode("ascii")}


def call_stdin(case: TestCase, nonce: str) -> str:
    """The harness's stdin for one test: its arguments plus the run's result-marker nonce."""
    return json.dumps({"nonce": nonce, "args": json.loads(case.stdin)["args"]})


def call_output(stdout: str, nonce: str, *, raw: bool = False) -> tuple[bool, Any]:
    """(found, value) of the harness's result line in `stdout` (the first marker: only the driver knows it).

    With `raw`, the value is the line's text, unparsed.
    """
    marker = f"\x1e{nonce}\x1e"
    at = stdout.find(marker)
    if at < 0:
        return False, None
    line = stdout[at + len(marker) :].split("\n", 1)[0]
    if raw:
        return True, line
    try:
        return True, json.loads(line)
    except ValueError:
        return True, line
