"""Final-answer extraction shared by the math and science verifiers: `\\boxed{}` and `Answer: ...` lines.

Pure string code (no regex with nested quantifiers over unbounded input), linear in the input length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# A line that states the final answer: "Answer: 42", "**Final Answer:** 42", "Final answer: $x=2$".
_ANSWER_LINE = re.compile(
    r"^[ \t>*_#]*(?:the[ \t]+)?(?:final[ \t]+)?answer(?:[ \t*_]|is)*[:：][ \t]*(.*)$", re.IGNORECASE | re.MULTILINE
)
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


@dataclass(frozen=True, slots=True)
class Candidate:
    """An extracted final answer, where it came from and where it starts in the text."""

    text: str
    source: str  # "boxed" | "answer_line"
    position: int


def _matching_brace(text: str, open_at: int) -> int:
    """Index of the `}` closing the `{` at `open_at`, or -1. Escaped braces (`\\{`) are skipped."""
    depth = 0
    i = open_at
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def last_boxed(text: str) -> Candidate | None:
    """The content of the last `\\boxed{...}` / `\\fbox{...}` (brace-matched), or of `\\boxed X`."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    while start >= 0:
        cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
        j = start + len(cmd)
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            end = _matching_brace(text, j)
            if end > 0:
                return Candidate(text[j + 1 : end].strip(), "boxed", start)
        elif j > start + len(cmd) and j < len(text):  # "\boxed 5": one token after a space
            m = re.match(r"[^\s$]+", text[j:])
            if m:
                return Candidate(m.group(0), "boxed", start)
        # Unclosed or empty box: try an earlier one.
        start = max(text.rfind(cmd, 0, start) for cmd in _BOX_COMMANDS)
    return None


def last_answer_line(text: str) -> Candidate | None:
    """The content of the last line of the form `Answer: ...` (bold/`Final` variants accepted)."""
    last = None
    for match in _ANSWER_LINE.finditer(text):
        last = match
    if last is None:
        return None
    content = last.group(1).strip().strip("*_").strip()
    if not content:
        return None
    return Candidate(content, "answer_line", last.start())


def final_answer(text: str) -> Candidate | None:
    """The final answer: whichever of the last box and the last `Answer:` line comes later.

    An `Answer:` line that itself holds a box yields the box's content.
    """
    boxed = last_boxed(text)
    line = last_answer_line(text)
    if line is not None and (boxed is None or line.position > boxed.position):
        inner = last_boxed(line.text)
        return Candidate(inner.text, "answer_line", line.position) if inner else line
    return boxed


def strip_math_delimiters(text: str) -> str:
    """Remove one pair of outer `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` and a trailing period."""
    text = text.strip()
    for _ in range(2):
        for left, right in _DELIMS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left) : len(text) - len(right)].strip()
                break
        if text.endswith(".") and not text.endswith(".."):
            text = text[:-1].rstrip()
    return text
