"""Offline text segmentation for the IF checkers: sentences, words, paragraphs.

IFEval and IFEvalG lean on NLTK (punkt sentence splitting and Treebank word tokenizing), whose data
files cannot be downloaded here and whose absence makes every sentence check raise. This module
replaces them with small deterministic rules, all linear in the input length (no regex that can
backtrack quadratically; see docs/rewards_if.md for the rules and how counts differ from NLTK).

`Doc` wraps one response and computes each view (sentences, word tokens, ...) at most once, so
several constraints on the same response share the work.
"""

from __future__ import annotations

import re
from functools import cached_property

# A whitespace-delimited chunk ending in terminal punctuation (plus any closing quotes/brackets),
# followed by whitespace or the end of the text. Matches start only at a chunk start and the greedy
# \S* backtracks within its own chunk, so the scan stays linear (even on 30k dots).
_CHUNK_END_RE = re.compile(r"(?<!\S)\S*[.!?\u2026][\"'\u201d\u2019\u00bb)\]]*(?=\s|\Z)")
_CLOSERS = "\"'\u201d\u2019\u00bb)]"
_TERMINALS = ".!?\u2026"
_OPENERS = "\"'\u201c\u2018\u00ab([{*_"
_DOTTED_ACRONYM_RE = re.compile(r"[a-z](?:\.[a-z])+")

# Abbreviations after which a period never ends a sentence (titles and inline Latin).
_NEVER_END = frozenset({
    "mr", "mrs", "ms", "mx", "dr", "prof", "rev", "gen", "col", "capt", "cpt", "lt", "sgt", "hon", "mt", "st",
    "fr", "gov", "sen", "rep", "pres", "supt", "messrs", "mme", "mlle", "e.g", "i.e", "cf", "viz", "vs",
})  # fmt: skip
# Abbreviations that end a sentence only when the next word is capitalized ("at 5 p.m. The ...").
_CONTEXTUAL = frozenset({
    "etc", "inc", "ltd", "co", "corp", "llc", "jr", "sr", "esp", "dept", "univ", "est", "approx", "misc", "al",
    "a.m", "p.m", "u.s", "u.k", "ph.d", "b.c", "a.d",
})  # fmt: skip
# Abbreviations followed by a number ("No. 5", "Fig. 3", "pp. 10-12").
_NUMBERED = frozenset({
    "no", "nos", "fig", "figs", "vol", "vols", "p", "pp", "ch", "chap", "sec", "art", "eq", "eqs", "ref",
    "refs", "op",
})  # fmt: skip
# Words that start sentences but not names: after a single capital letter they mean the letter ended
# a sentence ("... of B. The next ..."), not an initial ("J. K. Rowling").
_SENTENCE_STARTERS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "he", "she", "they", "we", "you", "i",
    "my", "our", "their", "there", "here", "then", "thus", "so", "but", "and", "or", "yet", "however",
    "although", "though", "if", "in", "on", "at", "for", "as", "after", "before", "when", "while", "since",
    "because", "what", "why", "how", "which", "who", "each", "every", "all", "some", "many", "most", "one",
    "both", "moreover", "meanwhile", "instead", "indeed", "finally",
})  # fmt: skip

# Word tokens: dotted acronyms (U.S.A., e.g.), words with inner hyphens/apostrophes and numbers with
# inner separators (3.14, 1,000, 12:30). Tokens add each other symbol alone (ellipses, dash runs whole).
_WORD_PATTERN = r"[A-Za-z](?:\.[A-Za-z])+\.?|\w+(?:(?:['\u2019\-]|(?<=\d)[.,:/](?=\d))\w+)*"
_WORD_TOKEN_RE = re.compile(_WORD_PATTERN)
_TOKEN_RE = re.compile(_WORD_PATTERN + r"|\.{2,}|-{2,}|[^\w\s]")
_WORD_RE = re.compile(r"\w+")
_WORD_CHAR_RE = re.compile(r"\w")


def _next_word_start(text: str, pos: int) -> str:
    """The first character of the next word after `pos` (opening quotes skipped), or ""."""
    n = len(text)
    while pos < n and (text[pos].isspace() or text[pos] in _OPENERS):
        pos += 1
    return text[pos] if pos < n else ""


def _next_chunk(text: str, pos: int) -> str:
    """The next whitespace-delimited chunk after `pos` (at most 32 characters of it)."""
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    end = pos
    while end < n and not text[end].isspace() and end - pos < 32:
        end += 1
    return text[pos:end]


def _initial_ends_sentence(text: str, end: int) -> bool:
    """After a single capital letter and a period: a sentence ends only before a common sentence opener
    that is not itself another initial ("of B. The next" ends; "J. K. Rowling", "J. A. Smith" do not)."""
    chunk = _next_chunk(text, end)
    if len(chunk) == 2 and chunk[0].isalpha() and chunk[1] == ".":
        return False
    return strip_edge_punctuation(chunk).lower() in _SENTENCE_STARTERS


def _at_line_start(text: str, start: int) -> bool:
    """True when only spaces/tabs separate `start` from the previous newline (or the text start)."""
    i = start - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] == "\n"


def _period_ends_sentence(text: str, token: str, chunk_start: int, end: int) -> bool:
    """Decide whether a period after `token` (lower-cased, openers removed) ends a sentence."""
    if token.isdigit():
        return not _at_line_start(text, chunk_start)  # "1. First item"
    if len(token) == 1:
        if not token.isalpha() or token == "i":
            return True
        return _initial_ends_sentence(text, end)
    if token in _NEVER_END:
        return False
    if token in _NUMBERED:
        return not _next_word_start(text, end).isdigit()
    if token in _CONTEXTUAL or ("." in token and _DOTTED_ACRONYM_RE.fullmatch(token)):
        return _next_word_start(text, end).isupper()
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text`, each without surrounding whitespace.

    A sentence ends at `.`, `!`, `?` or an ellipsis (with any closing quotes or brackets) followed by
    whitespace or the end of the text, unless the period belongs to an abbreviation (Dr., e.g., p.m.
    before a lowercase word, initials, "No. 5", a list number at the start of a line); an ellipsis
    ends one only before a capitalized word. Line breaks alone do not end a sentence (as in punkt).
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CHUNK_END_RE.finditer(text):
        core = match.group().rstrip(_CLOSERS)
        body = core.rstrip(_TERMINALS)
        punct = core[len(body) :]
        end = match.end()
        if "!" not in punct and "?" not in punct:  # "!" and "?" always end a sentence
            if punct == ".":
                token = body.lstrip(_OPENERS).lower()
                if token and not _period_ends_sentence(text, token, match.start(), end):
                    continue
            elif not _next_word_start(text, end).isupper():
                continue  # an ellipsis inside a sentence
        _add_span(text, start, end, spans)
        start = end
    _add_span(text, start, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    if end > start:  # `end` already sits right after non-space text (or at the text end)
        while text[end - 1].isspace():
            end -= 1
        spans.append((start, end))


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, with each run of whitespace (line breaks included) collapsed to a space."""
    return [" ".join(text[s:e].split()) for s, e in sentence_spans(text)]


def tokenize(text: str) -> list[str]:
    """Word and punctuation tokens, in the spirit of NLTK's Treebank tokenizer (see module docstring)."""
    return _TOKEN_RE.findall(text)


def is_word(token: str) -> bool:
    """True for tokens that contain a letter or digit (not a lone punctuation mark)."""
    return any(ch.isalnum() for ch in token)


def count_words(text: str) -> int:
    """IFEval's word count: the number of maximal runs of word characters (``\\w+``)."""
    return len(_WORD_RE.findall(text))


def strip_edge_punctuation(word: str) -> str:
    """`word` without leading/trailing non-word characters ('"Hello,"' -> 'Hello').

    Linear time: a regex such as ``[^\\w]+$`` rescans inner symbol runs from every position.
    """
    first = _WORD_CHAR_RE.search(word)
    if first is None:
        return ""
    end = len(word)
    while not _WORD_CHAR_RE.match(word, end - 1):
        end -= 1
    return word[first.start() : end]


class Doc:
    """One response, with lazily computed (and cached) views shared by all constraints on it."""

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    @cached_property
    def sentence_spans(self) -> list[tuple[int, int]]:
        return sentence_spans(self.text)

    @cached_property
    def sentences(self) -> list[str]:
        """The sentences as they appear in the text (inner line breaks kept; see `split_sentences`)."""
        return [self.text[s:e] for s, e in self.sentence_spans]

    @cached_property
    def tokens(self) -> list[str]:
        return tokenize(self.text)

    @cached_property
    def words(self) -> list[str]:
        """Word tokens only (the tokens of `tokens` that are not punctuation)."""
        return _WORD_TOKEN_RE.findall(self.text)

    @cached_property
    def split(self) -> list[str]:
        """Whitespace-separated chunks (``str.split()``), as several IFEvalG checks use."""
        return self.text.split()

    @cached_property
    def language(self) -> str | None:
        """The detected language code (deterministic), or None when the text has no usable features."""
        from .language import detect_language

        return detect_language(self.text)
