"""Tests of the instruction-following verifier (m2rl_slime.rewards.instruction).

Pins: the 54 IFEvalG ids and their kwargs (table in data/ifeval_cases.jsonl, cases written from the
behaviour of IFEval's instructions_test and open-instruct's IFEvalG), fail-closed handling of unknown
ids/relations and malformed rows, per-position scoring, label forms, modes, and the NeMo-Gym rows.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from m2rl_slime.config import parse_dataclass
from m2rl_slime.errors import ConfigError
from m2rl_slime.rewards.ifeval import REGISTRY
from m2rl_slime.rewards.instruction import IFConfig, loose_variants, verify
from m2rl_slime.rewards.result import Reason

CASES_PATH = Path(__file__).parent / "data" / "ifeval_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]

# The 25 IFEval ids and the 29 that IFEvalG (allenai/open-instruct) adds.
IFEVAL_25 = {
    "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
    "language:response_language", "length_constraints:number_sentences", "length_constraints:number_paragraphs",
    "length_constraints:number_words", "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders", "detectable_content:postscript",
    "detectable_format:number_bullet_lists", "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections", "detectable_format:multiple_sections",
    "detectable_format:json_format", "detectable_format:title", "combination:two_responses",
    "combination:repeat_prompt", "startend:end_checker", "startend:quotation",
    "change_case:capital_word_frequency", "change_case:english_capital", "change_case:english_lowercase",
    "punctuation:no_comma",
}  # fmt: skip
IFEVALG_29 = {
    "copy:repeat_phrase", "copy:copy", "copy:copying_simple", "copy:copying_multiple", "new:copy_span_idx",
    "detectable_format:sentence_hyphens", "detectable_format:square_brackets", "detectable_format:bigram_wrapping",
    "keywords:no_adjacent_consecutive", "keywords:word_once", "keywords:word_count_different_numbers",
    "keywords:exclude_word_harder", "keywords:palindrome", "keywords:keyword_specific_position",
    "keywords:start_end", "paragraphs:paragraphs", "paragraphs:paragraphs2", "first_word:first_word_sent",
    "first_word:first_word_answer", "last_word:last_word_sent", "last_word:last_word_answer",
    "punctuation:punctuation_dot", "punctuation:punctuation_exclamation", "count:lowercase_counting",
    "count:counting_composition", "count:count_unique", "count:count_increment_word", "letters:letter_counting",
    "letters:letter_counting2",
}  # fmt: skip


def meta(ids, kwargs=None, **extra):
    data = {"instruction_id_list": list(ids), **extra}
    data["kwargs"] = [{} for _ in ids] if kwargs is None else kwargs
    return data


# --- registry and regression table ---------------------------------------------------------------


def test_registry_holds_exactly_the_54_ifevalg_ids():
    assert len(IFEVAL_25) == 25 and len(IFEVALG_29) == 29
    assert set(REGISTRY) == IFEVAL_25 | IFEVALG_29
    assert len(REGISTRY) == 54


def test_table_covers_every_id_both_ways():
    outcomes: dict[str, set[bool]] = {}
    for case in CASES:
        outcomes.setdefault(case["id"], set()).add(case["expected"])
    missing = {i for i in REGISTRY if outcomes.get(i) != {True, False}}
    assert not missing, f"ids without a followed and a not-followed case: {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{i}" for i, c in enumerate(CASES)])
def test_case_table(case):
    result = verify(case["response"], None, meta([case["id"]], [case["kwargs"]]))
    assert result.reason is (Reason.OK if case["expected"] else Reason.WRONG), (case["note"], result.details)
    assert result.score == float(case["expected"])
    [constraint] = result.details["constraints"]
    assert (constraint["id"], constraint["followed"], constraint["strict"]) == (case["id"],) + (case["expected"],) * 2
    assert constraint["loose"] or not case["expected"]  # loose never rejects what strict accepts


# --- scoring, modes, details ------------------------------------------------------------------------


def test_all_mode_is_binary_and_fraction_is_reported():
    md = meta(["punctuation:no_comma", "punctuation:punctuation_dot", "punctuation:punctuation_exclamation"])
    result = verify("No commas here. But a dot", None, md)
    assert (result.score, result.reason) == (0.0, Reason.WRONG)
    assert result.details["followed"] == 2 and result.details["total"] == 3
    assert result.details["fraction"] == pytest.approx(2 / 3)
    assert [c["followed"] for c in result.details["constraints"]] == [True, False, True]


def test_fraction_mode_scores_the_fraction():
    md = meta(["punctuation:no_comma", "punctuation:punctuation_dot"])
    result = verify("a, b", None, md, config=IFConfig(mode="fraction"))
    assert (result.score, result.reason) == (0.5, Reason.WRONG)
    assert verify("a b", None, md, config=IFConfig(mode="fraction")).score == 1.0


def test_repeated_ids_count_per_position():
    md = meta(
        ["keywords:existence", "keywords:existence", "punctuation:no_comma"],
        [{"keywords": ["tea"]}, {"keywords": ["coffee"]}, {}],
    )
    result = verify("I drink tea", None, md, config=IFConfig(mode="fraction"))
    assert result.details["total"] == 3
    assert [c["followed"] for c in result.details["constraints"]] == [True, False, True]
    assert result.score == pytest.approx(2 / 3)


def test_same_id_twice_with_same_kwargs_counts_twice():
    result = verify("x y", None, meta(["punctuation:no_comma"] * 2))
    assert result.details["followed"] == 2 and result.details["total"] == 2


def test_loose_mode_accepts_a_framing_first_line():
    md = meta(["first_word:first_word_answer"], [{"first_word": "Indeed"}])
    response = "Sure, here is my answer:\nIndeed the sky is blue."
    assert verify(response, None, md).reason is Reason.WRONG
    assert verify(response, None, md, config=IFConfig(loose=True)).reason is Reason.OK


def test_loose_variants_match_ifeval():
    variants = loose_variants("first\n*mid*\nlast")
    assert variants == ["first\n*mid*\nlast", "*mid*\nlast", "first\n*mid*", "*mid*", "first\nmid\nlast",
                        "mid\nlast", "first\nmid", "mid"]  # fmt: skip


# --- fail closed ---------------------------------------------------------------------------------


def test_unknown_id_fails_closed_and_names_it():
    md = meta(["punctuation:no_comma", "keywords:key_sentences"])
    for config in (IFConfig(), IFConfig(mode="fraction")):
        result = verify("fine", None, md, config=config)
        assert (result.score, result.reason) == (0.0, Reason.UNKNOWN_INSTRUCTION)
        assert result.details["instruction_id"] == "keywords:key_sentences"
        assert result.details["position"] == 1


@pytest.mark.parametrize("relation", ["at most", "more than", "exactly", "less_or_equal"])
def test_unknown_relation_fails_closed(relation):
    md = meta(["length_constraints:number_words"], [{"num_words": 3, "relation": relation}])
    result = verify("one two", None, md)
    assert (result.score, result.reason) == (0.0, Reason.UNKNOWN_INSTRUCTION)
    assert result.details["relation"] == relation
    assert relation in result.details["error"]


@pytest.mark.parametrize(
    ("instruction_id", "kwargs"),
    [
        ("change_case:capital_word_frequency", {"capital_frequency": 1, "capital_relation": "at most"}),
        ("keywords:letter_frequency", {"letter": "a", "let_frequency": 1, "let_relation": "more than"}),
        ("letters:letter_counting", {"N": 1, "relation": "greater than"}),
    ],
)
def test_unknown_relation_in_every_relation_kwarg(instruction_id, kwargs):
    assert verify("A a", None, meta([instruction_id], [kwargs])).reason is Reason.UNKNOWN_INSTRUCTION


@pytest.mark.parametrize("relation", ["At Least", " at  least ", "at_least", "LESS THAN"])
def test_relation_spelling_is_normalised(relation):
    md = meta(["length_constraints:number_words"], [{"num_words": 2, "relation": relation}])
    assert verify("one two", None, md).reason in (Reason.OK, Reason.WRONG)


def test_empty_instruction_list_is_bad_label_not_reward_one():
    result = verify("some non-empty response", None, meta([]))
    assert (result.score, result.reason) == (0.0, Reason.BAD_LABEL)
    assert "empty" in result.details["error"]
    label = str([{"instruction_id": [], "kwargs": []}])  # open-instruct's regression case
    assert verify("some non-empty response", label, {}).reason is Reason.BAD_LABEL


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "fragment"),
    [
        ("length_constraints:number_words", {"relation": "at least"}, "num_words"),
        ("length_constraints:number_words", {"num_words": "100", "relation": "at least"}, "num_words"),
        ("length_constraints:number_words", {"num_words": 2.5, "relation": "at least"}, "num_words"),
        ("length_constraints:number_words", {"num_words": True, "relation": "at least"}, "num_words"),
        ("length_constraints:number_words", {"num_words": -1, "relation": "at least"}, "num_words"),
        ("length_constraints:number_words", {"num_words": 5}, "relation"),
        ("length_constraints:number_words", {"num_words": 5, "relation": 1}, "relation"),
        ("keywords:existence", {"keywords": "tea"}, "keywords"),
        ("keywords:existence", {"keywords": []}, "keywords"),
        ("keywords:existence", {"keywords": ["tea", 3]}, "keywords"),
        ("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": "at least"}, "letter"),
        ("detectable_format:title", {"num_highlights": 2}, "unexpected"),
        ("keywords:frequency", {"first_word": "x", "frequency": 1, "relation": "at least"}, "first_word"),
        ("combination:repeat_prompt", {}, "prompt_to_repeat"),
        ("language:response_language", {"language": "klingon"}, "language"),
        (
            "length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": 2, "nth_paragraph": 0, "first_word": "x"},
            "nth_paragraph",
        ),
        ("new:copy_span_idx", {"prompt_to_repeat": "abc", "n_start": 2, "n_end": 1}, "span"),
        ("copy:repeat_phrase", {"phrase": "single", "small_n": 2}, "phrase"),
        ("first_word:first_word_answer", {"first_word": "..."}, "first_word"),
        ("last_word:last_word_answer", {"last_word": "New York"}, "single word"),
    ],
)
def test_bad_kwargs_are_bad_label_naming_the_field(instruction_id, kwargs, fragment):
    md = meta(["punctuation:no_comma", instruction_id], [{}, kwargs])
    result = verify("response text", None, md)
    assert (result.score, result.reason) == (0.0, Reason.BAD_LABEL), result.details
    assert fragment in result.details["error"] and instruction_id in result.details["error"]
    assert "position 1" in result.details["error"]


def test_never_draws_random_kwargs():
    """IFEval's build_description invents a random value for an absent kwarg; we refuse instead."""
    results = [verify("word " * 50, None, meta(["length_constraints:number_words"], [{}])) for _ in range(5)]
    assert {r.reason for r in results} == {Reason.BAD_LABEL}
    assert {r.details["error"] for r in results} == {results[0].details["error"]}


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"instruction_id_list": "punctuation:no_comma", "kwargs": [{}]}, "list"),
        ({"instruction_id_list": [3], "kwargs": [{}]}, "instruction_id_list[0]"),
        ({"instruction_id_list": [""], "kwargs": [{}]}, "instruction_id_list[0]"),
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs has 2 entries"),
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": {"a": 1}}, "kwargs"),
        ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [5]}, "kwargs[0]"),
    ],
)
def test_malformed_rows_are_bad_label(metadata, fragment):
    result = verify("text", None, metadata)
    assert result.reason is Reason.BAD_LABEL
    assert fragment in result.details["error"]


def test_missing_source_and_bad_metadata_are_bad_label():
    assert verify("text", None, {}).reason is Reason.BAD_LABEL
    assert verify("text", None, None).reason is Reason.BAD_LABEL
    assert verify("text", None, ["not", "a", "mapping"]).reason is Reason.BAD_LABEL
    assert verify("text", 42, {}).reason is Reason.BAD_LABEL
    assert verify("text", "not a literal {", {}).reason is Reason.BAD_LABEL
    assert verify("text", "[" * 5000, {}).reason is Reason.BAD_LABEL


def test_none_kwargs_values_and_entries_are_dropped():
    union_row = {name: None for name in ("N", "keyword", "keywords", "relation", "num_words", "language")}
    md = meta(
        ["length_constraints:number_words", "detectable_format:title", "punctuation:no_comma"],
        [{**union_row, "num_words": 204.0, "relation": "less than"}, None, union_row],
    )
    result = verify("<<Title>>\nshort answer", None, md)
    assert result.reason is Reason.OK, result.details


def test_missing_kwargs_means_no_kwargs():
    assert verify("a b", None, {"instruction_id_list": ["punctuation:no_comma"]}).reason is Reason.OK
    md = {"instruction_id_list": ["keywords:word_once"]}
    assert verify("a b", None, md).reason is Reason.BAD_LABEL


# --- label forms ---------------------------------------------------------------------------------

_IDS = ["keywords:existence", "punctuation:no_comma"]
_KWARGS = [{"keywords": ["tea"]}, {"keywords": None}]


@pytest.mark.parametrize(
    "label",
    [
        str([{"instruction_id": _IDS, "kwargs": _KWARGS}]),  # open-instruct: Python literal
        json.dumps([{"instruction_id": _IDS, "kwargs": _KWARGS}]),
        json.dumps({"instruction_id_list": _IDS, "kwargs": _KWARGS}),
        {"instruction_id": _IDS, "kwargs": _KWARGS},
        [{"instruction_id_list": _IDS, "kwargs": _KWARGS}],
        [json.dumps({"instruction_id": _IDS, "kwargs": _KWARGS})],  # list item is a JSON string
        json.dumps([{"instruction_id": _IDS, "kwargs": _KWARGS}]).encode(),
        {"instruction_id": _IDS, "kwargs": json.dumps(_KWARGS)},
    ],
)
def test_label_forms(label):
    assert verify("I like tea", label, {}).reason is Reason.OK
    assert verify("I like coffee", label, {"domain": "if"}).reason is Reason.WRONG


def test_label_list_with_several_items_is_bad_label():
    item = {"instruction_id": _IDS, "kwargs": _KWARGS}
    assert verify("tea", [item, item], {}).reason is Reason.BAD_LABEL


def test_metadata_wins_over_label():
    label = {"instruction_id": ["keywords:existence"], "kwargs": [{"keywords": ["coffee"]}]}
    md = meta(["keywords:existence"], [{"keywords": ["tea"]}])
    assert verify("tea", label, md).reason is Reason.OK


def test_inputs_are_not_mutated():
    md = meta(["keywords:existence", "detectable_format:title"], [{"keywords": ["tea"], "x": None}, None])
    label = [{"instruction_id": ["punctuation:no_comma"], "kwargs": [None]}]
    md_before, label_before = copy.deepcopy(md), copy.deepcopy(label)
    verify("tea", label, md)
    verify("tea", label, {})
    assert md == md_before and label == label_before


# --- responses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("response", ["", "   \n\t ", None])
def test_empty_response(response):
    result = verify(response, None, meta(["punctuation:no_comma"]))
    assert (result.score, result.reason) == (0.0, Reason.EMPTY_RESPONSE)


def test_windows_line_ends_are_read_as_newlines():
    md = meta(["paragraphs:paragraphs2", "length_constraints:nth_paragraph_first_word"],
              [{}, {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "second"}])  # fmt: skip
    assert verify("First paragraph.\r\n\r\nSecond paragraph.", None, md).reason is Reason.OK


def test_data_errors_are_reported_before_empty_response():
    assert verify("", None, meta([])).reason is Reason.BAD_LABEL
    assert verify("", None, meta(["nope:nope"])).reason is Reason.UNKNOWN_INSTRUCTION


def test_binary_garbage_does_not_crash():
    garbage = bytes(range(256)).decode("latin-1") * 40
    md = meta(sorted(i for i in REGISTRY if not REGISTRY[i].params and not REGISTRY[i].uses_language))
    result = verify(garbage, None, md, config=IFConfig(mode="fraction"))
    assert result.reason in (Reason.OK, Reason.WRONG)


# --- config --------------------------------------------------------------------------------------


def test_config_parses_and_pickles():
    config = parse_dataclass(IFConfig, {"mode": "fraction", "loose": True}, "m2rl_reward.if")
    assert config == IFConfig(mode="fraction", loose=True)
    assert pickle.loads(pickle.dumps(config)) == config
    assert parse_dataclass(IFConfig, None, "m2rl_reward.if") == IFConfig()
    with pytest.raises(ConfigError, match="mode"):
        parse_dataclass(IFConfig, {"mode": "mean"}, "m2rl_reward.if")
    with pytest.raises(ConfigError, match="strict"):
        parse_dataclass(IFConfig, {"strict": True}, "m2rl_reward.if")


# --- the example rows of each set (tests/conftest.py): a followed and a not-followed response per row ---------

_NEMO_GYM_RESPONSES = {
    # nth_paragraph_first_word (4 paragraphs, 3rd starts with "crash") + last word "contest"
    17616: (
        (
            "Oliver woke in the hospital bed.\n\nHis mother drove in silence.\n\n"
            "Crash, went the memories of the island.\n\nHe would win Laurel back, whatever the contest."
        ),
        (
            "Oliver woke in the hospital bed.\n\nHis mother drove in silence.\n\n"
            "Memories of the island crashed in.\n\nHe would win Laurel back, whatever the contest."
        ),
    ),
    # 2 paragraphs split by ***, at most 3 lowercase words, exactly 5 bullets
    44654: (
        (
            "SQL PLAN\n* INDEX URID\n* INDEX DRAFTID\n* DROP UNUSED JOINS\n* FILTER EARLY\n* CACHE TEP\n***\n"
            "RESULT: FASTER QUERIES with less work."
        ),
        "sql plan\n* index urid\n* index draftid\n***\nresult: faster queries",
    ),
    # forbidden words inevitable/part + every sentence starts with "relationship"
    2228: (
        "Relationship simulators sell well on mobile. Relationship mechanics are cheap to build in Unity!",
        "Relationship simulators sell well. This is part of the main goal.",
    ),
    # >= 4 placeholders, >= 3 letters, >= 17 sentences
    44655: (
        " ".join(f"Topic {i} is on page [page {i}]." for i in range(1, 18)),
        "Topic one is on page [page]. Topic two is on [page].",
    ),
    # paragraphs:paragraphs (*** split, 2 paragraphs), a <<title>>, fewer than 204 words
    8654: (
        (
            "<<Installing JayHorn>>\nDownload the release jar and install Java 8.\n***\n"
            "Run java -jar jayhorn.jar on your input file."
        ),
        "<<Installing JayHorn>>\nDownload the release jar. Then run it.",
    ),
}


_REPO_RESPONSES = {
    # no commas + ends with "Thank you."
    901: (
        "Dear neighbour\n\nOur grey cat Pepper has been missing since Tuesday. She is shy and wears a red collar. If "
        "you see her please knock on the blue door at the corner. Thank you.",
        "Dear neighbour, our grey cat Pepper has been missing since Tuesday. If you see her please knock on the blue "
        "door. Thank you.",
    ),
    # exactly 3 bullets + all lowercase
    902: (
        "* water only when the top of the soil is dry\n* give them bright but indirect light\n* wipe the leaves now",
        "* Water only when the top of the soil is dry\n* Give them bright but indirect light\n* Wipe the leaves now",
    ),
    # fewer than 40 words + the keywords gull and tide
    903: (
        "The tide slides out under a pale sky while a lone gull circles the quiet boats.",
        "A lone gull circles the quiet boats under a pale sky.",
    ),
    # a <<title>> (kwargs null) + neither wet nor cloud
    904: (
        "<<Rain on the Roof>>\nSoft drums above my head,\nthe street shines like glass,\nand the garden drinks.",
        "<<Rain>>\nThe street is wet and shining under a grey cloud.",
    ),
    # 2 paragraphs split by *** + wrapped in double quotes
    905: (
        '"Sunlight is scattered by the gas molecules of the air, and blue light is scattered the most.\n***\n'
        'So when we look up, blue light reaches us from every part of the sky."',
        "Sunlight is scattered by the gas molecules of the air, and blue light is scattered the most.\n***\n"
        "So when we look up, blue light reaches us from every part of the sky.",
    ),
}
_RESPONSES = {"nemo_gym": _NEMO_GYM_RESPONSES, "repo": _REPO_RESPONSES}


def _rows(example_data, name):
    path = example_data / "nemo_gym_examples" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_nemo_gym_instruction_following_rows(example_data, example_set):
    rows = _rows(example_data, "instruction_following.jsonl")
    responses = _RESPONSES[example_set]
    assert {row["id"] for row in rows} == set(responses)
    for row in rows:
        followed, not_followed = responses[row["id"]]
        md = {"instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"], "prompt_text": row["prompt"]}
        good = verify(followed, None, md)
        assert good.reason is Reason.OK, (row["id"], good.details)
        bad = verify(not_followed, None, md)
        assert bad.reason is Reason.WRONG, (row["id"], bad.details)


def test_ifbench_rows_are_scored_by_the_ifbench_checkers(example_data):
    rows = _rows(example_data, "ifbench.jsonl")
    assert rows
    for row in rows:
        md = {"instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"]}
        result = verify("Any response at all.", None, md, config=IFConfig(mode="fraction"))
        assert result.reason in (Reason.OK, Reason.WRONG), (row["id"], result.details)
        assert [c["id"] for c in result.details["constraints"]] == list(row["instruction_id_list"])
