"""Pins the offline sentence splitter, word tokenizer and word counter (no NLTK).

Where a rule differs from NLTK punkt/Treebank, the test says so; docs/rewards_if.md lists the rules.
"""

from __future__ import annotations

import pytest

from m2rl_slime.rewards.ifeval.text import (
    Doc,
    count_words,
    sentence_spans,
    split_sentences,
    strip_edge_punctuation,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "count"),
    [  # IFEval's count_sentences cases (punkt)
        ("xx,x. xx,x! xx/x. x{x}x? x.", 5),
        ("xx,x! xxxx. x(x)x?", 3),
        ("xxxx. xx,x! xx|x. x&x x?", 4),
        ("xx-x]xx,x! x{x}xx,x.", 2),
    ],
)
def test_ifeval_sentence_counts(text, count):
    assert len(split_sentences(text)) == count


def test_ifeval_sentence_split_examples():
    text = (
        "\n  Google is a technology company. It was founded in 1998 by Larry Page\nand Sergey Brin. "
        "Google's mission is to organize the world's information\nand make it universally accessible and useful.\n  "
    )
    assert split_sentences(text) == [
        "Google is a technology company.",
        "It was founded in 1998 by Larry Page and Sergey Brin.",
        "Google's mission is to organize the world's information and make it universally accessible and useful.",
    ]
    text = "The U.S.A has many Ph.D. students. They will often haven a .com website\nsharing their research."
    assert split_sentences(text) == [
        "The U.S.A has many Ph.D. students.",
        "They will often haven a .com website sharing their research.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
        ("Use tools, e.g. a hammer. Or i.e. nails.", ["Use tools, e.g. a hammer.", "Or i.e. nails."]),
        ("We met at 5 p.m. on Monday.", ["We met at 5 p.m. on Monday."]),
        ("We met at 5 p.m. The rain stopped.", ["We met at 5 p.m.", "The rain stopped."]),
        ("Pi is 3.14 roughly. Next.", ["Pi is 3.14 roughly.", "Next."]),
        ("It costs $2.50 today.", ["It costs $2.50 today."]),
        ("Apples, pears, etc. are fruit.", ["Apples, pears, etc. are fruit."]),
        ("See No. 5 and Fig. 3 here.", ["See No. 5 and Fig. 3 here."]),
        ("J. K. Rowling wrote it.", ["J. K. Rowling wrote it."]),
        ("It depends on B. The next step is easy.", ["It depends on B.", "The next step is easy."]),
        ("J. A. Smith and Plan A. It works.", ["J. A. Smith and Plan A.", "It works."]),
        ("So do I. You agree.", ["So do I.", "You agree."]),
        ("Wait... what happened? Nothing.", ["Wait... what happened?", "Nothing."]),
        ("He paused... Then he left.", ["He paused...", "Then he left."]),
        ("He paused\u2026 Then left.", ["He paused\u2026", "Then left."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("(This is quoted.) Next one.", ["(This is quoted.)", "Next one."]),
        ("Really?! Yes!!! Fine.", ["Really?!", "Yes!!!", "Fine."]),
        ("lowercase start. still splits.", ["lowercase start.", "still splits."]),
        ("file.txt and example.com stay whole.", ["file.txt and example.com stay whole."]),
        ("1. First item\n2. Second item.", ["1. First item 2. Second item."]),
        ("A heading\n\nA paragraph without a stop", ["A heading A paragraph without a stop"]),
        ("It ended in 1998. Then more.", ["It ended in 1998.", "Then more."]),
        ("", []),
        ("   \n ", []),
    ],
)
def test_sentence_rules(text, expected):
    assert split_sentences(text) == expected


def test_spans_point_into_the_original_text():
    text = "  One.  Two!\nThree?  "
    assert [text[s:e] for s, e in sentence_spans(text)] == ["One.", "Two!", "Three?"]
    assert Doc(text).sentences == ["One.", "Two!", "Three?"]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("A well-known fact.", ["A", "well-known", "fact", "."]),
        ("Don't stop; it's 3.14 or 1,000.", ["Don't", "stop", ";", "it's", "3.14", "or", "1,000", "."]),
        ("The U.S.A. and e.g. this", ["The", "U.S.A.", "and", "e.g.", "this"]),
        ('Wait... "no" -- ok', ["Wait", "...", '"', "no", '"', "--", "ok"]),
        ("snake_case x2", ["snake_case", "x2"]),
    ],
)
def test_tokenizer(text, tokens):
    """Unlike NLTK, clitics stay attached ("Don't", not "Do" + "n't") and quotes are not rewritten."""
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    ("word", "stripped"),
    [('"Hello,"', "Hello"), ("**Indeed**,", "Indeed"), ("don't", "don't"), ("(a)", "a"), ("!!!", ""), ("", "")],
)
def test_strip_edge_punctuation(word, stripped):
    assert strip_edge_punctuation(word) == stripped


def test_doc_words_drop_punctuation():
    assert Doc("Hi, there -- friend...").words == ["Hi", "there", "friend"]


@pytest.mark.parametrize(
    ("text", "count"),
    [  # IFEval's count_words cases: RegexpTokenizer(r"\w+")
        ("word1, word2, word3, word4.", 4),
        (("\n Bard can you tell me which is the best optimization method for the\n transition from an "
         "hydro-thermal system to an hydro-renewables system"), 24),
        ("\n Hyphenated-word has two word counts.\n ", 6),
        ("", 0),
    ],
)  # fmt: skip
def test_count_words(text, count):
    assert count_words(text) == count
