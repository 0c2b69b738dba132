"""Speed and hostile input: linear-time checks, no crash on pathological responses."""

from __future__ import annotations

import statistics
import time

import pytest

from m2rl_slime.rewards.ifeval import REGISTRY, Doc
from m2rl_slime.rewards.instruction import verify
from m2rl_slime.rewards.result import Reason

# One valid kwargs set per id that takes kwargs (language ids are excluded: detection is timed apart).
KWARGS = {
    "keywords:existence": {"keywords": ["a.b", "[x"]},
    "keywords:frequency": {"keyword": "aa", "frequency": 2, "relation": "at least"},
    "keywords:forbidden_words": {"forbidden_words": ["x+", "(y"]},
    "keywords:letter_frequency": {"letter": "a", "let_frequency": 3, "let_relation": "less than"},
    "length_constraints:number_sentences": {"num_sentences": 3, "relation": "at least"},
    "length_constraints:number_paragraphs": {"num_paragraphs": 2},
    "length_constraints:number_words": {"num_words": 100, "relation": "less than"},
    "length_constraints:nth_paragraph_first_word": {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "a"},
    "detectable_content:number_placeholders": {"num_placeholders": 2},
    "detectable_content:postscript": {"postscript_marker": "P.S."},
    "detectable_format:number_bullet_lists": {"num_bullets": 2},
    "detectable_format:number_highlighted_sections": {"num_highlights": 2},
    "detectable_format:multiple_sections": {"section_spliter": "Section", "num_sections": 2},
    "combination:repeat_prompt": {"prompt_to_repeat": "aaa"},
    "startend:end_checker": {"end_phrase": "end"},
    "change_case:capital_word_frequency": {"capital_frequency": 2, "capital_relation": "at least"},
    "copy:repeat_phrase": {"phrase": "a b c", "small_n": 2},
    "copy:copy": {"prompt_to_repeat": "aaa"},
    "new:copy_span_idx": {"prompt_to_repeat": "abcdef", "n_start": 1, "n_end": 3},
    "keywords:word_once": {"keyword": "a"},
    "keywords:word_count_different_numbers": {"keyword": "a", "frequency": 2, "relation": "at least"},
    "keywords:exclude_word_harder": {"keyword": "a"},
    "first_word:first_word_sent": {"first_word": "a"},
    "first_word:first_word_answer": {"first_word": "a"},
    "last_word:last_word_sent": {"last_word": "a"},
    "last_word:last_word_answer": {"last_word": "a"},
    "copy:copying_simple": {"prompt_to_repeat": "aaa"},
    "copy:copying_multiple": {"prompt_to_repeat": "aaa", "N": 2},
    "count:lowercase_counting": {"N": 3},
    "letters:letter_counting": {"N": 3, "relation": "at least"},
    "letters:letter_counting2": {"letter": "b", "let_frequency": 2, "let_relation": "at least"},
    "count:counting_composition": {"n_sent": 2, "n_words": 3},
    "count:count_increment_word": {"keyword1": "a", "keyword2": "b"},
    "keywords:keyword_specific_position": {"keyword": "a", "n": 2, "m": 2},
}
NON_LANGUAGE_IDS = sorted(i for i, c in REGISTRY.items() if not c.uses_language)

HOSTILE = {
    "newlines": "\n" * 32_000,
    "space_newline": " \n" * 16_000,
    "open_brackets": "[" * 32_000,
    "open_titles": "<<" * 16_000,
    "spaces": " " * 32_000,
    "dots": "." * 32_000,
    "dots_then_x": "." * 32_000 + "x",
    "dot_quote": ".'" * 16_000 + "x",
    "quotes": "'" * 32_000,
    "stars": "*" * 32_000,
    "star_a": "*a" * 16_000,
    "one_word": "a" * 32_000,
    "phrase_heads": "a " * 16_000,
    "dashes": "-" * 32_000,
    "hyphen_words": "a-" * 16_000,
    "inner_symbols": "a" + "!" * 32_000 + "b",
    "symbol_words": ("a" + "!" * 3_000 + "b ") * 10,
    "sections": "Section " * 4_000,
    "deep_json": "[" * 20_000 + "]" * 20_000,
    "mixed": "Dr. X... e.g. [a] <<t>> *h* P.S. 3.14 - " * 800,
}


def test_every_non_language_id_has_probe_kwargs():
    assert set(NON_LANGUAGE_IDS) - set(KWARGS) == {i for i in NON_LANGUAGE_IDS if not REGISTRY[i].params}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_pathological_inputs_run_in_linear_time(name):
    """Each hostile 32k input goes through all 51 non-language checkers in about 0.1-0.2 s; the 2 s bound
    leaves room for a busy machine and still catches anything quadratic (IFEval's own regexes take 2-16 s
    on several of these, each on its own)."""
    ids = NON_LANGUAGE_IDS
    md = {"instruction_id_list": ids, "kwargs": [KWARGS.get(i, {}) for i in ids]}
    start = time.process_time()  # CPU time of this process: the checkers run in-process
    result = verify(HOSTILE[name], None, md)
    elapsed = time.process_time() - start
    assert result.reason in (Reason.OK, Reason.WRONG, Reason.EMPTY_RESPONSE)
    assert elapsed < 2.0, f"{name}: {elapsed:.2f}s"


def test_deep_json_is_not_json():
    assert REGISTRY["detectable_format:json_format"].check(Doc(HOSTILE["deep_json"])) is False


def test_32k_response_with_five_constraints_takes_a_few_ms_of_cpu():
    sentence = "Reinforcement learning with verifiable rewards trains a policy, e.g. on math, at 5 p.m. daily. "
    response = (sentence * 400)[:32_000]
    md = {
        "instruction_id_list": [
            "length_constraints:number_sentences",
            "length_constraints:number_words",
            "keywords:frequency",
            "detectable_format:number_bullet_lists",
            "punctuation:no_comma",
        ],
        "kwargs": [
            {"num_sentences": 10, "relation": "at least"},
            {"num_words": 300, "relation": "at least"},
            {"keyword": "policy", "frequency": 3, "relation": "at least"},
            {"num_bullets": 0},
            {},
        ],
    }
    verify(response, None, md)
    timings = []
    for _ in range(15):
        start = time.process_time()
        verify(response, None, md)
        timings.append(time.process_time() - start)
    # About 2.5 ms of CPU on a 2-core dev box (docs/rewards_if.md). CPU time, best of 15, so a busy machine
    # does not decide the verdict; the bound still fails for anything super-linear or a per-call setup cost.
    assert min(timings) < 0.010, (
        f"best {min(timings) * 1000:.1f} ms, median {statistics.median(timings) * 1000:.1f} ms"
    )
