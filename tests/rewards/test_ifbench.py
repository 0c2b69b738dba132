"""IFBench's 58 instruction checkers through `instruction.verify`, and IFEval's four aggregates.

Pins: the registry (exactly IFBench's 58 ids, disjoint from IFEvalG's 54); a followed and a
not-followed case for every id (data/ifbench_cases.jsonl, written from allenai/IFBench's checker
behaviour and checked by hand); loose mode; IFBench-style rows (40 kwarg names, most null); bad
kwargs; the text views (rule-based sentences, Treebank-style tokens); `summarize`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from m2rl_slime.rewards.if_summary import summarize
from m2rl_slime.rewards.ifbench import IFBENCH_IDS, IFBENCH_REGISTRY
from m2rl_slime.rewards.ifbench.formatting import _lines_after_blank_removal
from m2rl_slime.rewards.ifbench.lexicon import STOPWORDS, count_syllables, is_emoji
from m2rl_slime.rewards.ifbench.text import rule_sentences, word_tokens
from m2rl_slime.rewards.ifbench.verbs import looks_like_verb
from m2rl_slime.rewards.ifeval import REGISTRY
from m2rl_slime.rewards.instruction import IFConfig, verify
from m2rl_slime.rewards.result import Reason

CASES_PATH = Path(__file__).parent / "data" / "ifbench_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def meta(ids, kwargs=None):
    return {"instruction_id_list": list(ids), "kwargs": kwargs if kwargs is not None else [{} for _ in ids]}


def test_registry_is_exactly_ifbenchs_58_ids_and_disjoint_from_ifevalg():
    assert len(IFBENCH_IDS) == len(set(IFBENCH_IDS)) == 58
    assert set(IFBENCH_REGISTRY) == set(IFBENCH_IDS)
    assert "format:sub-bullets" in IFBENCH_REGISTRY and "custom:character_reverse" in IFBENCH_REGISTRY
    assert not set(IFBENCH_REGISTRY) & set(REGISTRY)


def test_table_covers_every_id_both_ways():
    outcomes: dict[str, set[bool]] = {}
    for case in CASES:
        outcomes.setdefault(case["id"], set()).add(case["expected"])
    assert {i for i in IFBENCH_IDS if outcomes.get(i) != {True, False}} == set()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['id']}:{c['note'][:30]}")
def test_case_table(case):
    result = verify(case["response"], None, meta([case["id"]], [case["kwargs"]]))
    assert result.reason is (Reason.OK if case["expected"] else Reason.WRONG), (case["note"], result.details)
    [constraint] = result.details["constraints"]
    assert constraint["strict"] is case["expected"]
    assert constraint["loose"] or not case["expected"]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "response"),
    [
        ("format:no_whitespace", {}, "Here it is:\nno_spaces_at_all"),  # framing first line
        ("custom:multiples", {}, "14, 21, 28, 35, 42, 49\nThat is all 1 list."),  # trailing last line
        ("custom:csv_city", {}, "**ID**,Country,City,Year,Count\n" + "\n".join(f"{i},F,P,2020,1" for i in range(7))),
        ("words:start_verb", {}, "Title: Rain\nImagine rain."),
    ],
)
def test_loose_mode_accepts_what_ifevals_relaxations_accept(instruction_id, kwargs, response):
    md = meta([instruction_id], [kwargs])
    strict = verify(response, None, md)
    loose = verify(response, None, md, config=IFConfig(loose=True))
    assert strict.reason is Reason.WRONG and loose.reason is Reason.OK
    assert strict.details["constraints"][0]["loose"] is True  # both verdicts are always reported
    assert strict.details["loose_followed"] == 1 and strict.details["strict_followed"] == 0


def test_ifbench_rows_with_null_kwargs_score():
    names = ["N", "keyword", "keyword1", "keyword2", "keyword3", "keyword4", "keyword5", "options", "small_n", "sep"]
    kwargs = {name: None for name in names} | {"small_n": 2.0}
    result = verify("Go go stop.", None, meta(["words:repeats"], [kwargs]))
    assert result.reason is Reason.OK


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "fragment"),
    [
        ("count:word_count_range", {"min_words": 3}, "max_words"),
        ("count:words_japanese", {"N": 0}, "at least 1"),
        ("words:keywords_specific_position", {"keyword": "x", "n": 1, "m": 0}, "'m'"),
        ("format:list", {"sep": "  "}, "'sep'"),
        ("ratio:overlap", {"percentage": 5}, "reference_text"),
        ("repeat:repeat_span", {"prompt_to_repeat": "a b c", "n_start": 0}, "n_end"),
        ("words:vowel", {"N": 3}, "unexpected kwargs N"),
        ("count:numbers", {"N": 2.5}, "whole number"),
    ],
)
def test_bad_kwargs_are_bad_label(instruction_id, kwargs, fragment):
    result = verify("Some response.", None, meta([instruction_id], [kwargs]))
    assert result.reason is Reason.BAD_LABEL and fragment in result.details["error"], result.details


def test_mixed_ifevalg_and_ifbench_ids_in_one_row():
    md = meta(["punctuation:no_comma", "words:no_consecutive"])
    assert verify("The cat ate fish.", None, md).reason is Reason.OK
    assert verify("The cat, the tall dog.", None, md).details["followed"] == 0


def test_reference_crashes_are_not_followed():
    # IFBench raises ZeroDivisionError / IndexError on these; here they are simply not followed.
    assert verify("!!!", None, meta(["ratio:stop_words"], [{"percentage": 100}])).reason is Reason.WRONG
    assert verify("...", None, meta(["format:quote_unquote"])).reason is Reason.WRONG
    assert verify(". Hi.", None, meta(["words:last_first"])).reason is Reason.WRONG


def test_rule_sentences_follow_ifevals_splitter():
    assert rule_sentences("Mr. Smith went to Washington. He said hi!") == [
        "Mr. Smith went to Washington.",
        "He said hi!",
    ]
    assert rule_sentences("Pi is 3.14 today. Visit example.com now.") == [
        "Pi is 3.14 today.",
        "Visit example.com now.",
    ]
    assert rule_sentences("Wait... what? Yes.") == ["Wait...", "what?", "Yes."]
    assert rule_sentences('He said "stop." Then left') == ['He said "stop".', "Then left"]
    assert rule_sentences("I met J. Smith in the U.S. He waved.") == ["I met J. Smith in the U.S.", "He waved."]
    assert rule_sentences("line one\nline two") == ["line one line two"]
    assert rule_sentences("   ") == []


def test_word_tokens_follow_treebank_conventions():
    assert word_tokens("Don't stop, it's fine (really).") == [
        "Do", "n't", "stop", ",", "it", "'s", "fine", "(", "really", ")", ".",
    ]  # fmt: skip
    assert word_tokens("We cannot pay 1,000 at 12:30 e.g. today") == [
        "We", "can", "not", "pay", "1,000", "at", "12:30", "e.g.", "today",
    ]  # fmt: skip
    assert word_tokens('**Bold** "quote"') == ["*", "*", "Bold", "*", "*", '"', "quote", '"']


def test_lexicon_resources():
    assert {"the", "don", "t", "ll", "yourselves"} <= STOPWORDS and "don't" not in STOPWORDS
    assert len(STOPWORDS) == 153  # NLTK's 179 English entries less the 26 with an apostrophe
    assert [count_syllables(w) for w in ("cat", "apple", "table", "the", "self-care", "b2b", "")] == [
        1,
        2,
        2,
        1,
        2,
        0,
        0,
    ]
    assert is_emoji("\U0001f600") and is_emoji("\u2615") and is_emoji("\U0001f3fb")
    assert not is_emoji("a") and not is_emoji("#") and not is_emoji("\U0001f1e6") and not is_emoji("\u200d")
    assert looks_like_verb("Imagine") and looks_like_verb("growing") and looks_like_verb("Wrote")
    assert not looks_like_verb("The") and not looks_like_verb("During") and not looks_like_verb("Can")


def _python_blank_removal(lines):
    """IFBench's loop, verbatim in behaviour: remove blank lines while iterating over the list."""
    lines = list(lines)
    for line in lines:
        if not line.strip():
            lines.remove(line)
    return lines


@pytest.mark.parametrize(
    "lines",
    [
        ["a", "", " b", "", "  c"],
        ["a", "", "", "b"],
        ["", "", "", "x", " ", "", " ", "y", ""],
        [" ", "a", " ", " ", " ", "b", "", " ", "", "c"],
        ["x"] + [""] * 7 + [" "] * 3,
    ],
)
def test_blank_line_removal_matches_ifbenchs_mutating_loop(lines):
    assert _lines_after_blank_removal(lines) == _python_blank_removal(lines)


def _details(strict, loose):
    return {"constraints": [{"id": "x", "followed": s, "strict": s, "loose": lo} for s, lo in zip(strict, loose)]}


def test_summarize_computes_ifevals_four_numbers():
    results = [
        _details([True, True], [True, True]),  # followed both ways
        _details([True, False], [True, True]),  # loose only
        _details([False], [False]),
        {"score": 0.0, "reason": "empty_response", "details": {"total": 3}},  # 3 unfollowed instructions
    ]
    summary = summarize(results)
    assert (summary.prompts, summary.instructions, summary.unscored) == (4, 8, 0)
    assert summary.prompt_strict == 1 / 4 and summary.prompt_loose == 2 / 4
    assert summary.instruction_strict == 3 / 8 and summary.instruction_loose == 4 / 8
    assert summarize([{"details": {"error": "bad"}}]).unscored == 1


def test_summarize_on_verifier_results():
    md = meta(["format:no_whitespace", "count:numbers"], [{}, {"N": 1}])
    results = [verify("Intro:\nno_spaces_1", None, md), verify("a_1", None, md), verify("a 1 2", None, md)]
    summary = summarize(results)
    assert (summary.prompt_strict, summary.prompt_loose) == (1 / 3, 2 / 3)
    assert (summary.instruction_strict, summary.instruction_loose) == (3 / 6, 4 / 6)
