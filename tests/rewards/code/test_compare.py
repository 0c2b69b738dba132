"""Judge-style output comparison: lines stripped, trailing blanks ignored, float tolerance, exact integers."""

import pytest

from m2rl_slime.rewards.code.compare import Tolerance, call_result_matches, first_mismatch, stdout_matches

LINES = Tolerance(mode="lines")
TOKENS = Tolerance(mode="tokens")


@pytest.mark.parametrize(
    "got,expected,ok",
    [
        ("1\n3\n", "1\n3 \n", True),  # trailing space on an expected line (Nemotron rows have them)
        ("1\r\n3\r\n\n\n", "1\n3", True),  # CRLF and trailing blank lines
        ("  1 2  ", "1 2", True),
        ("1  2", "1 2", True),  # inner whitespace runs
        ("1\n\n3", "1\n3", False),  # a blank line in the middle matters in lines mode
        ("0.333333", "0.3333333", True),
        ("0.3334", "0.3333", False),
        ("3.0", "3", True),  # one side written as a float
        ("10001", "10000", False),  # integers are exact (QwQ's rel_tol accepts this)
        ("50", "0.5", False),
        ("YES", "yes", False),
        ("nan", "nan", True),
        ("1e5", "100000", True),  # integral and equal
        ("1000001.0", "1000000", False),  # a float against an integer: exact, never the float tolerance
        ("1e+18", "999999999999999999", False),
        ("3.000001", "3", False),
        ("3", "3.000001", False),
        ("1000000.0", "1000000", True),
        ("-0.0", "0", True),
        ("1e999999999", "1", False),  # decided in time linear in the token, the exponent is never expanded
        ("123456789012345678901234567890", "123456789012345678901234567890.0", True),
        ("", "", True),
        ("", "0", False),
        ("1\n2", "1", False),
    ],
)
def test_lines_mode(got, expected, ok):
    assert stdout_matches(got, expected, LINES) is ok


def test_tokens_mode_ignores_line_structure():
    assert stdout_matches("1 2 3\n4", "1\n2\n3 4\n", TOKENS)
    assert not stdout_matches("1 2 3", "1 2 3 4", TOKENS)
    assert first_mismatch("1 2 9", "1 2 3", TOKENS) == (2, "3", "9")


def test_case_insensitive_and_tolerances_are_configurable():
    assert stdout_matches("YES", "yes", Tolerance(case_insensitive=True))
    assert not stdout_matches("1.01", "1.0", Tolerance())
    assert stdout_matches("1.01", "1.0", Tolerance(rel_tol=0.05))
    assert stdout_matches("0.0000001", "0.0", Tolerance(abs_tol=1e-6))  # both floats: the tolerance applies
    assert not stdout_matches("0.0000001", "0", Tolerance(abs_tol=1e-6))  # an integer: exact


def test_first_mismatch_reports_the_line():
    assert first_mismatch("a\nb\nc", "a\nx\nc", LINES) == (1, "x", "b")
    assert first_mismatch("a", "a\nb", LINES) == (1, "b", "<end of output>")
    assert first_mismatch("a\n", "a", LINES) is None


@pytest.mark.parametrize(
    "got,expected,ok",
    [
        ([1, 2], [1, 2], True),
        ([1, 2], [[1, 2]], True),  # APPS wraps the expected return value in a list
        ([1, 2], [2, 1], False),
        (0.1 + 0.2, 0.3, True),
        (1, 1.0000001, False),  # an int against a float: exact
        (1, 1.0, True),
        (999999999999999999, 1e18, False),
        (1.0000001, 1.0, True),
        (True, 1, False),
        ({"a": [1.0]}, {"a": [1]}, True),
        ("abc", "abc", True),
        (None, None, True),
        (3, "3", False),
    ],
)
def test_call_results(got, expected, ok):
    assert call_result_matches(got, expected, Tolerance()) is ok
