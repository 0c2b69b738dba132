"""LiveCodeBench's judging rules (``compare: lcb``): the comparators, the per-row settings, and every program
of tests/rewards/code/data/lcb_cases.jsonl (self-written problems in LiveCodeBench's format, each program with
its hand-checked verdict) through the real embedded sandbox.

The same cases are graded by the official runner in ``benchmarks/eval_agreement.py --only lcb``; the
``reference`` field holds the verdict it gives (``ours`` differs only for the documented known differences).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from m2rl_slime.data.lcb import lcb_row
from m2rl_slime.rewards.code import CodeConfig, lcb, verify
from m2rl_slime.rewards.code.testcases import TestsError
from m2rl_slime.rewards.result import Reason

from ...sandbox.conftest import require_sandbox

CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "lcb_cases.jsonl").read_text().splitlines()]
PROGRAMS = [(case["problem"], program) for case in CASES for program in case["programs"]]


@pytest.mark.parametrize(
    "got,expected,passes",
    [
        ("6\n", "6\n", True),
        ("  6  \n\n\n", "6", True),  # the whole output is stripped, then every line
        ("\n6", "6\n", True),
        ("6.0", "6", True),  # Decimal fallback
        ("0.50 +1", ".5 1", True),
        ("5e-1", "0.5", True),
        ("1  2", "1 2", True),  # not equal as text, equal as decimals
        ("0.3333333333", "0.3333333333333333", False),  # no tolerance
        ("0.5000000001", "0.5", False),
        ("a  b", "a b", False),  # words get no fallback
        ("Yes", "YES", False),
        ("1 2 3", "1 2", False),
        ("1\n2", "1 2", False),  # line structure counts
        ("1\n\n2", "1\n2", False),
        ("1\r\n2\r\n", "1\n2\n", True),
        ("nan", "nan", True),  # equal as text
        ("nan 1", "NaN 1", False),  # NaN != NaN as decimals
        ("sNaN 1", "sNaN 2", False),  # a signalling NaN refuses comparison: a failure, not a crash
        ("1_000", "1000", True),  # Decimal reads underscores, as the reference does
        ("\u0665", "5", True),  # and Unicode digits
    ],
)
def test_stdout_rules(got, expected, passes):
    assert (lcb.stdout_mismatch(got, expected) is None) is passes


def test_stdout_mismatch_names_the_line():
    assert lcb.stdout_mismatch("1\n3\n", "1\n2\n") == (1, "2", "3")
    assert lcb.stdout_mismatch("1\n", "1\n2\n") == (-1, "2 lines", "1 lines")


def _typed(value):
    """The sandbox side's encoding, run here on a value (the driver runs the same source)."""
    namespace: dict = {"json": json}
    exec(lcb.ENCODE_SOURCE, namespace)
    return json.loads(namespace["_encode"](value))


@pytest.mark.parametrize(
    "value,expected,equal",
    [
        ([3, 4], [3, 4], True),
        ((3, 4), [3, 4], True),  # the top-level tuple becomes a list
        ([(3,)], [[3]], False),  # a nested one does not
        ([3.0, 4], [3, 4], True),
        (True, 1, True),
        (1, True, True),
        (0.1 + 0.2, 0.3, False),
        (float("nan"), float("nan"), False),
        ("true", True, False),
        (None, None, True),
        (None, [], False),
        ({"a": [1, 2]}, {"a": [1, 2.0]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({1: 1}, {"1": 1}, False),  # JSON keys are strings
        ({3, 4}, [3, 4], False),
        (frozenset(), [], False),
        pytest.param(10**5000, 10**20, False, id="huge-int"),  # too long for a JSON reader: equals no readable gold
        ([[1, [2, [3]]]], [[1, [2, [3]]]], True),
    ],
)
def test_values_equal_is_pythons_equality(value, expected, equal):
    assert lcb.values_equal(_typed(value), expected) is equal


def test_values_equal_of_unreadable_and_deep_values():
    assert not lcb.values_equal(lcb.parse_returned("not json"), "not json")
    deep = "[" * 100_000 + "]" * 100_000  # a returned value nested past any recursion limit
    assert not lcb.values_equal(lcb.parse_returned(deep), [])
    nested = json.loads("[" * 200 + "]" * 200)
    assert lcb.values_equal(nested, nested)


def test_prelude_defines_the_reference_namespace():
    namespace: dict = {}
    limit = sys.getrecursionlimit()
    try:
        exec(lcb.PRELUDE, namespace)
        assert sys.getrecursionlimit() == lcb.RECURSION_LIMIT
    finally:
        sys.setrecursionlimit(limit)  # the prelude sets it process-wide; the other tests need the default
    for name in ("deque", "Counter", "heappush", "bisect_left", "sqrt", "fsum", "List", "Optional", "reduce",
                 "accumulate", "ascii_lowercase", "datetime", "mean", "deepcopy", "itemgetter", "stdin"):  # fmt: skip
        assert name in namespace, name
    assert namespace["datetime"].__name__ == "datetime"  # `import datetime` comes after the star import
    assert namespace["random"].__name__ == "random"


def test_row_settings_override_the_config():
    base = CodeConfig()
    judged = base.for_row({"compare": "lcb", "time_limit_s": 6})
    assert (judged.compare, judged.run_timeout_s, judged.stop_on_first_failure, judged.reward) == (
        "lcb", 6.0, True, "pass_all")  # fmt: skip
    lenient = CodeConfig(reward="pass_fraction", stop_on_first_failure=False, max_tests=3).for_row({"compare": "lcb"})
    assert (lenient.reward, lenient.stop_on_first_failure, lenient.max_tests) == ("pass_all", True, None)
    assert base.for_row({}) is base
    for bad in ({"compare": "exact"}, {"time_limit_s": 0}, {"time_limit_s": 61}, {"time_limit_s": True},
                {"time_limit_s": "6"}):  # fmt: skip
        with pytest.raises(TestsError):
            base.for_row(bad)


def test_bad_row_settings_score_bad_label():
    metadata = {"unit_tests": {"inputs": ["1\n"], "outputs": ["1\n"]}, "compare": "exactly"}
    result = asyncio.run(verify("```python\nprint(1)\n```", None, metadata, config=CodeConfig()))
    assert result.reason is Reason.BAD_LABEL and result.details["field"] == "metadata.compare"


# ---- through the embedded sandbox ------------------------------------------------------------------

SMALL = CodeConfig(workers=2, memory_limit_mb=512, test_concurrency=2)


@pytest.fixture(scope="module")
def sandbox():
    from m2rl_slime.sandbox import get_sandbox

    require_sandbox()
    return get_sandbox(SMALL)


def _metadata(problem: dict) -> dict:
    row = lcb_row(problem, "cases", 6, "test").to_json()
    assert row["metadata"]["compare"] == "lcb" and row["metadata"]["time_limit_s"] == 6.0
    if problem["question_id"] == "lcbt-slow":
        row["metadata"]["time_limit_s"] = 1.0  # the rule is the same at 6 s; the test need not wait that long
    return row["metadata"]


@pytest.mark.parametrize("problem,program", PROGRAMS, ids=[f"{p['question_id']}:{q['name']}" for p, q in PROGRAMS])
def test_case_verdicts(sandbox, problem, program):
    result = asyncio.run(verify(f"```python\n{program['code']}\n```", None, _metadata(problem), config=SMALL,
                                sandbox=sandbox))  # fmt: skip
    assert (result.reason is Reason.OK) is program["ours"], (program["why"], result.details.get("first_failure"))
    assert result.reason not in (Reason.SANDBOX_ERROR, Reason.BAD_LABEL, Reason.NO_CODE)


def test_first_failure_stops_the_tests(sandbox):
    problem = next(c["problem"] for c in CASES if c["problem"]["question_id"] == "lcbt-sum")
    code = next(p["code"] for p in CASES[0]["programs"] if p["name"] == "fails-second-test")
    config = CodeConfig(workers=2, memory_limit_mb=512, test_concurrency=1, stop_on_first_failure=False,
                        reward="pass_fraction")  # fmt: skip
    result = asyncio.run(verify(f"```python\n{code}\n```", None, _metadata(problem), config=config, sandbox=sandbox))
    assert result.score == 0.0 and result.reason is Reason.RUNTIME_ERROR  # lcb: pass_all, stop at the failure
    assert result.details["statuses"] == ["pass", "runtime_error", "skipped"]
    assert result.details["judging"] == {"compare": "lcb", "run_timeout_s": 6.0}


def test_time_limit_is_cpu_time_per_test(sandbox):
    problem = next(c["problem"] for c in CASES if c["problem"]["question_id"] == "lcbt-slow")
    result = asyncio.run(verify("```python\nwhile True:\n    pass\n```", None, _metadata(problem), config=SMALL,
                                sandbox=sandbox))  # fmt: skip
    assert result.reason is Reason.TIMEOUT and result.details["first_failure"]["cpu_limit_s"] == 1.0
