"""IFBench ``format:*`` checkers: brackets, quotes, options, lines, emoji, bullets, italics, case.

Each reproduces allenai/IFBench's checker, including its leniencies (documented per function), in
one linear pass; where IFBench would raise, the constraint is not followed.
"""

from __future__ import annotations

import re
import string
from collections import deque

from ..ifeval.params import Checker, Param
from ..ifeval.text import Doc
from .lexicon import is_emoji
from .text import drop_punctuation, rule_sentences, strip_punctuation, word_tokens

_PAIRS = {")": "(", "]": "[", "}": "{"}
_LETTER_OPTIONS_RE = re.compile(r"\W*[aA]\W*[bB]\W*[cC]\W*")
_QUOTE_TRIM = string.digits + string.punctuation.replace('"', "")


def parentheses(doc: Doc) -> bool:
    """format:parentheses: brackets ``()[]{}`` nested at least 5 deep and closed correctly (a mismatched
    closer resets the count)."""
    max_depth = 0
    stack: list[str] = []
    for ch in doc.text:
        if ch in "([{":
            stack.append(ch)
            max_depth = max(max_depth, len(stack))
        elif ch in ")]}":
            if stack and stack[-1] == _PAIRS[ch]:
                stack.pop()
                if max_depth >= 5:
                    return True
            else:
                stack, max_depth = [], 0
    return False


def quotes(doc: Doc) -> bool:
    """format:quotes: quotes nested 3 deep, alternating ``"`` and ``'`` (either first)."""
    stack: list[str] = []
    reached = 0
    for ch in doc.text:
        if stack and ch == stack[-1]:
            stack.pop()
            if reached - len(stack) >= 3:
                return True
        elif ch in "\"'":
            stack.append(ch)
            reached = max(reached, len(stack))
    return False


def _parse_options(options: str) -> tuple[bool, list[str]]:
    """(exact, options): letter choices ("a), b), c)") must be matched exactly; text options loosely.
    Options are split by "/", else by "or" (as a substring, like IFBench), else by ","."""
    exact = _LETTER_OPTIONS_RE.match(options) is not None
    separator = "/" if "/" in options else "or" if "or" in options else ","
    return exact, [option.strip() for option in options.split(separator)]


def options(doc: Doc, *, options: str) -> bool:
    """format:options: the response is one of the options (text options: case, spaces and edge
    punctuation ignored; letter options: exactly as listed, e.g. "a)")."""
    exact, choices = _parse_options(options)
    if exact:
        return doc.text in choices
    answer = strip_punctuation(doc.text).lower()
    return any(strip_punctuation(choice).lower() == answer for choice in choices)


def newline(doc: Doc) -> bool:
    """format:newline: one word per line: as many non-empty lines as words, once punctuation is removed
    (a line of spaces counts as a line, as in IFBench)."""
    text = drop_punctuation(doc.text).strip()
    lines = sum(1 for line in text.split("\n") if line)
    return lines == len(text.split())


def emoji_sentences(doc: Doc) -> bool:
    """format:emoji: every sentence ends with an emoji (in its last two characters once punctuation is
    removed), or the next sentence starts with one; an empty sentence fails."""
    sentences = [drop_punctuation(s).strip() for s in rule_sentences(doc.text)]
    for i, sentence in enumerate(sentences):
        if not sentence:
            return False
        if is_emoji(sentence[-1]) or is_emoji(sentence[-2] if len(sentence) > 1 else sentence[-1]):
            continue
        if i == len(sentences) - 1 or not sentences[i + 1] or not is_emoji(sentences[i + 1][0]):
            return False
    return True


def _lines_after_blank_removal(lines: list[str]) -> list[str]:
    """The lines IFBench keeps: it removes blank lines while iterating over the same list, so after each
    removal the following line is skipped, and ``list.remove`` drops the first equal blank line."""
    removed: set[int] = set()
    waiting: dict[str, deque[int]] = {}
    skip = False
    for index, line in enumerate(lines):
        blank = not line.strip()
        if blank:
            waiting.setdefault(line, deque()).append(index)
        if skip:
            skip = False
            continue
        if blank:
            removed.add(waiting[line].popleft())
            skip = True
    return [line for index, line in enumerate(lines) if index not in removed]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def line_indent(doc: Doc) -> bool:
    """format:line_indent: each line is indented by more spaces than the line before (blank lines removed
    the way IFBench removes them, so two blank lines in a row leave one behind)."""
    lines = _lines_after_blank_removal(doc.text.split("\n"))
    return all(_indent(b) > _indent(a) for a, b in zip(lines, lines[1:]))


def quote_unquote(doc: Doc) -> bool:
    """format:quote_unquote: no two quotes touch once whitespace is removed (curly quotes read as ``"``,
    the literal ``'"'`` ignored) and the text does not end with a quote (digits/punctuation trimmed)."""
    text = doc.text.replace("\u201c", '"').replace("\u201d", '"').replace("'\"'", "")
    text = "".join(text.split())
    if '""' in text:
        return False
    trimmed = text.strip(_QUOTE_TRIM)
    return bool(trimmed) and trimmed[-1] != '"'


def special_list(doc: Doc, *, sep: str) -> bool:
    """format:list: the marker occurs at least twice (anywhere; IFBench does not check line starts)."""
    return doc.text.count(sep) >= 2


def thesis(doc: Doc) -> bool:
    """format:thesis: a non-blank ``<i>...</i>`` (or ``<em>...</em>``) followed by more text.

    As IFBench: the first ``<i>`` (else ``<em>``) opens, the first ``</i>`` (else ``</em>``) after it
    closes, and the tag lengths of ``<i>``/``</i>`` are used for both tag kinds.
    """
    text = doc.text
    start = text.find("<i>")
    if start == -1:
        start = text.find("<em>")
        if start == -1:
            return False
    text = text[start:]
    end = text.find("</i>")
    if end == -1:
        end = text.find("</em>")
        if end == -1:
            return False
    return text[3:end].strip() != "" and text[end + 4 :].strip() != ""


def sub_bullets(doc: Doc) -> bool:
    """format:sub-bullets: every part after a ``*`` contains a ``-`` (IFBench's check; a response without
    any ``*`` passes)."""
    return all("-" in part for part in doc.text.split("*")[1:])


def no_bullets_bullets(doc: Doc) -> bool:
    """format:no_bullets_bullets: 2+ sentences, then 2+ lines starting with ``*`` and nothing after them.

    As IFBench: a blank line before the bullets stops further prose lines from counting (the next
    non-bullet line fails), and any non-bullet line after the first bullet (a blank one included) fails.
    """
    in_prose: bool | list[str] = True
    sentences = bullets = 0
    for line in doc.text.split("\n"):
        if line.strip().startswith("*"):
            in_prose = False
            if sentences < 2:
                return False
            bullets += 1
        elif in_prose:
            in_prose = rule_sentences(line.strip())
            sentences += len(in_prose)
        else:
            return False
    return bullets >= 2


def title_case(doc: Doc) -> bool:
    """format:title_case: no token is all lower case or lower case followed by capitals (one-letter and
    non-letter tokens pass; clitics such as ``n't`` are tokens and fail, as in IFBench)."""
    for token in word_tokens(doc.text):
        head, tail = token[0], token[1:]
        if head.islower() and (tail.isupper() or tail.islower()):
            return False
    return True


def output_template(doc: Doc) -> bool:
    """format:output_template: "My Answer:", "My Conclusion:" and "Future Outlook:" all occur."""
    return all(part in doc.text for part in ("My Answer:", "My Conclusion:", "Future Outlook:"))


def no_whitespace(doc: Doc) -> bool:
    """format:no_whitespace: no whitespace character at all."""
    return not any(ch.isspace() for ch in doc.text)


CHECKERS: dict[str, Checker] = {
    "format:parentheses": Checker(parentheses),
    "format:quotes": Checker(quotes),
    "format:options": Checker(options, (Param("options", "raw_text"),)),
    "format:newline": Checker(newline),
    "format:emoji": Checker(emoji_sentences),
    "format:line_indent": Checker(line_indent),
    "format:quote_unquote": Checker(quote_unquote),
    "format:list": Checker(special_list, (Param("sep", "raw_text"),)),
    "format:thesis": Checker(thesis),
    "format:sub-bullets": Checker(sub_bullets),
    "format:no_bullets_bullets": Checker(no_bullets_bullets),
    "format:title_case": Checker(title_case),
    "format:output_template": Checker(output_template),
    "format:no_whitespace": Checker(no_whitespace),
}
