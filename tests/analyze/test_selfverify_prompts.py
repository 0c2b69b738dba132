"""Judge prompts and verdict parsing: the shipped templates render with every placeholder, process mode tags
paragraphs from 0, each unparsable reply has its cause, parsing stays linear on hostile replies, and a
custom template file is validated."""

from __future__ import annotations

import time

import pytest

from m2rl_slime.analyze.selfverify.prompts import last_boxed, load_templates, paragraphs, parse_verdict, render
from m2rl_slime.errors import ConfigError


@pytest.fixture(scope="module")
def templates():
    return load_templates()


def test_outcome_prompt_has_the_question_answer_and_domain_criterion(templates):
    text, n = render(templates, "outcome", "Solve x + 1 = 3.", "math", reasoning="secret steps", content="x = 2")
    assert n == 0 and "Solve x + 1 = 3." in text and "x = 2" in text and "secret" not in text
    assert templates.criteria["math"] in text and "\\boxed{Correct}" in text and "$" not in text
    code, _ = render(templates, "outcome", "q", "unit_test", reasoning=None, content="print(1)")
    assert templates.criteria["code"] in code  # aliases resolve to the canonical domain
    other, _ = render(templates, "outcome", "q", "bfcl", reasoning=None, content="")
    assert templates.criteria["default"] in other and "(no answer)" in other


def test_process_prompt_tags_paragraphs_from_zero(templates):
    text, n = render(templates, "process", "Q", "if", reasoning="first\n\nsecond\n \nthird", content="final")
    assert n == 4
    assert "<paragraph_0>\nfirst\n</paragraph_0>" in text and "<paragraph_3>\nfinal\n</paragraph_3>" in text
    assert paragraphs(None, "only\n\n\n\nanswer") == ["only", "answer"]


@pytest.mark.parametrize(
    ("mode", "reply", "n", "verdict", "error"),
    [
        ("outcome", "so \\boxed{Correct}", 0, "correct", None),
        ("outcome", "\\boxed{\\text{Incorrect}}.", 0, "incorrect", None),
        ("outcome", "\\boxed{Correct} wait \\boxed{incorrect}", 0, "incorrect", None),
        ("outcome", "Correct.", 0, None, "no_boxed"),
        ("outcome", "\\boxed{maybe}", 0, None, "not_correct_or_incorrect"),
        ("outcome", "<think>\n\\boxed{Correct}", 0, None, "unfinished_thinking"),
        ("outcome", "\\boxed{Correct", 0, None, "no_boxed"),
        ("process", "\\boxed{-1}", 3, "correct", None),
        ("process", "\\boxed{ 2 }", 3, "incorrect", None),
        ("process", "\\boxed{3}", 3, None, "index_out_of_range"),
        ("process", "\\boxed{two}", 3, None, "not_an_index"),
        ("process", "\\boxed{-2}", 3, None, "index_out_of_range"),
    ],
)
def test_verdicts(mode, reply, n, verdict, error):
    parsed = parse_verdict(mode, reply, n)
    assert (parsed.verdict, parsed.error) == (verdict, error)


def test_parsing_is_linear_on_hostile_replies():
    """A megabyte of nested braces after a box, and many boxes: a linear parser answers at once."""
    started = time.process_time()
    assert last_boxed("\\boxed{" + "{" * 1_000_000) is None
    assert parse_verdict("outcome", "\\boxed{x}" * 200_000 + "\\boxed{Correct}").verdict == "correct"
    assert len(paragraphs("a\n\n" * 200_000, None)) == 200_000
    assert time.process_time() - started < 20  # generous: a quadratic parser would take hours


def test_custom_templates_are_validated(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("version: 2\ncriteria: {default: be right}\noutcome: '$question $answer $criterion'\n"
                    "process: '$question $paragraphs $criterion'\n")  # fmt: skip
    loaded = load_templates(good)
    assert loaded.version == 2 and loaded.sha != load_templates().sha
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\ncriteria: {default: x}\noutcome: '$question'\nprocess: '$question $paragraphs $criterion'\n"
    )
    with pytest.raises(ConfigError, match=r"outcome template lacks \$answer, \$criterion"):
        load_templates(bad)
    with pytest.raises(ConfigError, match="criteria"):
        (tmp_path / "c.yaml").write_text("version: 1\ncriteria: {}\noutcome: a\nprocess: b\n")
        load_templates(tmp_path / "c.yaml")
