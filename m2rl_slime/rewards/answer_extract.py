"""Final-answer extraction shared by the math and science verifiers and by eval-set preparation.

Not a slime hook. Two kinds of answer position are read: boxes (`\\boxed{...}`, `\\fbox{...}`, `\\boxed X`)
and answer statements (`Answer: ...`, `**Final Answer:** ...`, `- Answer: ...`, wherever they stand in a
line). Whichever comes last decides. Rules and examples: docs/rewards_math.md.

Everything here is linear in the length of its input, whatever the input (repetition loops are the most
common long outputs in RL):
- box commands are found with one regex pass; each box is brace-matched only up to the next box command,
  so every character is scanned at most once (a box holding a later box is not a box: the later one is);
- answer statements are found with one regex pass; their content is cut at the end of the line;
- every regex here either has no nested or overlapping quantifiers, or runs on a slice of bounded length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE_EVENT = re.compile(r"\\[\\{}]|[{}]")
_BOX_TOKEN = re.compile(r"[^\s$]+")
# An answer statement: "Answer:", "answer is:", "**Final Answer**:", "ANSWER：" (not "answers:", "reanswer:").
_STATEMENT = re.compile(r"(?<![A-Za-z])answer(?:[ \t*_]|is\b)*[:：]", re.IGNORECASE)
_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))

# Text allowed between two boxes of one final answer ("\\boxed{1} and \\boxed{2}", "$\\boxed{1}$, $\\boxed{2}$",
# "\\boxed{(2,2)} \\quad\\text{and}\\quad \\boxed{(6,2)}", "x=\\boxed{1},\\ y=\\boxed{2}"), at most this long.
MAX_BOX_GAP = 80
_SEP = r"(?:\s|\$|\\[()\[\]]|\\q?quad(?![A-Za-z])|\\[,;:! ]|~|\\\\|&|[,;]|\\(?:text|mathrm|textrm|mbox)\s*\{|\}|\b(?:and|or)\b)"
_LABEL = r"[A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?'*"
_GAP = re.compile(rf"{_SEP}*(?:(?P<label>{_LABEL})\s*=\s*{_SEP}*)?")
_LEAD_LABEL = re.compile(rf"(?:^|[\s$(,;{{]|\\[(\[])(?P<label>{_LABEL})\s*=\s*(?:\$|\\[(\[])?\s*\Z")
_LEAD_WINDOW = 24

# A remark after the answer of a statement: "42 (since 6 times 7 is 42)", "x = 2, which ...", "5. Because ...".
_REMARK_WORDS = frozenset({"because", "since", "as", "so", "which", "where", "given", "thus", "hence", "therefore"})
_PROSE_WORD = re.compile(r"[A-Za-z]{2,}")
MAX_STATEMENT_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Box:
    """One closed box: `content` (stripped), the span `[start, end)` of the whole command, an optional label."""

    content: str
    start: int
    end: int
    label: str | None = None

    @property
    def item(self) -> str:
        return f"{self.label}={self.content}" if self.label else self.content


@dataclass(frozen=True, slots=True)
class Candidate:
    """An extracted final answer.

    Attributes:
        text: The answer that decides: the last box's content, or the statement's content with a trailing
            remark cut off.
        source: `boxed` or `answer_line` (an answer statement, or a box standing in one).
        position: Where the box or statement starts in the text.
        end: Where it ends (a statement: the end of its content).
        items: When the final answer holds several boxes, every box's content in order, each with its
            label when every box has one (`x=\\boxed{1},\\ y=\\boxed{2}` gives `x=1`, `y=2`); else empty.
        raw: The statement's content before the remark was cut (equal to `text` for a box).
    """

    text: str
    source: str
    position: int
    end: int
    items: tuple[str, ...] = ()
    raw: str = ""


class _Boxes:
    """The box commands of `text[start:end]`, read from the last backwards.

    Box `k` is brace-matched only up to box `k + 1`, so every character is scanned at most once in total.
    """

    def __init__(self, text: str, start: int = 0, end: int | None = None):
        self.text = text
        self.end = len(text) if end is None else end
        self.starts = [m.start() for m in _BOX_COMMAND.finditer(text, start, self.end)]

    def box(self, k: int) -> Box | None:
        """Box `k` if it is closed and non-empty before box `k + 1` starts, else None."""
        text, start = self.text, self.starts[k]
        limit = self.starts[k + 1] if k + 1 < len(self.starts) else self.end
        cmd_end = start + (6 if text.startswith("\\boxed", start) else 5)
        j = cmd_end
        while j < limit and text[j] in " \t":
            j += 1
        if j < limit and text[j] == "{":
            depth = 0
            for event in _BRACE_EVENT.finditer(text, j, limit):
                token = event.group()
                if token == "{":
                    depth += 1
                elif token == "}":
                    depth -= 1
                    if depth == 0:
                        content = text[j + 1 : event.start()].strip()
                        return Box(content, start, event.end()) if content else None
            return None
        if cmd_end < j < limit:  # "\boxed 5": one token after a space
            token = _BOX_TOKEN.match(text, j, limit)
            if token:
                return Box(token.group(), start, token.end())
        return None

    def reversed(self) -> Iterator[Box]:
        for k in range(len(self.starts) - 1, -1, -1):
            box = self.box(k)
            if box is not None:
                yield box


def last_boxed(text: str) -> Candidate | None:
    """The content of the last closed, non-empty box (`\\boxed{...}` brace-matched, `\\fbox{...}`, `\\boxed X`)."""
    box = next(_Boxes(text).reversed(), None)
    return Candidate(box.content, "boxed", box.start, box.end, (), box.content) if box else None


def _gap_label(gap: str) -> tuple[bool, str | None]:
    """Whether `gap` (at most `MAX_BOX_GAP` chars) joins two boxes, and the label it gives the later box (`, y=`)."""
    match = _GAP.fullmatch(gap)
    return (True, match.group("label")) if match else (False, None)


def final_boxes(text: str, start: int = 0, end: int | None = None) -> list[Box]:
    """The boxes of the final answer in `text[start:end]`: the last box and those joined to it by connectors.

    Two boxes belong to one answer when at most `MAX_BOX_GAP` characters of connectors separate them: spaces,
    math delimiters, spacing commands, commas, semicolons, `and`, `or` (plain or in `\\text{}`), and
    optionally a variable label for the later box (`x=\\boxed{1},\\ y=\\boxed{2}`). Labels are kept only when
    every box has one, so that swapped values cannot match. Repeated identical boxes count once.
    """
    group: list[Box] = []
    labels: list[str | None] = []  # labels[i] is the label of group[i]; both read last-first
    for box in _Boxes(text, start, end).reversed():
        if group:
            if group[-1].start - box.end > MAX_BOX_GAP:
                break
            joined, label = _gap_label(text[box.end : group[-1].start])
            if not joined:
                break
            labels.append(label)
        group.append(box)
    if len(group) < 2:
        return group
    lead = _LEAD_LABEL.search(text, max(start, group[-1].start - _LEAD_WINDOW), group[-1].start)
    labels.append(lead.group("label") if lead else None)
    if all(labels):
        group = [Box(box.content, box.start, box.end, label) for box, label in zip(group, labels)]
    seen: set[str] = set()
    unique = []
    for box in reversed(group):
        if box.item not in seen:
            seen.add(box.item)
            unique.append(box)
    return unique


def _statement_content(text: str, colon_end: int) -> tuple[int, int]:
    """The span of a statement's content: the rest of its line, or the next non-empty line if that is blank."""
    line_end = text.find("\n", colon_end)
    line_end = len(text) if line_end < 0 else line_end
    if text[colon_end:line_end].strip(" \t*_$\r") or line_end == len(text):
        return colon_end, line_end
    nxt = line_end + 1
    for _ in range(3):  # "**Final Answer:**" then a blank line, then "42"
        stop = text.find("\n", nxt)
        stop = len(text) if stop < 0 else stop
        if text[nxt:stop].strip():
            return nxt, stop
        if stop == len(text):
            break
        nxt = stop + 1
    return colon_end, line_end


def _clean(content: str) -> str:
    content = content.strip().strip("*_").strip()
    return content[:-1].rstrip() if content.endswith(".") and not content.endswith("..") else content


def _prose_word_at(content: str, j: int) -> str | None:
    """The word of two or more letters starting at `j` (lower-cased), if it is a whole word."""
    word = _PROSE_WORD.match(content, j)
    if word is None or (word.end() < len(content) and content[word.end()].isalnum()):
        return None
    return word.group().lower()


def _remark_starts(content: str, i: int) -> bool:
    """Whether a remark in prose starts at `content[i]`, a character at top level outside math."""
    ch = content[i]
    if ch == "(":
        # "(since 6 times ...)", "(in cm)", but not "(ab + c)": a word, a space, then a word or a number
        word = _PROSE_WORD.match(content, i + 1)
        if i == 0 or word is None or content[word.end() : word.end() + 1] not in (" ", "\t"):
            return False
        follow = content[word.end() + 1 : word.end() + 3]
        return follow[:1].isdigit() or (len(follow) == 2 and follow.isalpha())
    if ch in " \t" and content[i - 1] in " \t":  # only the first blank of a run: linear on long runs
        return False
    if ch in ",;.—" or ch in " \t":
        j = i + 1
        while j < len(content) and content[j] in " \t":
            j += 1
        if j == i + 1 and ch in ",;.":  # "3.5", "1,000": no space, no remark
            return False
        word = _prose_word_at(content, j)
        if word is None:
            return False
        return word in _REMARK_WORDS if ch in " \t" else word not in ("and", "or")
    return False


def cut_remark(content: str) -> str:
    """`content` without a trailing remark in prose (read at top level, outside `$...$`, braces, brackets).

    Cuts before a `(` that opens words (`42 (since 6 times 7 is 42)` -> `42`); before `,`, `;`, `.` or an em
    dash followed by a space and a word other than `and`/`or` (`x = 2, which ...` -> `x = 2`,
    `5. Because ...` -> `5`); and before a clause word: because, since, as, so, which, where, given, thus,
    hence, therefore (`42 since 6 times 7 is 42` -> `42`). A remark must start within the first
    `MAX_STATEMENT_CHARS` characters; beyond them nothing is cut.
    """
    depth, math, i = 0, False, 0
    while i < min(len(content), MAX_STATEMENT_CHARS):
        ch = content[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "$":
            math = not math
        elif depth == 0 and not math and _remark_starts(content, i):
            return content[:i].rstrip(" \t,;:-—")
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth = max(0, depth - 1)
        i += 1
    return content


def last_answer_statement(text: str) -> Candidate | None:
    """The last non-empty answer statement, wherever it stands (after a sentence, in a bullet, in bold).

    Its content runs to the end of its line, or is the next non-empty line when the statement ends its line
    (`**Final Answer:**` then `42`). `text` is the content with a trailing remark cut (`cut_remark`); `raw`
    is the content as written. A box in the content is left as written: `final_answer` reads it.
    """
    matches = list(_STATEMENT.finditer(text))
    for match in reversed(matches):
        lo, hi = _statement_content(text, match.end())
        raw = _clean(text[lo:hi])
        if raw:
            return Candidate(_clean(cut_remark(raw)), "answer_line", match.start(), hi, (), raw)
    return None


def final_answer(text: str, *, statements: bool = True) -> Candidate | None:
    """The final answer: whichever of the last box (with its group) and the last answer statement is later.

    A box that stands in the statement's content is the statement's answer (`Answer: \\boxed{42}`); a
    statement inside the last box (`\\boxed{\\text{Answer: B}}`) does not beat that box. With
    `statements=False` only boxes are read.
    """
    boxes = final_boxes(text)
    statement = last_answer_statement(text) if statements else None
    if not boxes:
        return statement
    last = boxes[-1]
    if statement is not None and statement.position >= last.end:
        return statement
    items = tuple(box.item for box in boxes) if len(boxes) > 1 else ()
    if statement is not None and statement.position < last.start < statement.end:
        return Candidate(last.content, "answer_line", statement.position, last.end, items, statement.raw)
    return Candidate(last.content, "boxed", last.start, last.end, items, last.content)


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
