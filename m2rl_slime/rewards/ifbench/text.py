"""Text views the IFBench checkers are defined on, offline and linear in the input length.

IFBench's checkers read a response through three lenses, each reproduced here without NLTK:

- `rule_sentences`: IFEval's rule-based splitter (a fixed sequence of abbreviation, decimal, initial and
  acronym rules, then a split after every remaining ``.``, ``?`` and ``!``). IFBench uses it, not punkt,
  for every sentence-based constraint.
- `word_tokens`: a Treebank-style word tokenizer (NLTK's ``word_tokenize``: sentences first, then
  punctuation, brackets and clitics such as ``n't``/``'s`` split off), used by the three checkers that
  compare exact tokens; sentences come from our punkt-like splitter (`..ifeval.text.sentence_spans`).
- ASCII punctuation handling (``string.punctuation``): `drop_punctuation`, `strip_punctuation`.

See docs/rewards_if.md for how these differ from NLTK.
"""

from __future__ import annotations

import re
import string

from ..ifeval.text import sentence_spans

PUNCTUATION = string.punctuation
PUNCTUATION_SPACE = PUNCTUATION + " "
_DROP = str.maketrans("", "", PUNCTUATION)

# Markers for "a period that does not end a sentence" and "a sentence ends here" (private-use code points).
_KEEP = "\ue000"
_END = "\ue001"
_OPENERS = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)"
)
_LETTER = "([A-Za-z])"

# The splitter's rules, applied in this order (each a plain regex without nested quantifiers: linear).
_SENTENCE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(Mr|St|Mrs|Ms|Dr)\."), r"\1" + _KEEP),
    (re.compile(r"\.(com|net|org|io|gov|edu|me)"), _KEEP + r"\1"),
    (re.compile(r"([0-9])\.([0-9])"), r"\1" + _KEEP + r"\2"),
)
_DOT_RUN_RE = re.compile(r"\.{2,}")
_LATE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s" + _LETTER + r"\. "), r" \1" + _KEEP + " "),
    (re.compile(r"([A-Z]\.[A-Z]\.(?:[A-Z]\.)?) " + _OPENERS), r"\1" + _END + r" \2"),
    (re.compile(_LETTER + r"\." + _LETTER + r"\." + _LETTER + r"\."), r"\1" + _KEEP + r"\2" + _KEEP + r"\3" + _KEEP),
    (re.compile(_LETTER + r"\." + _LETTER + r"\."), r"\1" + _KEEP + r"\2" + _KEEP),
    (re.compile(r" (Inc|Ltd|Jr|Sr|Co)\. " + _OPENERS), r" \1" + _END + r" \2"),
    (re.compile(r" (Inc|Ltd|Jr|Sr|Co)\."), r" \1" + _KEEP),
    (re.compile(" " + _LETTER + r"\."), r" \1" + _KEEP),
)
# A closing quote moves before the sentence-final mark, so the mark (and the split) follows the quote.
_QUOTE_SWAPS = ((".\u201d", "\u201d."), ('."', '".'), ('!"', '"!'), ('?"', '"?'))


def rule_sentences(text: str) -> list[str]:
    """IFEval's rule-based sentence split, as IFBench's checkers use it (stripped sentences).

    Line breaks are read as spaces; ``Mr.``/``Dr.``, decimals, ``.com``, ``Ph.D.``, single-letter
    initials and dotted acronyms keep their period; a run of dots ends a sentence after the run; every
    other ``.``, ``?`` and ``!`` ends one. A text without a final mark is one last sentence; an empty or
    blank text has none.
    """
    text = " " + text.replace("\n", " ") + "  "
    for pattern, replacement in _SENTENCE_RULES:
        text = pattern.sub(replacement, text)
    text = _DOT_RUN_RE.sub(lambda m: _KEEP * len(m.group()) + _END, text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph" + _KEEP + "D" + _KEEP)
    for pattern, replacement in _LATE_RULES:
        text = pattern.sub(replacement, text)
    for before, after in _QUOTE_SWAPS:
        text = text.replace(before, after)
    for mark in ".?!":
        text = text.replace(mark, mark + _END)
    sentences = [part.strip() for part in text.replace(_KEEP, ".").split(_END)]
    if sentences and not sentences[-1]:
        sentences.pop()
    return sentences


def drop_punctuation(text: str) -> str:
    """`text` with every ASCII punctuation character removed ("don't." -> "dont")."""
    return text.translate(_DROP)


def strip_punctuation(text: str) -> str:
    """`text` without leading/trailing ASCII punctuation and spaces (newlines and tabs are kept)."""
    return text.strip(PUNCTUATION_SPACE)


# --- Treebank-style word tokens -------------------------------------------------------------------

_CLITIC_RE = re.compile(r"(?i)(?<=[^' ])('s|'m|'d|'ll|'re|'ve|n't)(?= |$)")
_TRAILING_APOSTROPHE_RE = re.compile(r"(?<=[^' ])'(?= |$)")
_LEADING_APOSTROPHE_RE = re.compile(r"(?i)(?<![^ ])'(?!re|ve|ll|m|t|s|d|n)(?=\w)")
_SPLIT_ALWAYS_RE = re.compile(r"(\.{2,}|--|[;@#$%&?!\[\](){}<>\"`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e*])")
_COMMA_COLON_RE = re.compile(r"([:,])(?=\D|$)")
_FINAL_PERIOD_RE = re.compile(r"(?<=[^.])\.(?=[\])}>\"'\s]*$)")
_SPLIT_WORDS_RE = re.compile(r"(?i)\b(can)(not)\b|\b(gon|wan)(na)\b|\b(got)(ta)\b|\b(lem|gim)(me)\b")


def _sentence_tokens(sentence: str) -> list[str]:
    text = _SPLIT_ALWAYS_RE.sub(r" \1 ", sentence)
    text = _COMMA_COLON_RE.sub(r" \1 ", text)
    text = _FINAL_PERIOD_RE.sub(" . ", text, count=1)
    text = " ".join(text.split())
    text = _LEADING_APOSTROPHE_RE.sub("' ", text)
    text = _CLITIC_RE.sub(r" \1", text)
    text = _TRAILING_APOSTROPHE_RE.sub(" '", text)
    text = _SPLIT_WORDS_RE.sub(lambda m: " ".join(g for g in m.groups() if g), text)
    return text.split()


def word_tokens(text: str) -> list[str]:
    """Treebank-style tokens of `text`: punctuation, brackets, quotes and ``*`` are tokens of their own;
    clitics are split (``don't`` -> ``do`` + ``n't``, ``it's`` -> ``it`` + ``'s``); a sentence's final
    period is a token, inner periods stay (``e.g.``, ``3.14``); commas and colons split unless a digit
    follows (``1,000``, ``12:30`` stay whole); ``cannot`` -> ``can`` + ``not``."""
    tokens: list[str] = []
    for start, end in sentence_spans(text):
        tokens.extend(_sentence_tokens(text[start:end]))
    return tokens


def edge_tokens(text: str, count: int) -> tuple[list[str], list[str]]:
    """The first and the last `count` tokens of `word_tokens(text)` (fewer if the text has fewer),
    tokenizing only the sentences needed at each end."""
    spans = sentence_spans(text)
    head: list[str] = []
    used = 0
    while used < len(spans) and len(head) < count:
        head.extend(_sentence_tokens(text[spans[used][0] : spans[used][1]]))
        used += 1
    if used == len(spans):
        return head[:count], head[-count:]
    tail: list[str] = []
    last = len(spans)
    while last > used and len(tail) < count:
        last -= 1
        tail[:0] = _sentence_tokens(text[spans[last][0] : spans[last][1]])
    if len(tail) < count:
        tail = (head + tail)[-count:]
    return head[:count], tail[-count:]
