"""LiveCodeBench test cases: the JSON public tests and the pickled private tests, decoded safely.

Not a slime hook. LiveCodeBench stores a problem's private tests either as a JSON string or as
``base64(zlib(pickle(<JSON string>)))``; its own loader calls ``pickle.loads`` on the downloaded file,
which runs whatever a tampered file asks for. Here the pickle is read by an unpickler that resolves no
global at all (`find_class` refuses, and every opcode that could call something needs one), and the
result must be plain data (str, bytes, list, dict, int, float, bool, None; checked without recursion,
cycles included). Anything else is refused with `UnsafeTestsError`, naming the problem, before any of
it is used. Decompression stops at `MAX_PRIVATE_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .schema import RowError

MAX_PRIVATE_BYTES = 512 * 1024 * 1024
_PLAIN_SCALARS = (str, bytes, int, float, bool)


class UnsafeTestsError(ConfigError):
    """A pickle in a benchmark file holds something other than plain data (never dropped silently)."""


class _Refused(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _PlainUnpickler(pickle.Unpickler):
    """Resolves no global: classes, functions and persistent ids are all refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise _Refused(f"a reference to {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


def _check_plain(value: Any) -> None:
    """Raise `_Refused` unless `value` is plain data (iterative; a container reached twice is checked once)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        kind = type(item)
        if item is None or kind in _PLAIN_SCALARS:
            continue
        if kind is list or kind is dict:
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item if kind is list else [x for pair in item.items() for x in pair])
            continue
        raise _Refused(f"a {kind.__name__}")


def _inflate(blob: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(blob, MAX_PRIVATE_BYTES)
    except zlib.error as exc:
        raise RowError("bad_tests", where, f"not zlib data ({exc})") from None
    if inflater.unconsumed_tail:
        raise RowError("bad_tests", where, f"decompresses to more than {MAX_PRIVATE_BYTES >> 20} MiB")
    return data


def unpickle_plain(data: bytes, problem: str) -> Any:
    """Unpickle `data` admitting only plain data.

    Raises:
        UnsafeTestsError: the pickle refers to a global (class, function) or holds a non-plain value.
        RowError: the bytes are not a pickle at all.
    """
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
        _check_plain(value)
    except _Refused as exc:
        raise UnsafeTestsError(
            f"problem {problem}: private_test_cases refused, the pickle holds {exc.what} "
            "(only str, bytes, list, dict, int, float, bool and None are admitted); the file is not a "
            "LiveCodeBench release file or was tampered with"
        ) from None
    except Exception as exc:  # any malformed pickle: UnpicklingError, EOFError, ValueError, ...
        raise RowError("bad_tests", "private_test_cases", f"not a readable pickle ({type(exc).__name__})") from None
    return value


def _json_tests(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RowError("bad_tests", where, f"not valid JSON ({exc})") from None
    if not isinstance(value, list):
        raise RowError("bad_tests", where, f"expected a list of tests, got {type(value).__name__}")
    for i, test in enumerate(value):
        if not isinstance(test, Mapping) or not isinstance(test.get("input"), str):
            raise RowError("bad_tests", f"{where}[{i}]", "expected {input: str, output: str, testtype}")
        if not isinstance(test.get("output"), str):
            raise RowError("bad_tests", f"{where}[{i}].output", "expected a string")
    return list(value)


def public_tests(value: Any) -> list[dict[str, Any]]:
    """The public tests of a problem (a JSON string or an already-decoded list)."""
    if value in (None, ""):
        return []
    return _json_tests(value, "public_test_cases")


def private_tests(value: Any, problem: str) -> list[dict[str, Any]]:
    """The private tests of `problem`: a JSON string or list, else base64(zlib(pickle(JSON string))).

    Raises:
        UnsafeTestsError: the pickle is not plain data (see the module docstring).
        RowError: any other malformed encoding.
    """
    if value in (None, ""):
        return []
    if isinstance(value, list):
        return _json_tests(value, "private_test_cases")
    if not isinstance(value, str):
        raise RowError("bad_tests", "private_test_cases", f"expected a string, got {type(value).__name__}")
    if value.lstrip()[:1] == "[":
        return _json_tests(value, "private_test_cases")
    try:
        blob = base64.b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RowError("bad_tests", "private_test_cases", f"neither JSON nor base64 ({exc})") from None
    decoded = unpickle_plain(_inflate(blob, "private_test_cases"), problem)
    return _json_tests(decoded, "private_test_cases (decoded)")
