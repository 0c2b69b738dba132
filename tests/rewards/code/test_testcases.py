"""Test formats (NeMo-Gym, CodeContests, call-based) parse into one suite; bad tests name their field."""

import json

import pytest

from m2rl_slime.rewards.code.testcases import TestsError, call_output, call_stdin, parse_tests

NEMO = {"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"], "fn_name": None}


@pytest.mark.parametrize(
    "label,metadata,source",
    [
        (None, {"unit_tests": NEMO}, "metadata.unit_tests"),
        (None, {"unit_tests": json.dumps(NEMO)}, "metadata.unit_tests"),
        (None, {"verifier_metadata": {"unit_tests": NEMO}}, "metadata.verifier_metadata.unit_tests"),
        (NEMO, {}, "label"),
        (json.dumps(NEMO), {"domain": "code"}, "label"),
        ([{"input": "1 2\n", "output": "3\n"}, {"input": "3 4\n", "output": "7\n"}], {}, "label"),
        (None, {"unit_tests": {"public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
                               "private_tests": {"input": ["3 4\n"], "output": ["7\n"]}}}, "metadata.unit_tests"),
        ([{"input": {"stdin": "1 2\n"}, "output": {"stdout": "3\n"}}, {"input": {"stdin": "3 4\n"},
                                                                       "output": {"stdout": "7\n"}}], {}, "label"),
    ],
    ids=["nemo", "nemo-json", "verifier-metadata", "label-dict", "label-json", "codecontests-list",
         "codecontests-splits", "fusion-commonoj"],
)  # fmt: skip
def test_formats(label, metadata, source):
    suite = parse_tests(label, metadata)
    assert suite.source == source and suite.fn_name is None
    assert [(c.stdin, c.expected) for c in suite.cases] == [("1 2\n", "3\n"), ("3 4\n", "7\n")]


def test_metadata_is_not_mutated():
    metadata = {"unit_tests": {"inputs": ["1"], "outputs": [["a", "b"]]}}
    frozen = json.dumps(metadata)
    suite = parse_tests(None, metadata)
    assert suite.cases[0].expected == "a\nb"  # APPS list-of-lines output
    assert json.dumps(metadata) == frozen


def test_call_based_inputs_lcb_and_apps_styles():
    tests = {"inputs": ["[1, 2]\n3", [[5], 6]], "outputs": ["[1]", [7]], "fn_name": "solve"}
    suite = parse_tests(None, {"unit_tests": tests})
    assert suite.fn_name == "solve"
    assert [json.loads(c.stdin)["args"] for c in suite.cases] == [[[1, 2], 3], [[5], 6]]
    assert [c.expected for c in suite.cases] == [[1], [7]]
    assert json.loads(call_stdin(suite.cases[0], "abc")) == {"nonce": "abc", "args": [[1, 2], 3]}


@pytest.mark.parametrize(
    "label,metadata,field",
    [
        (None, {}, "metadata.unit_tests"),
        (None, {"unit_tests": None}, "metadata.unit_tests"),
        (None, {"unit_tests": "{not json"}, "metadata.unit_tests"),
        (None, {"unit_tests": {"inputs": ["1"], "outputs": []}}, "metadata.unit_tests"),
        (None, {"unit_tests": {"inputs": "1", "outputs": ["1"]}}, "metadata.unit_tests.inputs"),
        (None, {"unit_tests": {"inputs": [1], "outputs": ["1"]}}, "metadata.unit_tests.inputs[0]"),
        (None, {"unit_tests": {"inputs": ["1"], "outputs": [2]}}, "metadata.unit_tests.outputs[0]"),
        (None, {"unit_tests": {"inputs": [], "outputs": []}}, "metadata.unit_tests"),
        (
            None,
            {"unit_tests": {"inputs": ["1"], "outputs": ["1"], "fn_name": "no such"}},
            "metadata.unit_tests.fn_name",
        ),
        (
            None,
            {"unit_tests": {"inputs": ["{bad"], "outputs": ["1"], "fn_name": "f"}},
            "metadata.unit_tests.inputs[0]",
        ),
        (None, {"unit_tests": {"tests": []}}, "metadata.unit_tests"),
        ([{"in": "1"}], {}, "label[0]"),
    ],
)
def test_malformed_tests_name_the_field(label, metadata, field):
    with pytest.raises(TestsError) as info:
        parse_tests(label, metadata)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_call_output_takes_the_first_marker():
    """Only the driver knows the nonce, and it prints first; anything after it is not the driver's."""
    stdout = 'noise\n\x1eN\x1e[1, 2]\nmore\n\x1eN\x1e{"a": 1}\n'
    assert call_output(stdout, "N") == (True, [1, 2])
    assert call_output("forged \x1eX\x1e5\n", "N") == (False, None)
