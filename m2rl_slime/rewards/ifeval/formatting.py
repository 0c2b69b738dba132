"""Format checkers: bullets, highlights, sections, JSON, titles and word wrapping.

IFEval's regexes for bullets, placeholders and titles backtrack quadratically on hostile input
(a 32k-character run of newlines or ``[`` takes seconds); the equivalents here scan each line once.
"""

from __future__ import annotations

import itertools
import json
import re
from functools import lru_cache

from .params import Checker, Param
from .text import Doc, sentence_spans

_HIGHLIGHT_RE = re.compile(r"\*[^\n*]*\*")
_DOUBLE_HIGHLIGHT_RE = re.compile(r"\*\*[^\n*]*\*\*")
# A line whose first non-blank character is * or - (no newline inside the indent, so no backtracking).
_BULLET_START_RE = re.compile(r"^[^\S\n]*[*-]", re.MULTILINE)
_CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def _is_bullet(line: str) -> bool:
    """A markdown bullet line: ``* item`` or ``- item`` (indent allowed); ``**bold**`` and ``---`` are not."""
    stripped = line.lstrip()
    if stripped.startswith("*"):
        return len(stripped) > 1 and stripped[1] != "*"
    if stripped.startswith("-"):
        is_thematic_break = not stripped.strip("- \t\r") and stripped.count("-") >= 3
        return not is_thematic_break
    return False


def count_bullets(text: str) -> int:
    """Markdown bullet lines in `text`; only lines whose first non-blank character is * or - are examined."""
    count = 0
    for match in _BULLET_START_RE.finditer(text):
        line_end = text.find("\n", match.start())
        if _is_bullet(text[match.start() : line_end if line_end >= 0 else len(text)]):
            count += 1
    return count


def number_bullet_lists(doc: Doc, *, num_bullets: int) -> bool:
    """detectable_format:number_bullet_lists: exactly `num_bullets` markdown bullet lines."""
    return count_bullets(doc.text) == num_bullets


def constrained_response(doc: Doc) -> bool:
    """detectable_format:constrained_response: contains "My answer is yes./no./maybe."."""
    text = doc.text.strip()
    return any(option in text for option in _CONSTRAINED_OPTIONS)


def number_highlighted_sections(doc: Doc, *, num_highlights: int) -> bool:
    """detectable_format:number_highlighted_sections: at least `num_highlights` non-empty ``*x*``/``**x**``."""
    count = sum(1 for h in _HIGHLIGHT_RE.findall(doc.text) if h.strip("*").strip())
    count += sum(1 for h in _DOUBLE_HIGHLIGHT_RE.findall(doc.text) if h[2:-2].strip())
    return count >= num_highlights


@lru_cache(maxsize=256)
def _section_re(splitter: str) -> re.Pattern[str]:
    return re.compile(re.escape(splitter) + r"\s?\d+")


def multiple_sections(doc: Doc, *, section_spliter: str, num_sections: int) -> bool:
    """detectable_format:multiple_sections: at least `num_sections` markers "<spliter> <number>"."""
    return sum(1 for _ in _section_re(section_spliter).finditer(doc.text)) >= num_sections


def json_format(doc: Doc) -> bool:
    """detectable_format:json_format: the whole response (optionally in a ``` fence) parses as JSON."""
    value = doc.text.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
            break
    value = value.removesuffix("```").strip()
    try:
        json.loads(value)
    except (ValueError, RecursionError):
        return False
    return True


def title(doc: Doc) -> bool:
    """detectable_format:title: some line holds ``<<title>>`` with non-blank text inside.

    Like IFEval's greedy ``<<[^\\n]+>>``, a line's candidate spans from its first ``<<`` to its last ``>>``.
    """
    for line in doc.text.split("\n"):
        start = line.find("<<")
        end = line.rfind(">>")
        if start < 0 or end < start + 3:
            continue
        if line[start : end + 2].lstrip("<").rstrip(">").strip():
            return True
    return False


def sentence_hyphens(doc: Doc) -> bool:
    """detectable_format:sentence_hyphens: sentences joined by a single hyphen with no spaces around it.

    Sentences are found in the text with hyphens read as spaces; each gap between two consecutive
    sentences must then be exactly "-" in the response. Hyphens inside a sentence ("well-known") are
    allowed, unlike IFEvalG, which split the response at every hyphen.
    """
    text = doc.text.strip()
    spans = sentence_spans(text.replace("-", " "))
    if not spans:
        return False
    if spans[0][0] != 0 or spans[-1][1] != len(text):
        return False  # leading or trailing hyphens
    return all(text[end:start] == "-" for (_, end), (start, _) in itertools.pairwise(spans))


def square_brackets(doc: Doc) -> bool:
    """detectable_format:square_brackets: every whitespace-separated word is ``[wrapped]``."""
    return all(chunk.startswith("[") and chunk.endswith("]") for chunk in doc.split)


def bigram_wrapping(doc: Doc) -> bool:
    """detectable_format:bigram_wrapping: words go in pairs ``<<w1 w2>>`` (a lone last word is free)."""
    chunks = doc.split
    return all(chunks[i].startswith("<<") and chunks[i + 1].endswith(">>") for i in range(0, len(chunks) - 1, 2))


CHECKERS: dict[str, Checker] = {
    "detectable_format:number_bullet_lists": Checker(number_bullet_lists, (Param("num_bullets", "count"),)),
    "detectable_format:constrained_response": Checker(constrained_response),
    "detectable_format:number_highlighted_sections": Checker(
        number_highlighted_sections, (Param("num_highlights", "count"),)
    ),
    "detectable_format:multiple_sections": Checker(
        multiple_sections, (Param("section_spliter", "text"), Param("num_sections", "count"))
    ),
    "detectable_format:json_format": Checker(json_format),
    "detectable_format:title": Checker(title),
    "detectable_format:sentence_hyphens": Checker(sentence_hyphens),
    "detectable_format:square_brackets": Checker(square_brackets),
    "detectable_format:bigram_wrapping": Checker(bigram_wrapping),
}
